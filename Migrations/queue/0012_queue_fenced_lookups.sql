-- 0012: the claim and the completion find their rows through the primary key.
--
-- The reconciler's and the rescuer's partial indexes were defined on `state`
-- (`WHERE state = 'promoted'`, `WHERE state = 'running'`). The claim's own test
-- `state = 'promoted'` and the completion's `state = 'running'` therefore made those
-- indexes candidates for the two hottest statements, and whenever the statistics said
-- few jobs were promoted or running (any table analyzed while the queue was quiet:
-- then each estimate is one row) the planner chose them: every claim scanned every
-- promoted row, every completion every running row — and every dead index entry left
-- by the jobs before them — instead of probing the primary key for its batch. Seen in
-- issue 6's drain: 49 of 49 sampled claims and 22 of 22 completions (auto_explain),
-- claim 60.7 µs a job of server time (pg_stat_statements).
--
-- Keyed on the column each loop reads, with that column's own NOT NULL as the
-- predicate, the indexes hold the same rows (the claim sets `lease_expires_at` and
-- every exit from `running` clears it; the promoter sets `promoted_at` and a return
-- to `available` or the completion clears it — while running it is still set, so the
-- reconciler's scan also passes the few jobs running for longer than its timeout),
-- and a statement can use them only when it bounds that column: the rescuer and the
-- reconciler do, the claim and the completion do not.

DROP INDEX IF EXISTS queue.jobs_lease_idx;
-- The rescuer's scan of expired leases (lease_expires_at < now() implies NOT NULL).
CREATE INDEX jobs_lease_idx ON queue.jobs (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

DROP INDEX IF EXISTS queue.jobs_promoted_idx;
-- The reconciler's scan of promotions Redis may have lost (promoted_at < cutoff).
CREATE INDEX jobs_promoted_idx ON queue.jobs (promoted_at)
    WHERE promoted_at IS NOT NULL;
