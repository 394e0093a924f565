-- 0039: the console's job search finds completed jobs in the ledger by index.
--
-- A completed job's row leaves queue.jobs at its completion and its ledger end row
-- carries the job (migration queue_completion_leaves_jobs). The job search reads
-- completed jobs there, newest first. Without these indexes a filter on kind, unique
-- key or payload was checked row by row along attempts_job_idx: a filter that matches
-- rarely or never (an order id, a key, a rare kind) read the whole ledger, millions of
-- rows, against the console's 100 ms a page. Each index holds only the rows the search
-- reads (a completed attempt's end row carrying its job: `enqueued_at IS NOT NULL`),
-- and serves that filter in the search's order or as one small bitmap:
--   kind       (kind, priority, job_id)  the newest completed jobs of a kind, a
--                                   priority, both or neither, keyset by id: each
--                                   (kind, priority) read in index order and merged (a
--                                   walk down attempts_job_idx passed every newer
--                                   failure, and a priority every other priority)
--   unique key (unique_key, job_id) only the completed jobs that had a key
--   payload    GIN jsonb_path_ops   containment (`field=value` is searched as one)
--
-- Their cost is on the completion: each completed job's end row adds an entry to the
-- kind index and its payload's paths to the GIN index's pending list (which the
-- ledger's eager autovacuum, migration 0002, merges into the index), and a keyed job
-- an entry to the unique-key index. No other ledger row (retry, dead, ...) and no
-- other statement pays anything. docs/performance.md has the drain's cost per job with
-- and without them.
--
-- Index builds on a large ledger take a SHARE lock (completions wait) for as long as
-- they run. On a big ledger, build them first without the lock, under the same names,
-- and this migration skips them:
--   CREATE INDEX CONCURRENTLY attempts_completed_kind_idx ON queue.attempts (kind, priority, job_id)
--       WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';
--   CREATE INDEX CONCURRENTLY attempts_completed_key_idx ON queue.attempts (unique_key, job_id)
--       WHERE unique_key IS NOT NULL AND enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';
--   CREATE INDEX CONCURRENTLY attempts_completed_payload_idx ON queue.attempts USING gin (payload jsonb_path_ops)
--       WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';
--   CREATE INDEX CONCURRENTLY jobs_completed_id_idx ON queue.jobs (id) WHERE state = 'completed';
--   CREATE INDEX CONCURRENTLY jobs_unique_key_id_idx ON queue.jobs (unique_key, id) WHERE unique_key IS NOT NULL;

CREATE INDEX IF NOT EXISTS attempts_completed_kind_idx ON queue.attempts (kind, priority, job_id)
    WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';

CREATE INDEX IF NOT EXISTS attempts_completed_key_idx ON queue.attempts (unique_key, job_id)
    WHERE unique_key IS NOT NULL AND enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';

CREATE INDEX IF NOT EXISTS attempts_completed_payload_idx ON queue.attempts USING gin (payload jsonb_path_ops)
    WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed';

-- The completed rows still in queue.jobs (written by a daemon from before migration
-- queue_completion_leaves_jobs, until queue.prune removes them), newest first: the
-- search for completed jobs walked queue.jobs' primary key down past every newer job in
-- another state (the backlog, dead and cancelled jobs), and once those rows are pruned,
-- past the whole table. Nothing writes a 'completed' row any more, so this index costs
-- no statement of the daemon anything, and it empties as they are pruned.
CREATE INDEX IF NOT EXISTS jobs_completed_id_idx ON queue.jobs (id) WHERE state = 'completed';

-- The search by unique key alone (no kind) in queue.jobs: jobs_unique_key_idx leads
-- with the kind and holds only unfinished jobs, so the search read the whole table
-- (a parallel scan, seconds at millions of rows) to find a key or learn that no job
-- has it. Keyed jobs pay for this one: an entry at the insert and at each state
-- change (those updates are never HOT: `state` is in partial-index predicates); a job
-- without a key writes nothing to it.
CREATE INDEX IF NOT EXISTS jobs_unique_key_id_idx ON queue.jobs (unique_key, id) WHERE unique_key IS NOT NULL;
