import JobdCore
import JobdPostgres
import JobdQueue

/// `analytics.trim`: retention of attempt facts and application events. A UTC day's
/// rows are deleted once that day was rolled up (its `jobs` / `events` section is
/// `ok` in `analytics.daily_rollups`) and `JOBD_ANALYTICS_RETENTION` (default 90
/// days) has passed since the day ended. A day that was never rolled up keeps its
/// rows however old. The daily rollups themselves are kept.
///
/// First the eligible days' sections get `source_trimmed_at`, so a later rollup of
/// such a day keeps its stored figures instead of recounting what is left; then
/// the rows go, at most `batch` per statement. Facts that reach a day after it was
/// marked (a spool drained very late) are deleted with it, uncounted.
///
/// Payload overrides: `{"older_than": "30d", "batch": 1000}`.
public struct AnalyticsTrimHandler: TierRetentionHandler {
    public let kind = "analytics.trim"
    public let retention: RetentionJob

    public init(retention: RetentionJob) {
        self.retention = retention
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var olderThan = settings.analytics
        var batch = settings.batch
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "older_than": olderThan = try RetentionRun.window(value, field: key, kind: kind)
            case "batch": batch = try RetentionRun.batch(value, kind: kind)
            default: throw RetentionRun.unknownField(key, kind: kind, known: "older_than, batch")
            }
        }
        guard let olderThan else {
            context.logger.info("retention off", metadata: [LogKey.jobKind: "\(kind)"])
            return
        }
        try await markTrimmedDays(olderThan: olderThan)
        _ = try await RetentionRun(batch: batch, timeBudget: timeBudget)
            .handle(steps(olderThan: olderThan), kind: kind, context: context)
    }

    /// Marks the rolled-up sections of every day that ended more than `olderThan`
    /// ago (two rows per day at most; idempotent).
    public func markTrimmedDays(olderThan: Double) async throws {
        _ = try await database.withConnection { connection in
            try await connection.query("""
                UPDATE analytics.daily_rollups SET source_trimmed_at = now()
                 WHERE section IN ('jobs', 'events') AND status = 'ok' AND source_trimmed_at IS NULL
                   AND day < ((now() - make_interval(secs => $1::float8)) AT TIME ZONE 'UTC')::date
                """, [String(olderThan)]).affectedRows
        }
    }

    public func steps(olderThan: Double) -> [RetentionRun.Step] {
        let database = database
        func step(_ name: String, _ sql: String) -> RetentionRun.Step {
            .init(name) { batch in
                try await database.withConnection { connection in
                    try await connection.query(sql, [String(olderThan), String(batch)]).affectedRows
                }
            }
        }
        return [step("facts", Self.factsSQL), step("events", Self.eventsSQL)]
    }

    /// Rows before the start (UTC) of the day `$1` seconds ago, whose own UTC day
    /// is marked trimmed; at most $2.
    static let factsSQL = """
        WITH doomed AS (
            SELECT f.job_id, f.attempt, f.finished_at FROM analytics.attempt_facts f
             WHERE f.finished_at < date_trunc('day', now() - make_interval(secs => $1::float8), 'UTC')
               AND EXISTS (
                   SELECT 1 FROM analytics.daily_rollups r
                    WHERE r.section = 'jobs' AND r.source_trimmed_at IS NOT NULL
                      AND r.day = (f.finished_at AT TIME ZONE 'UTC')::date)
             LIMIT $2::int
        )
        DELETE FROM analytics.attempt_facts f USING doomed d
         WHERE f.job_id = d.job_id AND f.attempt = d.attempt AND f.finished_at = d.finished_at
        """

    static let eventsSQL = """
        WITH doomed AS (
            SELECT e.job_id, e.seq FROM analytics.events e
             WHERE e.occurred_at < date_trunc('day', now() - make_interval(secs => $1::float8), 'UTC')
               AND EXISTS (
                   SELECT 1 FROM analytics.daily_rollups r
                    WHERE r.section = 'events' AND r.source_trimmed_at IS NOT NULL
                      AND r.day = (e.occurred_at AT TIME ZONE 'UTC')::date)
             LIMIT $2::int
        )
        DELETE FROM analytics.events e USING doomed d WHERE e.job_id = d.job_id AND e.seq = d.seq
        """
}
