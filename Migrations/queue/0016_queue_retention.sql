-- 0016: retention of the attempts ledger and of dead letters (`queue.trim`).
--
-- Both deletions run as functions owned by the schema owner, so jobd_daemon gets
-- EXECUTE on them and no DELETE on the ledger or the dead letters: it can remove
-- only rows past a window of at least a day, a bounded batch per call, never the
-- recent history the fault counting and an operator's audit rely on.

-- The ledger is append-only and in time order, so a BRIN index finds old rows for
-- next to nothing per insert (a b-tree would add a probe to every claim and finish).
CREATE INDEX attempts_at_brin ON queue.attempts USING brin (at);

-- Deletes at most p_batch ledger rows older than the window whose job finished
-- before the window began, or is gone (pruned or purged). Rows of a job still
-- queued, running or retrying stay, however old. Returns the rows deleted; fewer
-- than p_batch means nothing is left to delete now.
CREATE FUNCTION queue.trim_attempts(p_older_than_seconds float8, p_batch integer) RETURNS integer
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
    -- The ledger has no key: rows are addressed by ctid (a TID scan), collected in
    -- the same statement, so no concurrent change can move them in between.
    DELETE FROM queue.attempts
     WHERE ctid = ANY (ARRAY(
        SELECT a.ctid FROM queue.attempts a
         WHERE a.at < v_cutoff
           AND NOT EXISTS (
               SELECT 1 FROM queue.jobs j
                WHERE j.id = a.job_id AND (j.finished_at IS NULL OR j.finished_at >= v_cutoff))
         LIMIT p_batch));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

-- Deletes at most p_batch dead letters that died longer ago than the window, with
-- their dead jobs (as `jobd dead-letter purge` does). Oldest first. Returns the
-- dead letters removed.
CREATE FUNCTION queue.trim_dead_letters(p_older_than_seconds float8, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_count integer;
BEGIN
    IF p_older_than_seconds IS NULL OR NOT (p_older_than_seconds BETWEEN 86400 AND 3153600000) THEN
        RAISE EXCEPTION 'queue.trim_dead_letters: the window must be between 1 day and 100 years, got % s', p_older_than_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_batch IS NULL OR NOT (p_batch BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'queue.trim_dead_letters: the batch must be between 1 and 100000, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH doomed AS (
        SELECT job_id FROM queue.dead_letters
         WHERE dead_at < now() - make_interval(secs => p_older_than_seconds)
         ORDER BY dead_at
         LIMIT p_batch
         FOR UPDATE SKIP LOCKED
    ), jobs AS (
        -- The dead letter goes with its job (ON DELETE CASCADE).
        DELETE FROM queue.jobs j USING doomed d
         WHERE j.id = d.job_id AND j.state = 'dead'
        RETURNING j.id
    ), letters AS (
        -- A dead letter whose job is no longer dead (an operator moved it) goes alone.
        DELETE FROM queue.dead_letters l USING doomed d
         WHERE l.job_id = d.job_id AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = d.job_id)
        RETURNING l.job_id
    )
    SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM letters) INTO v_count;
    RETURN v_count;
END;
$$;

REVOKE EXECUTE ON FUNCTION queue.trim_attempts(float8, integer), queue.trim_dead_letters(float8, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.trim_attempts(float8, integer), queue.trim_dead_letters(float8, integer) TO jobd_daemon;

-- The retention kinds are the daemon's own work: producers may not enqueue them
-- (the door of migration 0013 refuses kinds listed here).
INSERT INTO queue.internal_kinds (kind)
VALUES ('queue.trim'), ('notifications.trim'), ('analytics.trim')
ON CONFLICT DO NOTHING;
