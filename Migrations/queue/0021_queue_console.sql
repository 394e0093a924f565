-- 0021: what the operator's web console (`jobd web`) and `jobd cancel|pause|resume` need.
--
-- Index builds on a large queue.jobs take a SHARE lock (inserts wait) for as long as
-- they run. On a big table, build them first without the lock, under the same names,
-- and this migration skips them:
--   CREATE INDEX CONCURRENTLY jobs_kind_id_idx ON queue.jobs (kind, id);
--   CREATE INDEX CONCURRENTLY jobs_payload_path_idx ON queue.jobs USING gin (payload jsonb_path_ops);

-- A cancel of a running job cannot stop its handler in another daemon; it is recorded
-- here, the attempt runs to its end, and the completion (or the rescuer) moves the job
-- to `cancelled` instead of retrying it, releasing it or dead-lettering it. A successful
-- attempt still ends `completed`: the work was done. Written only by the operator
-- commands; nullable without a default, so adding it rewrites nothing.
ALTER TABLE queue.jobs ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;

COMMENT ON COLUMN queue.jobs.cancel_requested_at IS
    'Set by jobd cancel / the web console on a running job: its attempt ends as cancelled unless it completed.';

-- The console's jobs list filtered by kind, newest first, in keyset pages by id.
-- `kind` never changes after the insert, so the index costs inserts only, never the
-- state updates (which stay HOT).
CREATE INDEX IF NOT EXISTS jobs_kind_id_idx ON queue.jobs (kind, id);

-- Payload search by containment (`payload @> '{"order_id": 42}'`), which is also how a
-- field's value is searched. jsonb_path_ops: a smaller index that serves exactly @>.
-- The payload never changes after the insert, so state updates stay HOT; each insert
-- adds the payload's paths (buffered in the index's pending list).
CREATE INDEX IF NOT EXISTS jobs_payload_path_idx ON queue.jobs USING gin (payload jsonb_path_ops);

-- The overview's last hour of throughput and failures from the ledger is found through
-- the ledger's BRIN index on `at` (attempts_at_brin, migration 0016).

-- Paused lanes and kinds. The promoter reads this table once per pass and promotes
-- nothing of a paused priority or kind; jobs already promoted or running go on.
CREATE TABLE IF NOT EXISTS queue.pauses (
    scope     text        NOT NULL,
    name      text        NOT NULL,
    paused_by text        NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, name),
    CONSTRAINT pauses_scope_check CHECK (scope IN ('priority', 'kind')),
    CONSTRAINT pauses_priority_check CHECK (scope <> 'priority' OR name IN ('high', 'normal', 'low')),
    CONSTRAINT pauses_name_check CHECK (name <> '' AND length(name) <= 128),
    CONSTRAINT pauses_paused_by_check CHECK (length(paused_by) BETWEEN 1 AND 200)
);

GRANT SELECT ON queue.pauses TO jobd_daemon, jobd_reporting;
