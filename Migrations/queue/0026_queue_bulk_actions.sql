-- 0026: bulk actions by filter (retry, cancel or discard everything matching), run
-- as a job of the internal kind `queue.bulk_action` in keyset batches, with an audit
-- row per action: who asked, what, the filter, how many matched when confirmed, and
-- the progress so far.
--
-- The filter is a JSON object; every key is optional and absent keys match all.
--   target 'jobs':         id, state, kind, priority, unique_key, contains (a JSON
--                          object the payload must contain, `payload @> contains`)
--   target 'dead_letters': kind
-- Only jobs with an id below `upper_id` are touched: the set is the one the operator
-- counted when confirming, not jobs enqueued while the action runs.

CREATE TABLE queue.bulk_actions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target       text        NOT NULL CHECK (target IN ('jobs', 'dead_letters')),
    action       text        NOT NULL CHECK (action IN ('retry', 'cancel', 'discard')),
    filter       jsonb       NOT NULL CHECK (jsonb_typeof(filter) = 'object' AND length(filter::text) <= 8192),
    requested_by text        NOT NULL CHECK (requested_by <> '' AND length(requested_by) <= 128),
    -- Matching rows when confirmed.
    expected     bigint      NOT NULL CHECK (expected >= 0),
    -- Matching rows worked through so far, and of those the ones the action changed
    -- (a row may have moved on meanwhile: a job that completed is not cancelled).
    processed    bigint      NOT NULL DEFAULT 0 CHECK (processed >= 0),
    affected     bigint      NOT NULL DEFAULT 0 CHECK (affected >= 0),
    batch        integer     NOT NULL DEFAULT 1000 CHECK (batch BETWEEN 1 AND 10000),
    upper_id     bigint      NOT NULL,
    -- Keyset position: every matching id at or above it has been worked through.
    below_id     bigint      NOT NULL,
    job_id       bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    CHECK (target = 'jobs' OR action <> 'cancel')
);
CREATE INDEX bulk_actions_created_idx ON queue.bulk_actions (created_at DESC);

-- The matching ids below p_below, highest first, at most p_limit (NULL: all). One
-- constant text run by EXECUTE … USING, so each call is planned with its values and
-- the conditions of absent keys fold away (the indexes of the given ones serve it).
CREATE FUNCTION queue.bulk_action_matches(p_target text, p_filter jsonb, p_below bigint, p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_target = 'dead_letters' THEN
        RETURN QUERY EXECUTE
            'SELECT d.job_id FROM queue.dead_letters d
              WHERE d.job_id < $1 AND ($2::text IS NULL OR d.kind = $2::text)
              ORDER BY d.job_id DESC LIMIT $3'
            USING p_below, p_filter->>'kind', p_limit;
    ELSIF p_target = 'jobs' THEN
        RETURN QUERY EXECUTE
            'SELECT j.id FROM queue.jobs j
              WHERE j.id < $1
                AND ($2::bigint IS NULL OR j.id = $2::bigint)
                AND ($3::text IS NULL OR j.state = $3::text)
                AND ($4::text IS NULL OR j.kind = $4::text)
                AND ($5::text IS NULL OR j.priority = $5::text)
                AND ($6::text IS NULL OR j.unique_key = $6::text)
                AND ($7::jsonb IS NULL OR j.payload @> $7::jsonb)
              ORDER BY j.id DESC LIMIT $8'
            USING p_below, (p_filter->>'id')::bigint, p_filter->>'state', p_filter->>'kind',
                  p_filter->>'priority', p_filter->>'unique_key', p_filter->'contains', p_limit;
    ELSE
        RAISE EXCEPTION 'bulk action target must be jobs or dead_letters, not "%"', left(p_target, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

-- Records a confirmed bulk action and enqueues its job, in one transaction.
CREATE FUNCTION queue.bulk_action_start(
    p_target text, p_action text, p_filter jsonb, p_requested_by text, p_upper_id bigint, p_batch integer
) RETURNS TABLE (id bigint, expected bigint, job_id bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_expected bigint;
    v_job bigint;
BEGIN
    SELECT count(*) INTO v_expected FROM queue.bulk_action_matches(p_target, p_filter, p_upper_id, NULL);
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

-- One batch of a bulk action: the next `batch` matching ids below its below_id, the
-- action applied to them, the progress recorded, all in one transaction. Runs as
-- the owner (SECURITY DEFINER): jobd_daemon may not delete dead letters itself.
-- The row lock serialises two runs of the same action (a re-delivered job).
CREATE FUNCTION queue.bulk_action_step(p_id bigint)
RETURNS TABLE (processed bigint, affected bigint, done boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b queue.bulk_actions%ROWTYPE;
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
    SELECT array_agg(m ORDER BY m DESC) INTO v_ids
      FROM queue.bulk_action_matches(b.target, b.filter, b.below_id, b.batch) AS m;
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
           below_id = CASE WHEN cardinality(v_ids) > 0 THEN v_ids[cardinality(v_ids)] ELSE a.below_id END,
           started_at = coalesce(a.started_at, now()),
           finished_at = CASE WHEN cardinality(v_ids) < b.batch THEN now() END
     WHERE a.id = p_id;
    RETURN QUERY SELECT b.processed + cardinality(v_ids), b.affected + v_changed, cardinality(v_ids) < b.batch;
END;
$$;

REVOKE ALL ON FUNCTION queue.bulk_action_step(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.bulk_action_step(bigint) TO jobd_daemon;
GRANT SELECT ON queue.bulk_actions TO jobd_daemon, jobd_reporting;

INSERT INTO queue.internal_kinds (kind) VALUES ('queue.bulk_action') ON CONFLICT DO NOTHING;
