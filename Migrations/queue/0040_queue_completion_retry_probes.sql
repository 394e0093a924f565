-- queue.complete's retry, snooze, release and dead branch (`done`) is driven by the
-- batch's record set as its completing branch (`gone`, 0037) is: each entry probes
-- queue.jobs' primary key once. It found its jobs through `j.id = ANY (ARRAY(...))`
-- over the whole record set and joined the record set to them again. With the jobs
-- estimated at one row (few are 'running' when the table is analyzed), a hash join
-- and a nested loop scanning the record set once per job cost the planner nearly the
-- same (50.2 against 51.2), and that nested loop is quadratic in the batch: 1.8 s for
-- 2,000 retries (forced with enable_hashjoin off) where the hash join takes 0.13 s.
-- Same arguments, result, fences and effects; only the join changes. An outcome
-- other than the five the daemon writes (completed, retry, snooze, release, dead)
-- matches no branch and is not applied (it was applied as a retry); CompletionJSON
-- writes only those five.

CREATE OR REPLACE FUNCTION queue.complete(p_completions jsonb, p_daemon text)
RETURNS TABLE (id bigint, attempt integer, token bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(p_completions)
            AS i(id bigint, attempt int, token bigint, outcome text, delay float8, code text, error text, run float8,
                 wait float8)
    ), gone AS (
        DELETE FROM queue.jobs j
         USING input i
         -- Driven by the record set: each completed entry probes the primary key once
         -- (nested loop, the record set outside). Not `j.id = ANY (ARRAY(...))`: with
         -- `outcome = 'completed'` the record set is estimated at one row, and so are
         -- the jobs that array finds (few rows are 'running' when the table is
         -- analyzed), so the planner puts those jobs outside and scans the whole
         -- record set once per job: quadratic in the batch (270 ms for 445 completions).
         WHERE j.id = i.id AND i.outcome = 'completed'
           AND j.attempt = i.attempt AND j.lease_token = i.token AND j.state = 'running'
        RETURNING j.id, i.attempt AS fenced_attempt, i.token AS fenced_token, i.code, i.run, i.wait,
                  j.kind, j.payload, j.priority, j.unique_key, j.run_at, j.created_at, j.max_attempts, j.rescues,
                  j.last_error, j.errors, j.started_at
    ), done AS (
        UPDATE queue.jobs j
           SET state = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                            ELSE CASE i.outcome
                                     WHEN 'dead' THEN 'dead'
                                     WHEN 'release' THEN 'available'
                                     ELSE 'retryable' END END,
               run_at = CASE WHEN i.outcome IN ('retry', 'snooze')
                             THEN now() + make_interval(secs => i.delay)
                             WHEN i.outcome = 'release' THEN now()
                             ELSE j.run_at END,
               attempt = CASE WHEN i.outcome = 'snooze' THEN j.attempt - 1 ELSE j.attempt END,
               finished_at = CASE WHEN i.outcome = 'dead' OR j.cancel_requested_at IS NOT NULL THEN now() END,
               leased_by = NULL, lease_token = NULL, lease_expires_at = NULL,
               last_error = coalesce(i.error, j.last_error),
               errors = CASE WHEN i.error IS NULL OR i.outcome = 'snooze' THEN j.errors
                             ELSE j.errors || jsonb_build_array(jsonb_build_object(
                                 'attempt', j.attempt, 'at', now(), 'code', i.code, 'error', i.error))
                        END
          FROM input i
         -- Driven by the record set as `gone` is: each entry probes the primary key
         -- once (nested loop, the record set outside). The outcomes are listed, not
         -- `<> 'completed'`, for the estimate: four listed values are estimated at a
         -- few rows of the record set (as `= 'completed'` is at one), which keeps the
         -- record set outside; `<>` is estimated at nearly all of it.
         WHERE j.id = i.id AND i.outcome IN ('retry', 'snooze', 'release', 'dead')
           AND j.attempt = i.attempt AND j.lease_token = i.token AND j.state = 'running'
        RETURNING j.id, i.attempt AS fenced_attempt, i.token AS fenced_token, i.outcome, i.code, i.run, i.wait,
                  j.kind, j.payload, j.priority, j.attempt, j.last_error, j.errors, j.state AS new_state,
                  -- Not changed by this UPDATE, so still the attempt's start.
                  j.started_at
    ), ledger AS (
        -- The attempt's one ledger row, only for completions the fence accepted.
        INSERT INTO queue.attempts (job_id, attempt, event, daemon, started_at, outcome, error_code, run_seconds,
                                    kind, queue_wait_seconds, priority, payload, unique_key, run_at, enqueued_at,
                                    max_attempts, rescues, last_error, errors)
        SELECT d.id, d.fenced_attempt, 'end', p_daemon, d.started_at, d.outcome, d.code, d.run,
               d.kind, least(greatest(coalesce(d.wait, 0), 0), 1e12),
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM done d
        UNION ALL
        SELECT g.id, g.fenced_attempt, 'end', p_daemon, g.started_at, 'completed', g.code, g.run,
               g.kind, least(greatest(coalesce(g.wait, 0), 0), 1e12),
               g.priority, g.payload, g.unique_key, g.run_at, g.created_at,
               g.max_attempts, g.rescues, g.last_error, nullif(g.errors, '[]'::jsonb)
          FROM gone g
    ), dead AS (
        INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error, errors)
        SELECT d.id, d.kind, d.payload, d.priority, d.attempt, coalesce(d.code, 'failed'), d.last_error, d.errors
          FROM done d WHERE d.outcome = 'dead' AND d.new_state = 'dead'
        ON CONFLICT (job_id) DO UPDATE
           SET kind = EXCLUDED.kind, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
               attempts = EXCLUDED.attempts, reason = EXCLUDED.reason,
               last_error = EXCLUDED.last_error, errors = EXCLUDED.errors, dead_at = now()
    )
    SELECT d.id, d.fenced_attempt, d.fenced_token FROM done d
    UNION ALL
    SELECT g.id, g.fenced_attempt, g.fenced_token FROM gone g;
END;
$$;

-- CREATE OR REPLACE keeps the owner and 0037's grants (EXECUTE to jobd_daemon only).
