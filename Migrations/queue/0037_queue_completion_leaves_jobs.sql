-- A completed job leaves queue.jobs at its completion. The completion deletes the job
-- row (fenced as before by id, attempt, lease token and state 'running') and its one
-- ledger row, the attempt's 'end' row, carries what an operator sees of the job from
-- then on: kind (already there), priority, payload, unique key, run_at, when it was
-- enqueued, max attempts, rescues and its earlier errors. The completion was an
-- UPDATE that changed `state`, which partial-index predicates read, so it was never
-- HOT: a new row version plus an entry in every index of queue.jobs (primary key,
-- kind, the payload's GIN, ...). A DELETE writes one small WAL record and no index
-- entry; vacuum removes the dead row as it removed the old version before.
--
-- A completed job is therefore shown from the ledger (the console's job list and job
-- page, `jobd status`) for as long as the ledger keeps its row: `queue.trim`
-- (JOBD_ATTEMPTS_RETENTION, and at least JOBD_COMPLETED_RETENTION). Its unique key
-- is free from the completion on, as before (the row that held it is gone).
--
-- Upgrade: nothing has to stop. Jobs completed before this migration (or by a daemon
-- of an earlier version while both run) stay in queue.jobs as 'completed' rows; the
-- readers show them too, and `queue.prune` deletes them after JOBD_COMPLETED_RETENTION
-- as before. jobs_finished_idx stays: it finds those rows and the cancelled ones.

-- Nullable without a default: adding them rewrites nothing. Set only on a completed
-- attempt's 'end' row written from 0037 on (`enqueued_at IS NOT NULL` marks them);
-- every other row keeps NULL, which costs a bit in the null bitmap.
ALTER TABLE queue.attempts
    ADD COLUMN priority     text,
    ADD COLUMN payload      jsonb,
    ADD COLUMN unique_key   text,
    ADD COLUMN run_at       timestamptz,
    ADD COLUMN enqueued_at  timestamptz,
    ADD COLUMN max_attempts integer,
    ADD COLUMN rescues      integer,
    ADD COLUMN last_error   text,
    -- NULL when the job had no failed attempt (its '[]').
    ADD COLUMN errors       jsonb;

COMMENT ON COLUMN queue.attempts.enqueued_at IS
    'Set on a completed attempt''s end row only (with priority, payload, unique_key, run_at, max_attempts, rescues, last_error, errors): the completed job as operators see it, its queue.jobs row being deleted by the completion.';

-- The completion, as the schema owner: jobd_daemon holds no DELETE on queue.jobs (and
-- gets none), and this deletes only the running attempts its fences name. Applies a
-- batch of completions (CompletionJSON: id, attempt, token, outcome, delay, code,
-- error, run, wait); returns the fences applied. Each applied one writes the
-- attempt's single ledger row: its end, with what its start was (the daemon that held
-- the lease, the job row's started_at); a completed one with the job's columns above.
-- Other outcomes update the row as before: retry and snooze wait again, release is due
-- now, dead is dead-lettered, and a job an operator cancelled while the attempt ran
-- ends 'cancelled' unless the attempt completed it.
CREATE FUNCTION queue.complete(p_completions jsonb, p_daemon text)
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
         -- (nested loop, the record set outside). Not `j.id = ANY (ARRAY(...))` as in
         -- `done`: with `outcome = 'completed'` the record set is estimated at one row,
         -- and so are the jobs that array finds (few rows are 'running' when the table
         -- is analyzed), so the planner puts those jobs outside and scans the whole
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
         WHERE j.id = ANY (ARRAY(SELECT input.id FROM input))
           AND j.id = i.id AND i.outcome <> 'completed'
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

REVOKE EXECUTE ON FUNCTION queue.complete(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.complete(jsonb, text) TO jobd_daemon;

-- Completed jobs wherever they are, for operators' queries and scripts: the ledger's
-- completed end rows, and rows completed in queue.jobs before (or by an earlier
-- daemon). The job's columns under queue.jobs' names; `finished_at` is the end row's
-- time. A job is in one branch only: the completion that writes the ledger's row
-- deletes the job's row.
CREATE VIEW queue.completed_jobs AS
SELECT a.job_id AS id, a.kind, a.payload, a.priority, a.run_at, a.attempt, a.max_attempts, a.unique_key,
       a.rescues, a.started_at, a.at AS finished_at, a.last_error, coalesce(a.errors, '[]'::jsonb) AS errors,
       a.enqueued_at AS created_at
  FROM queue.attempts a
 WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
UNION ALL
SELECT j.id, j.kind, j.payload, j.priority, j.run_at, j.attempt, j.max_attempts, j.unique_key,
       j.rescues, j.started_at, j.finished_at, j.last_error, j.errors, j.created_at
  FROM queue.jobs j
 WHERE j.state = 'completed';

GRANT SELECT ON queue.completed_jobs TO jobd_reporting;
