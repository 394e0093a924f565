-- 0036: the web console at scale (10M jobs, 100k dead letters): dead-letter pages
-- through an index in their own order, the bulk dry run counted without ordering
-- every match, and a bulk action filtered by payload listed once instead of re-read
-- every batch.

-- The dead-letter pages are keyset pages newest first (`dead_at DESC, job_id DESC`),
-- optionally of one kind. (dead_at, job_id) serves that order and the cursor
-- directly (no sort of every row on a tie-break), and still serves the purge's
-- `dead_at < …`, so it replaces dead_letters_dead_at_idx. (kind, dead_at, job_id)
-- serves a kind's pages and counts a kind's dead letters for the bulk dry run from
-- the index alone. Both are on queue.dead_letters, written once per job that dies,
-- never on queue.jobs.
CREATE INDEX IF NOT EXISTS dead_letters_dead_at_job_idx ON queue.dead_letters (dead_at, job_id);
DROP INDEX IF EXISTS queue.dead_letters_dead_at_idx;
CREATE INDEX IF NOT EXISTS dead_letters_kind_idx ON queue.dead_letters (kind, dead_at, job_id);

-- Waiting jobs of a kind in a state, newest first: the jobs list filtered by kind and
-- state, and the bulk dry run's count ("cancel every waiting job of this kind"), from
-- the index alone, where they visited every job of the kind (jobs_kind_id_idx, then
-- the heap for the state). Partial, so it holds only the backlog (like jobs_due_idx).
-- Its cost: one more index entry for each row version that is waiting, i.e. one at
-- the insert and one per retry (a state update is never HOT anyway: state is in the
-- partial indexes' predicates).
-- On a large queue.jobs build it first without the lock (see 0021), same name:
--   CREATE INDEX CONCURRENTLY jobs_waiting_kind_idx ON queue.jobs (kind, state, id)
--       WHERE state IN ('available', 'retryable');
CREATE INDEX IF NOT EXISTS jobs_waiting_kind_idx ON queue.jobs (kind, state, id)
    WHERE state IN ('available', 'retryable');

-- How many rows match a bulk action's filter (see queue.bulk_action_matches) below
-- p_below: a plain count, which the planner may serve from any index (a bitmap of
-- two), where counting the ordered matches walked the whole primary key.
CREATE FUNCTION queue.bulk_action_count(p_target text, p_filter jsonb, p_below bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    IF p_target = 'dead_letters' THEN
        EXECUTE
            'SELECT count(*) FROM queue.dead_letters d
              WHERE d.job_id < $1 AND ($2::text IS NULL OR d.kind = $2::text)'
            INTO v_count USING p_below, p_filter->>'kind';
    ELSIF p_target = 'jobs' THEN
        EXECUTE
            'SELECT count(*) FROM queue.jobs j
              WHERE j.id < $1
                AND ($2::bigint IS NULL OR j.id = $2::bigint)
                AND ($3::text IS NULL OR j.state = $3::text)
                AND ($4::text IS NULL OR j.kind = $4::text)
                AND ($5::text IS NULL OR j.priority = $5::text)
                AND ($6::text IS NULL OR j.unique_key = $6::text)
                AND ($7::jsonb IS NULL OR j.payload @> $7::jsonb)'
            INTO v_count
            USING p_below, (p_filter->>'id')::bigint, p_filter->>'state', p_filter->>'kind',
                  p_filter->>'priority', p_filter->>'unique_key', p_filter->'contains';
    ELSE
        RAISE EXCEPTION 'bulk action target must be jobs or dead_letters, not "%"', left(p_target, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE FUNCTION queue.bulk_action_start(
    p_target text, p_action text, p_filter jsonb, p_requested_by text, p_upper_id bigint, p_batch integer
) RETURNS TABLE (id bigint, expected bigint, job_id bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_expected bigint;
    v_job bigint;
BEGIN
    v_expected := queue.bulk_action_count(p_target, p_filter, p_upper_id);
    INSERT INTO queue.bulk_actions (target, action, filter, requested_by, expected, batch, upper_id, below_id)
    VALUES (p_target, p_action, p_filter, p_requested_by, v_expected, coalesce(p_batch, 1000), p_upper_id, p_upper_id)
    RETURNING bulk_actions.id INTO v_id;
    INSERT INTO queue.jobs (kind, payload, priority, unique_key)
    VALUES ('queue.bulk_action', jsonb_build_object('bulk_action_id', v_id), 'high', 'bulk:' || v_id)
    RETURNING jobs.id INTO v_job;
    UPDATE queue.bulk_actions SET job_id = v_job WHERE bulk_actions.id = v_id;
    RETURN QUERY SELECT v_id, v_expected, v_job;
END;
$$;

-- A payload filter (`contains`) is served by the GIN index, which yields every match
-- at once and in no order: a keyset batch over it would fetch all the remaining
-- matches each time. So the first batch of such an action lists the candidates
-- once (every key of the filter but `state`, which may change; the others never
-- change after the insert), and each batch takes the next ids of that list by its
-- primary key, keeping those in the filter's state then. The list goes when the
-- action finishes.
ALTER TABLE queue.bulk_actions ADD COLUMN IF NOT EXISTS listed_at timestamptz;

CREATE TABLE queue.bulk_action_ids (
    bulk_action_id bigint NOT NULL REFERENCES queue.bulk_actions (id) ON DELETE CASCADE,
    job_id         bigint NOT NULL,
    PRIMARY KEY (bulk_action_id, job_id)
);

CREATE OR REPLACE FUNCTION queue.bulk_action_step(p_id bigint)
RETURNS TABLE (processed bigint, affected bigint, done boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b queue.bulk_actions%ROWTYPE;
    -- The batch's ids in keyset order (all matches, or the list's next ids), and of
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
        RETURN QUERY SELECT b.processed, b.affected, true;
        RETURN;
    END IF;
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
                 ORDER BY i.job_id DESC LIMIT b.batch) l;
        v_seen := coalesce(v_seen, '{}');
        SELECT array_agg(j.id ORDER BY j.id DESC) INTO v_ids
          FROM queue.jobs j
         WHERE j.id = ANY(v_seen) AND (b.filter->>'state' IS NULL OR j.state = b.filter->>'state');
    ELSE
        SELECT array_agg(m ORDER BY m DESC) INTO v_seen
          FROM queue.bulk_action_matches(b.target, b.filter, b.below_id, b.batch) AS m;
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
           finished_at = CASE WHEN cardinality(v_seen) < b.batch THEN now() END
     WHERE a.id = p_id;
    IF cardinality(v_seen) < b.batch THEN
        DELETE FROM queue.bulk_action_ids i WHERE i.bulk_action_id = p_id;
    END IF;
    RETURN QUERY SELECT b.processed + cardinality(v_ids), b.affected + v_changed, cardinality(v_seen) < b.batch;
END;
$$;

REVOKE ALL ON FUNCTION queue.bulk_action_step(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.bulk_action_step(bigint) TO jobd_daemon;
