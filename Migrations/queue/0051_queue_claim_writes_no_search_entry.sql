-- 0051: a claim writes no entry in the console's kind and payload indexes.
--
-- The claim moves a job from `available` to `running`. That update is never HOT
-- (`state` is in partial-index predicates), so it wrote a new entry for the job in
-- every full index of queue.jobs: `jobs_kind_id_idx` (one B-tree record, ~115 B of
-- WAL) and `jobs_payload_path_idx` (one GIN pending-list record, 165–205 B), about 4
-- µs of PostgreSQL CPU a job on the one backend every claim goes through
-- (docs/performance.md, *What a claim without index entries would save*). Both
-- indexes now hold only rows not `running`: waiting, retrying, dead and cancelled
-- jobs get their entries as before, a claimed job none, and the completion deletes
-- the row. The running jobs are few (at most the slots in flight) and are reached
-- through `jobs_lease_idx` (every running row holds a lease), so each search by kind
-- or payload reads two halves: the rows not running from these indexes, the running
-- ones from the lease index (QueueJobsOperatorStatements.Search and
-- SearchPayloadWindow, and the bulk actions' functions below).
--
-- `state <> 'running'` rather than a lease column: a waiting state in a query
-- (`state = 'available'`, `state IN ('available', 'retryable')`) implies it, so the
-- planner proves the predicate from conditions the statements already hold, and
-- jobs_waiting_kind_idx, which holds `state`, still counts a kind's backlog from the
-- index alone.
--
-- Index builds on a large queue.jobs take a SHARE lock (inserts wait) for as long as
-- they run. On a big table, build them first without the lock, under the new names,
-- and this migration skips them and drops the old ones:
--   CREATE INDEX CONCURRENTLY jobs_kind_id_idle_idx ON queue.jobs (kind, id) WHERE state <> 'running';
--   CREATE INDEX CONCURRENTLY jobs_payload_idle_idx ON queue.jobs USING gin (payload jsonb_path_ops)
--       WHERE state <> 'running';

CREATE INDEX IF NOT EXISTS jobs_kind_id_idle_idx ON queue.jobs (kind, id) WHERE state <> 'running';
CREATE INDEX IF NOT EXISTS jobs_payload_idle_idx ON queue.jobs USING gin (payload jsonb_path_ops)
    WHERE state <> 'running';
DROP INDEX IF EXISTS queue.jobs_kind_id_idx;
DROP INDEX IF EXISTS queue.jobs_payload_path_idx;

-- The bulk actions' filters (0026, 0036) in the same two halves. Each half's
-- condition on the state asked for folds to a constant when the statement is planned
-- with its values: false in the first half when the filter asks for running jobs (so
-- that half is never a walk of the whole table), false in the second for any other
-- state (so the planner drops it).

-- A job filter's conditions on `queue.jobs j`, as both functions below run them by
-- EXECUTE … USING: $1 ids below, $2 id, $3 state, $4 kind, $5 priority, $6 unique key,
-- $7 payload containment; a `$n IS NULL OR …` of an absent key folds away.
CREATE FUNCTION queue.bulk_action_job_conditions()
RETURNS text
LANGUAGE sql IMMUTABLE
AS $f$
SELECT '
   AND j.id < $1
   AND ($2::bigint IS NULL OR j.id = $2::bigint)
   AND ($3::text IS NULL OR j.state = $3::text)
   AND ($4::text IS NULL OR j.kind = $4::text)
   AND ($5::text IS NULL OR j.priority = $5::text)
   AND ($6::text IS NULL OR j.unique_key = $6::text)
   AND ($7::jsonb IS NULL OR j.payload @> $7::jsonb)'
$f$;

CREATE OR REPLACE FUNCTION queue.bulk_action_matches(p_target text, p_filter jsonb, p_below bigint, p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_conditions text := queue.bulk_action_job_conditions();
BEGIN
    IF p_target = 'dead_letters' THEN
        RETURN QUERY EXECUTE
            'SELECT d.job_id FROM queue.dead_letters d
              WHERE d.job_id < $1 AND ($2::text IS NULL OR d.kind = $2::text)
              ORDER BY d.job_id DESC LIMIT $3'
            USING p_below, p_filter->>'kind', p_limit;
    ELSIF p_target = 'jobs' THEN
        RETURN QUERY EXECUTE
            'SELECT m.id FROM ((
                SELECT j.id FROM queue.jobs j
                 WHERE j.state <> ''running'' AND $3::text IS DISTINCT FROM ''running''' || v_conditions || '
                 ORDER BY j.id DESC LIMIT $8
              ) UNION ALL (
                SELECT j.id FROM queue.jobs j
                 WHERE j.state = ''running'' AND j.lease_expires_at IS NOT NULL
                   AND ($3::text IS NULL OR $3::text = ''running'')' || v_conditions || '
                 ORDER BY j.id DESC LIMIT $8
              )) m
              ORDER BY m.id DESC LIMIT $8'
            USING p_below, (p_filter->>'id')::bigint, p_filter->>'state', p_filter->>'kind',
                  p_filter->>'priority', p_filter->>'unique_key', p_filter->'contains', p_limit;
    ELSE
        RAISE EXCEPTION 'bulk action target must be jobs or dead_letters, not "%"', left(p_target, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION queue.bulk_action_count(p_target text, p_filter jsonb, p_below bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_conditions text := queue.bulk_action_job_conditions();
    v_count bigint;
BEGIN
    IF p_target = 'dead_letters' THEN
        EXECUTE
            'SELECT count(*) FROM queue.dead_letters d
              WHERE d.job_id < $1 AND ($2::text IS NULL OR d.kind = $2::text)'
            INTO v_count USING p_below, p_filter->>'kind';
    ELSIF p_target = 'jobs' THEN
        EXECUTE
            'SELECT (SELECT count(*) FROM queue.jobs j
                      WHERE j.state <> ''running'' AND $3::text IS DISTINCT FROM ''running''' || v_conditions || ')
                  + (SELECT count(*) FROM queue.jobs j
                      WHERE j.state = ''running'' AND j.lease_expires_at IS NOT NULL
                        AND ($3::text IS NULL OR $3::text = ''running'')' || v_conditions || ')'
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
