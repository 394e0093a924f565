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
-- oversized payload is never committed. An AFTER trigger's return value is ignored:
-- the row version is already written when it runs, so there is nothing left to
-- replace or skip, and only an exception can undo it (by aborting the statement).
-- The function's `RETURN NEW` therefore has no effect; it stays, so the function is
-- correct for either timing. What changes: the size is checked after the row's CHECK
-- constraints (a payload both oversized and not an object now fails
-- jobs_payload_object_check first), and an UPDATE that fails it has written its new
-- row version, a dead one once the statement aborts.
--
-- Catalog changes only, nothing is read or rewritten: DROP TRIGGER waits for the
-- transactions already using queue.jobs, then holds it exclusively for a moment
-- (claims and completions queue behind it).
DROP TRIGGER jobs_check_updated_payload ON queue.jobs;
CREATE TRIGGER jobs_check_updated_payload
    AFTER UPDATE OF payload ON queue.jobs
    FOR EACH ROW EXECUTE FUNCTION queue.check_updated_payload();
