-- 0042: a bulk action's step takes the number of rows the caller asks for (at most the
-- action's `batch`), so the daemon can size each step by the time the last one took
-- instead of a fixed count; and a step sees when the action's job was cancelled and
-- stops there, before touching another row.
--
-- `queue.bulk_action_step(p_id, p_limit)`: like 0036's step, with
--   * p_limit: how many matching ids this step takes, clamped to 1..batch (NULL: batch).
--     The action is done when a step finds fewer than it asked for.
--   * cancelled: true when the action's job was cancelled (`jobd cancel`, the console):
--     no row is changed, the action's `cancelled_at` is set (the console shows it), and
--     the caller ends its attempt, which then ends the job `cancelled`. Rows already
--     worked through stay worked through; the audit row stays.
-- The one-argument form is kept for daemons still running the older code during an
-- upgrade; it takes `batch` rows and does not look at the job.
--
-- Every row a step changes gets a new version in `jobs_payload_path_idx` (a state change
-- is never HOT), and so do the re-driven jobs' next three states. That GIN index
-- collects new entries in its pending list and the backend whose insert takes the list
-- past `gin_pending_list_limit` (4 MB by default: about 50,000 row versions) merges it
-- into the index there and then: seconds on a 10M-row table, in a bulk step or in a
-- daemon's completion. The step runs with a 256 kB limit, so while an action runs it
-- is the step that merges the list, in pieces of about 3,000 versions (each part of a
-- step the sizer measures), the daemon's statements rarely meet a full list, and a
-- payload search (which reads the whole pending list) reads a short one.

ALTER TABLE queue.bulk_actions ADD COLUMN IF NOT EXISTS cancelled_at timestamptz;

CREATE FUNCTION queue.bulk_action_step(p_id bigint, p_limit integer)
RETURNS TABLE (processed bigint, affected bigint, done boolean, cancelled boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET gin_pending_list_limit = '256kB'
AS $$
DECLARE
    b queue.bulk_actions%ROWTYPE;
    v_limit integer;
    -- The step's ids in keyset order (all matches, or the list's next ids), and of
    -- those the ones the action applies to.
    v_seen bigint[];
    v_ids bigint[];
    v_n bigint;
    v_changed bigint := 0;
BEGIN
    SELECT * INTO b FROM queue.bulk_actions a WHERE a.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no bulk action %', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF b.finished_at IS NOT NULL THEN
        RETURN QUERY SELECT b.processed, b.affected, true, false;
        RETURN;
    END IF;
    IF b.cancelled_at IS NOT NULL OR EXISTS (
        SELECT 1 FROM queue.jobs j
         WHERE j.id = b.job_id AND (j.cancel_requested_at IS NOT NULL OR j.state = 'cancelled')) THEN
        UPDATE queue.bulk_actions a SET cancelled_at = coalesce(a.cancelled_at, now()) WHERE a.id = p_id;
        RETURN QUERY SELECT b.processed, b.affected, false, true;
        RETURN;
    END IF;
    v_limit := least(greatest(coalesce(p_limit, b.batch), 1), b.batch);
    IF b.target = 'jobs' AND b.filter ? 'contains' THEN
        IF b.listed_at IS NULL THEN
            INSERT INTO queue.bulk_action_ids (bulk_action_id, job_id)
            SELECT p_id, m FROM queue.bulk_action_matches('jobs', b.filter - 'state', b.below_id, NULL) AS m
            ON CONFLICT DO NOTHING;
            UPDATE queue.bulk_actions a SET listed_at = now() WHERE a.id = p_id;
        END IF;
        SELECT array_agg(l.job_id ORDER BY l.job_id DESC) INTO v_seen
          FROM (SELECT i.job_id FROM queue.bulk_action_ids i
                 WHERE i.bulk_action_id = p_id AND i.job_id < b.below_id
                 ORDER BY i.job_id DESC LIMIT v_limit) l;
        v_seen := coalesce(v_seen, '{}');
        SELECT array_agg(j.id ORDER BY j.id DESC) INTO v_ids
          FROM queue.jobs j
         WHERE j.id = ANY(v_seen) AND (b.filter->>'state' IS NULL OR j.state = b.filter->>'state');
    ELSE
        SELECT array_agg(m ORDER BY m DESC) INTO v_seen
          FROM queue.bulk_action_matches(b.target, b.filter, b.below_id, v_limit) AS m;
        v_seen := coalesce(v_seen, '{}');
        v_ids := v_seen;
    END IF;
    v_ids := coalesce(v_ids, '{}');
    IF b.action = 'retry' THEN
        -- Cancelled and waiting jobs run again now (cancelled ones from attempt 0);
        -- then dead jobs are re-driven: their dead letters go, attempts reset.
        UPDATE queue.jobs
           SET state = 'available', run_at = now(),
               attempt = CASE WHEN state = 'cancelled' THEN 0 ELSE attempt END,
               rescues = CASE WHEN state = 'cancelled' THEN 0 ELSE rescues END,
               finished_at = NULL, cancel_requested_at = NULL
         WHERE jobs.id = ANY(v_ids) AND state IN ('cancelled', 'available', 'retryable');
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_n;
        WITH redriven AS (
            DELETE FROM queue.dead_letters d WHERE d.job_id = ANY(v_ids) RETURNING d.job_id
        )
        UPDATE queue.jobs j
           SET state = 'available', attempt = 0, rescues = 0, run_at = now(),
               finished_at = NULL, promoted_at = NULL, leased_by = NULL, lease_expires_at = NULL,
               cancel_requested_at = NULL
          FROM redriven r
         WHERE j.id = r.job_id AND j.state = 'dead';
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_changed + v_n;
    ELSIF b.action = 'cancel' THEN
        -- As `jobd cancel`: waiting jobs end cancelled now, running ones are marked and
        -- end cancelled when their attempt ends (unless it completed them).
        UPDATE queue.jobs
           SET state = 'cancelled', finished_at = now(), promoted_at = NULL, cancel_requested_at = now()
         WHERE jobs.id = ANY(v_ids) AND state IN ('available', 'retryable', 'promoted');
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_n;
        UPDATE queue.jobs SET cancel_requested_at = now()
         WHERE jobs.id = ANY(v_ids) AND state = 'running' AND cancel_requested_at IS NULL;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_changed + v_n;
    ELSE
        -- discard: dead jobs end cancelled, their dead letters go.
        WITH gone AS (
            DELETE FROM queue.dead_letters d WHERE d.job_id = ANY(v_ids) RETURNING d.job_id
        )
        UPDATE queue.jobs j SET state = 'cancelled', finished_at = now()
          FROM gone g
         WHERE j.id = g.job_id AND j.state = 'dead';
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_n;
    END IF;
    UPDATE queue.bulk_actions a
       SET processed = a.processed + cardinality(v_ids),
           affected = a.affected + v_changed,
           below_id = CASE WHEN cardinality(v_seen) > 0 THEN v_seen[cardinality(v_seen)] ELSE a.below_id END,
           started_at = coalesce(a.started_at, now()),
           finished_at = CASE WHEN cardinality(v_seen) < v_limit THEN now() END
     WHERE a.id = p_id;
    IF cardinality(v_seen) < v_limit THEN
        DELETE FROM queue.bulk_action_ids i WHERE i.bulk_action_id = p_id;
    END IF;
    RETURN QUERY SELECT b.processed + cardinality(v_ids), b.affected + v_changed, cardinality(v_seen) < v_limit, false;
END;
$$;

REVOKE ALL ON FUNCTION queue.bulk_action_step(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.bulk_action_step(bigint, integer) TO jobd_daemon;
