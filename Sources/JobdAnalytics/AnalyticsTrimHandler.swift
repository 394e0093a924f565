import JobdCore
import JobdPostgres
import JobdQueue

/// `analytics.trim`: retention of application events. A UTC day's events are
/// deleted once that day was rolled up (its `events` section is `ok` in
/// `analytics.daily_rollups`) and `JOBD_ANALYTICS_RETENTION` (default 90 days) has
/// passed since the day ended. A day that was never rolled up keeps its rows however
/// old. The daily rollups themselves are kept.
///
/// First the eligible days' `events` sections get `source_trimmed_at`, so a later
/// rollup of such a day keeps its stored figures instead of recounting what is
/// left; then the rows go, at most `batch` per statement. Per-attempt figures come
/// from the queue tier's ledger, which `queue.trim` deletes and marks
/// (`queue.ledger_trimmed`; see `AnalyticsRollup`).
///
/// Payload overrides: `{"older_than": "30d", "batch": 1000}`.
public struct AnalyticsTrimHandler: TierRetentionHandler {
    public let kind = "analytics.trim"
    public let retention: RetentionJob
    public let settings: AnalyticsRetentionSettings

    public init(retention: RetentionJob, settings: AnalyticsRetentionSettings) {
        self.retention = retention
        self.settings = settings
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var olderThan = settings.events
        var batch = batch
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "older_than": olderThan = try RetentionWindow.payload(value, field: key, kind: kind)
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

    /// Marks the rolled-up `events` section of every day that ended more than
    /// `olderThan` ago (idempotent).
    public func markTrimmedDays(olderThan: Duration) async throws {
        _ = try await database.withConnection { connection in
            try await connection.execute(AnalyticsDailyStatements.MarkTrimmed(olderThan: olderThan))
        }
    }

    public func steps(olderThan: Duration) -> [RetentionRun.Step] {
        let database = database
        func step<S: PostgresStatement>(_ name: String, _ statement: @escaping @Sendable (Int) -> S) -> RetentionRun.Step {
            .init(name) { batch in
                try await database.withConnection { connection in
                    try await connection.execute(statement(batch))
                }
            }
        }
        return [step("events") { AnalyticsEventsStatements.Trim(olderThan: olderThan, batch: $0) }]
    }
}
