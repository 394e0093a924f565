-- 0049: the check of an UPDATE's payload runs after the row is written, so an UPDATE
-- that does not set payload no longer locks the row first.
--
-- A BEFORE ROW UPDATE trigger makes PostgreSQL fetch and lock the old row
-- (GetTupleForTrigger) before it tests the trigger's column list: every UPDATE of
-- queue.jobs — the claim, the completion's retries, heartbeats, the rescuer, bulk
-- actions, none of which sets payload — wrote a Heap/LOCK WAL record (about 60 bytes)
-- a row for a trigger that then did not fire. An AFTER trigger's column list is
-- tested when the event is queued, after the row is updated, with no lock of its own.
--
-- The check is unchanged: the same function, the same column list (it fires only when
-- payload is assigned), and its exception still aborts the statement, so an
-- oversized payload is never committed. An AFTER trigger's return value is ignored,
-- so the function's `RETURN NEW` has no effect; it is kept so that the function
-- stays valid for either timing. What changes: the row is checked after the
-- other BEFORE triggers and constraints (none on queue.jobs changes payload), and
-- an UPDATE that fails the check has written its new row version before it aborts.
DROP TRIGGER jobs_check_updated_payload ON queue.jobs;
CREATE TRIGGER jobs_check_updated_payload
    AFTER UPDATE OF payload ON queue.jobs
    FOR EACH ROW EXECUTE FUNCTION queue.check_updated_payload();
