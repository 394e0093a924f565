-- 0022: the attempts ledger holds one row per attempt, written when the attempt ends.
--
-- The claim no longer writes a 'start' row: while an attempt runs, the job row shows
-- it (state 'running', leased_by, started_at, attempt, lease_expires_at). The
-- statement that ends the attempt writes its 'end' row, carrying what the start row
-- said: the daemon that held the lease (the completion's own daemon; for a rescued
-- attempt, the daemon that lost it) and, in the new column below, when it started.
-- So a drain of N jobs leaves N ledger rows, not 2N, and the claim writes nothing
-- but the job row. 'solo' rows (a suspect runs alone) stay as they were; 'start'
-- stays a valid event for rows written before this migration.
--
-- Nullable with no default: adding it rewrites nothing, and older rows keep NULL.
ALTER TABLE queue.attempts ADD COLUMN started_at timestamptz;

-- What the row needs to be the attempt's analytics fact too, so that no second write
-- per attempt is needed: the job's kind (the job row may be pruned before the daily
-- rollup reads the ledger) and its queue wait (due → claimed, seconds, as the claim
-- reported it; clamped to 0…10^12 by the writers). Nullable: rows written before
-- this migration have neither.
ALTER TABLE queue.attempts ADD COLUMN kind text, ADD COLUMN queue_wait_seconds float8;
