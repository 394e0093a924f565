-- Promotion writes nothing to PostgreSQL: one elected promoter per queue database
-- reads due jobs and pushes their ids to Redis, remembering in memory what it pushed
-- and has not yet seen leave the lists, and the claim moves a job from `available` or
-- `retryable` straight to `running` (docs/architecture.md, "Dispatch protocol").
-- Nothing enters `promoted` any more; the value stays in the CHECK so that no
-- constraint is rewritten on a large table.

-- Rows a daemon of an earlier version promoted wait again: nothing would claim them
-- (the claim takes available and retryable rows) or return them (no reconciler scans
-- promotions). Their ids still in Redis are claimed as the available rows they are.
UPDATE queue.jobs SET state = 'available', promoted_at = NULL WHERE state = 'promoted';
UPDATE queue.jobs SET promoted_at = NULL WHERE promoted_at IS NOT NULL;

-- Only the reconciler's scan of stale promotions and the promoted count read it.
DROP INDEX IF EXISTS queue.jobs_promoted_idx;
