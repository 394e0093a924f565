import JobdCore
import JobdPostgres
import Logging

/// `queue.prune`: retention of finished jobs. Deletes `cancelled` jobs (and
/// `completed` rows left in `queue.jobs` from before a completion deleted its job
/// row; completed jobs now live in the ledger, trimmed by `queue.trim`) that
/// finished longer ago than the retention window
/// (`JOBD_COMPLETED_RETENTION`, default 7 days; payload `{"older_than": "3d"}`
/// overrides it), in batches of `batch` rows (default 5,000) so no statement holds
/// many locks or runs long. Dead jobs stay: their dead letters reference them and
/// `jobd dead-letter purge` owns them. Schedule slots older than the window go too
/// (the newest of each schedule stays: it is where a restarted scheduler resumes).
///
/// Runs for at most `timeBudget`; if more is left it snoozes (the attempt is not
/// spent) and carries on a second later, so a huge backlog never holds a worker or a
/// lease for long. Deleting is idempotent, so running twice is harmless.
public struct QueuePruneHandler: JobHandler {
    public let kind = "queue.prune"
    public var isInternal: Bool { true }
    let connection: PostgresConnection
    /// `JOBD_COMPLETED_RETENTION`; a payload's `older_than` replaces it.
    let retention: Duration
    let timeBudget: Duration

    public init(connection: PostgresConnection, retention: Duration, timeBudget: Duration = .seconds(20)) {
        self.connection = connection
        self.retention = retention
        self.timeBudget = timeBudget
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let object = try JSONPayload.object(job.payload, kind: kind)
        var olderThan = retention
        var batch = RetentionRun.defaultBatch
        for (key, value) in object {
            switch key {
            case "older_than":
                olderThan = try Self.olderThan(value)
            case "batch":
                batch = try RetentionRun.batch(value, kind: kind)
            default:
                throw JobFailure.permanent("queue.prune payload: unknown field \"\(key)\" (known: older_than, batch)",
                                           code: "payload_invalid")
            }
        }
        let deadline = ContinuousClock.now + timeBudget
        var deleted = 0
        while true {
            // queue.prune_finished deletes as the schema owner (migration 0013):
            // jobd_daemon may not delete jobs itself.
            let removed = try await connection.firstRow(
                QueueRetentionStatements.PruneFinishedJobs(olderThan: olderThan, batch: batch))?.count ?? 0
            deleted += removed
            if removed < batch { break }
            if ContinuousClock.now >= deadline {
                context.logger.info("pruned finished jobs; more left, continuing shortly", metadata: [
                    LogKey.count: "\(deleted)",
                ])
                throw JobSnooze(for: .seconds(1), code: "prune_continues", message: "more finished jobs to prune; continuing in a second")
            }
        }
        try await connection.execute(QueueScheduleSlotsStatements.Prune(olderThan: olderThan))
        context.logger.info("pruned finished jobs", metadata: [LogKey.count: "\(deleted)"])
    }

    /// A payload's `older_than`: a duration of at least a minute. A longer one than
    /// any row can be old is clamped (to 292 years, the most a `Duration` holds), so
    /// neither the conversion nor the statements' interval arithmetic can overflow.
    public static func olderThan(_ value: JSONValue) throws -> Duration {
        guard case .string(let text) = value, let seconds = DurationText.seconds(text), seconds >= 60 else {
            throw JobFailure.permanent(
                "queue.prune payload: older_than must be a duration of at least 1m, e.g. \"7d\"", code: "payload_invalid")
        }
        return TotalConversion.duration(seconds: seconds)
    }
}
