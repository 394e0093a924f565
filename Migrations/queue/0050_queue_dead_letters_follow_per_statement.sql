-- 0050: a dead letter follows its job through statement-level triggers instead of a
-- foreign key, so deleting jobs costs one statement per DELETE, not one per row.
--
-- The completion deletes every completed job's row (0037). The foreign key's
-- ON DELETE CASCADE ran its referential trigger once per deleted row — a
-- `DELETE FROM queue.dead_letters WHERE job_id = $1` through SPI, almost always
-- finding nothing — about a quarter of the completion statement's CPU (3 µs of
-- 12.5 µs a job, scripts/completion-cost), on the one backend every completion goes
-- through. The same rules, kept by triggers that run once per statement:
--
--   * deleting jobs deletes their dead letters (AFTER DELETE, the deleted rows as a
--     transition table: one join per statement, skipped when no dead letter lies in
--     the deleted ids' range);
--   * TRUNCATE queue.jobs empties queue.dead_letters (before this, TRUNCATE of
--     queue.jobs alone was refused; now it takes the dead letters with it, as
--     CASCADE did; `TRUNCATE queue.jobs, queue.dead_letters` works as before);
--   * a dead letter is only written for a job that exists, and that job is locked
--     FOR KEY SHARE until the writer commits, as the foreign key's check locked it,
--     so a concurrent delete either waits for the writer (and then takes the dead
--     letter with it: at READ COMMITTED, which the daemon and the console use, the
--     trigger's DELETE reads a snapshot taken after that wait) or has already
--     committed (and the insert fails). This runs only when a job dies: once per
--     statement that writes dead letters.
--
-- Both functions run as the owner (SECURITY DEFINER, pinned search_path, qualified
-- names), as the referential triggers did: a role that may delete jobs needs no
-- grant on queue.dead_letters for its dead letters to go with them.

-- The join is planned once per session and kept; planned while queue.dead_letters is
-- empty it would scan that table, and keep scanning it on every completion as it
-- grows. With scans and hash or merge joins off, the plan is one primary-key probe per
-- deleted job at any size (an empty index costs one page read).
CREATE OR REPLACE FUNCTION queue.dead_letters_follow_jobs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- DELETE, not TRUNCATE: `TRUNCATE queue.jobs, queue.dead_letters` has emptied
        -- (and still holds) queue.dead_letters when this runs, and refuses a second
        -- TRUNCATE of it; a DELETE then finds nothing.
        DELETE FROM queue.dead_letters;
    -- A deleted job can only have had a dead letter if one lies between the smallest
    -- and the largest deleted id: one probe of the primary key decides, and the join
    -- (a probe per deleted job, about 1.5 µs a job of the completion's ~10) runs only then.
    ELSIF EXISTS (SELECT 1 FROM queue.dead_letters d
                   WHERE d.job_id BETWEEN (SELECT min(j.id) FROM deleted j) AND (SELECT max(j.id) FROM deleted j)) THEN
        DELETE FROM queue.dead_letters d USING deleted j WHERE d.job_id = j.id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION queue.check_dead_letters_have_jobs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    missing bigint;
BEGIN
    -- Lock the jobs the new dead letters name, then look for one that is not there.
    PERFORM 1 FROM queue.jobs j WHERE j.id IN (SELECT i.job_id FROM inserted i) FOR KEY SHARE OF j;
    SELECT i.job_id INTO missing FROM inserted i
     WHERE NOT EXISTS (SELECT 1 FROM queue.jobs j WHERE j.id = i.job_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'a dead letter needs its job: queue.jobs has no id %', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'dead_letters', SCHEMA = 'queue';
    END IF;
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION queue.dead_letters_follow_jobs() FROM PUBLIC;
REVOKE ALL ON FUNCTION queue.check_dead_letters_have_jobs() FROM PUBLIC;

-- Catalog changes only: the triggers exist before the foreign key goes, in one
-- transaction, so no delete in between can leave a dead letter behind.
CREATE TRIGGER jobs_delete_dead_letters
    AFTER DELETE ON queue.jobs REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION queue.dead_letters_follow_jobs();
CREATE TRIGGER jobs_truncate_dead_letters
    AFTER TRUNCATE ON queue.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION queue.dead_letters_follow_jobs();
CREATE TRIGGER dead_letters_check_jobs
    AFTER INSERT ON queue.dead_letters REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION queue.check_dead_letters_have_jobs();
-- No writer changes job_id (the writers' ON CONFLICT (job_id) keeps it), so inserts are
-- the only way in for an orphan; a job_id changed by hand is refused. AFTER, as 0049
-- explains: a BEFORE row trigger would lock every updated dead letter first.
CREATE OR REPLACE FUNCTION queue.refuse_dead_letter_job_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'a dead letter''s job_id does not change (job %)', OLD.job_id
        USING ERRCODE = 'foreign_key_violation', TABLE = 'dead_letters', SCHEMA = 'queue';
END;
$$;
REVOKE ALL ON FUNCTION queue.refuse_dead_letter_job_change() FROM PUBLIC;
CREATE TRIGGER dead_letters_job_fixed
    AFTER UPDATE OF job_id ON queue.dead_letters
    FOR EACH ROW WHEN (OLD.job_id IS DISTINCT FROM NEW.job_id)
    EXECUTE FUNCTION queue.refuse_dead_letter_job_change();

ALTER TABLE queue.dead_letters DROP CONSTRAINT dead_letters_job_id_fkey;
