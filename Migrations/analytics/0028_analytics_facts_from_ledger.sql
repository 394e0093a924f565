-- Per-attempt facts come from the queue tier's attempts ledger.
--
-- The rollup's `jobs` section aggregates the ledger's 'end' rows (one per attempt,
-- written by the statement that ends it: kind, outcome, queue wait, run time, at)
-- in the queue database, so the daemon no longer writes a second row per attempt
-- here. The table the FactsWriter filled is dropped: nothing writes or reads it.
-- Days rolled up from it keep their rows in analytics.daily_jobs; a day rolled up
-- again is counted from the ledger (see analytics.rollup in README.md for the
-- retention rule that keeps a day whose ledger rows were trimmed as stored).
DROP TABLE IF EXISTS analytics.attempt_facts;

-- `source_trimmed`: the section's source rows were deleted by retention before the
-- day was ever rolled up, so it has no figures (rather than a count of what is left).
ALTER TABLE analytics.daily_rollups DROP CONSTRAINT daily_rollups_status_check;
ALTER TABLE analytics.daily_rollups ADD CONSTRAINT daily_rollups_status_check
    CHECK (status IN ('ok', 'source_missing', 'source_invalid', 'source_trimmed'));
