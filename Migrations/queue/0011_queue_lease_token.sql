-- 0011: a lease token per claim, so the claim can commit without waiting for the WAL
-- flush (issue 6) and completions stay fenced across a server crash.
--
-- Until now `(id, attempt)` fenced every completion, lease extension and solo mark,
-- and the claim committed durably: were a claim lost in a crash, the job would be
-- claimed again with the same attempt number, and the lost attempt's late completion
-- (its daemon still ran the handler) would be applied to its successor. With a fresh
-- random token written by each claim and checked by every fenced statement, a claim
-- lost in a crash is followed by one with another token: the lost attempt's
-- completion is refused like any stale one, and the claim no longer needs to wait
-- for the disk (the completion's durable commit flushes the claim's record first).
--
-- NULL outside `running`: the claim sets it, and every statement that moves a job out
-- of `running` (completion, rescue) clears it, so the lease heartbeat can match on the
-- token alone and find its rows through the primary key. Adding a nullable column
-- without a default rewrites nothing.
ALTER TABLE queue.jobs ADD COLUMN IF NOT EXISTS lease_token bigint;

COMMENT ON COLUMN queue.jobs.lease_token IS
    'Random token of the claim that started the running attempt; fences completions with (id, attempt).';

-- The daemon's claim, completion and rescue write it (0003: a new column a loop
-- writes needs its own grant).
GRANT UPDATE (lease_token) ON queue.jobs TO jobd_daemon;
