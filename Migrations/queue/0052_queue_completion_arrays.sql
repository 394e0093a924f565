-- 0052: the completion batch as typed arrays, not a JSON document.
--
-- Every completion goes through one backend (the group-committed batch, one statement
-- in flight), and that backend is what holds a drain's rate (docs/performance.md, *The
-- completion batch as arrays*). Of its work, parsing the batch was the part that does
-- nothing for the queue: `jsonb_to_recordset($1::jsonb)` first parses the JSON text
-- into jsonb, then pulls each object's keys apart, about 2.4 us an entry (1.6 of them
-- the text parse; a DO loop over a 300-entry batch on an idle server), where
-- `unnest` of binary arrays takes about 0.4. The daemon sends each field as one array
-- in PostgreSQL's binary format (ids, attempts, tokens, outcomes, delays, codes,
-- errors, run and wait seconds, keep-place flags, one element per completion, in the
-- same order), so no number is printed as text there or parsed here.
--
-- `queue.complete_batch` is the statement 0043 left in `queue.complete(jsonb, text)`
-- with only its record set changed: the fences, the outcomes, the ledger row and the
-- dead letter are the same. The arrays are equally long by construction (the daemon
-- builds them from one batch); were one shorter, unnest pads it with NULLs, and an
-- entry with a NULL id, attempt or token matches no job: nothing is applied for it.
--
-- Upgrade: nothing has to stop. `queue.complete(jsonb, text)` stays for a daemon of an
-- earlier version while both run: it turns its document into the arrays (in its order)
-- and calls this function, so there is one completion statement to keep.

CREATE FUNCTION queue.complete_batch(p_ids bigint[], p_attempts integer[], p_tokens bigint[], p_outcomes text[],
                                     p_delays float8[], p_codes text[], p_errors text[], p_runs float8[],
                                     p_waits float8[], p_places boolean[], p_daemon text)
RETURNS TABLE (id bigint, attempt integer, token bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_ids, p_attempts, p_tokens, p_outcomes, p_delays, p_codes, p_errors, p_runs,
                             p_waits, p_places)
            AS i(id, attempt, token, outcome, delay, code, error, run, wait, place)
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

REVOKE EXECUTE ON FUNCTION queue.complete_batch(bigint[], integer[], bigint[], text[], float8[], text[], text[],
                                                float8[], float8[], boolean[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.complete_batch(bigint[], integer[], bigint[], text[], float8[], text[], text[],
                                               float8[], float8[], boolean[], text) TO jobd_daemon;

-- The JSON form (CompletionJSON: id, attempt, token, outcome, delay, code, error, run,
-- wait, place), as an earlier daemon sends it: the same batch, the same result. The
-- arrays are aggregated in one pass over the record set, so they share its order.
-- CREATE OR REPLACE keeps the owner and 0037's grants (EXECUTE to jobd_daemon only).
CREATE OR REPLACE FUNCTION queue.complete(p_completions jsonb, p_daemon text)
RETURNS TABLE (id bigint, attempt integer, token bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.id, c.attempt, c.token
      FROM (SELECT array_agg(i.id) AS ids, array_agg(i.attempt) AS attempts, array_agg(i.token) AS tokens,
                   array_agg(i.outcome) AS outcomes, array_agg(i.delay) AS delays, array_agg(i.code) AS codes,
                   array_agg(i.error) AS errors, array_agg(i.run) AS runs, array_agg(i.wait) AS waits,
                   array_agg(i.place) AS places
              FROM jsonb_to_recordset(p_completions)
                   AS i(id bigint, attempt int, token bigint, outcome text, delay float8, code text, error text,
                        run float8, wait float8, place boolean)) a,
           queue.complete_batch(a.ids, a.attempts, a.tokens, a.outcomes, a.delays, a.codes, a.errors, a.runs,
                                a.waits, a.places, p_daemon) c
$$;
