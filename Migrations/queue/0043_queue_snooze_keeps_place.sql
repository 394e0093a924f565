-- A snooze that keeps the job's place in its lane (`JobSnooze.keepingPlace`) is due
-- again one second before its row's run_at: the time it was last due, which the
-- row still holds while the attempt runs (the claim does not change run_at). The
-- daemon wrote it as a negative delay from now(), worked back from the attempt's
-- queue wait and run time with a second's margin for the clock readings those
-- leave out; now the batch entry carries `place: true` and the function reads the
-- row. Clamped to run_at's CHECK (jobs_run_at_range_check), so that one job due at
-- its lower bound cannot make the whole batch fail.
--
-- Only `place` is new: an entry without it (NULL) is applied exactly as 0040 applied
-- it, so a daemon of the earlier version, still sending the negative delay, keeps
-- working while both run. Every other outcome, the fences, the ledger row and the
-- dead letter are unchanged.

CREATE OR REPLACE FUNCTION queue.complete(p_completions jsonb, p_daemon text)
RETURNS TABLE (id bigint, attempt integer, token bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(p_completions)
            AS i(id bigint, attempt int, token bigint, outcome text, delay float8, code text, error text, run float8,
                 wait float8, place boolean)
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
               run_at = CASE WHEN i.outcome = 'snooze' AND i.place
                             THEN greatest(j.run_at - interval '1 second', timestamptz '1970-01-01 00:00:00+00')
                             WHEN i.outcome IN ('retry', 'snooze')
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
