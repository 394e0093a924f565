-- The attempts ledger is the source of the analytics rollup's `jobs` section.
--
-- The queue-side spool of attempt facts is dropped: facts are no longer written
-- per attempt (the ledger's 'end' row is the fact), so nothing parks rows here.
DROP TABLE IF EXISTS queue.analytics_spool;

-- How far back queue.trim has deleted ledger rows: rows before `trimmed_before`
-- may be gone. The rollup never recounts a UTC day that starts before it (it keeps
-- the figures it stored, or has none), so a day is never replaced with a count of
-- what retention left. One row, moved only forward, by queue.trim_attempts in the
-- transaction that deletes, so a rollup that read the ledger before a deletion
-- committed sees the mark when it checks afterwards.
CREATE TABLE queue.ledger_trimmed (
    singleton      boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    trimmed_before timestamptz NOT NULL
);

-- A database already in use: the trim before this migration left no mark, and its
-- window is at least a day, so rows older than a day may be gone. (A new database
-- has neither jobs nor ledger rows and starts without a mark.)
INSERT INTO queue.ledger_trimmed (trimmed_before)
SELECT now() - interval '1 day'
 WHERE EXISTS (SELECT 1 FROM queue.attempts) OR EXISTS (SELECT 1 FROM queue.jobs);

-- As in 0016, plus the mark above whenever a row was deleted.
CREATE OR REPLACE FUNCTION queue.trim_attempts(p_older_than_seconds float8, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_cutoff timestamptz;
    v_count  integer;
BEGIN
    IF p_older_than_seconds IS NULL OR NOT (p_older_than_seconds BETWEEN 86400 AND 3153600000) THEN
        RAISE EXCEPTION 'queue.trim_attempts: the window must be between 1 day and 100 years, got % s', p_older_than_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_batch IS NULL OR NOT (p_batch BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'queue.trim_attempts: the batch must be between 1 and 100000, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_cutoff := now() - make_interval(secs => p_older_than_seconds);
    DELETE FROM queue.attempts
     WHERE ctid = ANY (ARRAY(
        SELECT a.ctid FROM queue.attempts a
         WHERE a.at < v_cutoff
           AND NOT EXISTS (
               SELECT 1 FROM queue.jobs j
                WHERE j.id = a.job_id AND (j.finished_at IS NULL OR j.finished_at >= v_cutoff))
         LIMIT p_batch));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        INSERT INTO queue.ledger_trimmed (trimmed_before) VALUES (v_cutoff)
        ON CONFLICT (singleton) DO UPDATE
           SET trimmed_before = greatest(queue.ledger_trimmed.trimmed_before, EXCLUDED.trimmed_before);
    END IF;
    RETURN v_count;
END;
$$;

-- The rollup runs in the daemon: it reads the ledger's end rows (the job row's kind
-- for rows written before 0022) and the mark.
GRANT SELECT (at, kind, outcome, queue_wait_seconds, run_seconds) ON queue.attempts TO jobd_daemon;
GRANT SELECT ON queue.ledger_trimmed TO jobd_daemon, jobd_reporting;
