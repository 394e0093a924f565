import JobdCore
import JobdPostgres
import JobdQueue

/// `notifications.trim`: retention of the notifications tier. A notification that
/// finished (sent or failed) longer ago than `JOBD_NOTIFY_ARCHIVE_AFTER` (default
/// 30 days) keeps its status row but loses its body and its tries' excerpts
/// (`archived_at` is set); after `JOBD_NOTIFY_RETENTION` (default 180 days) the row
/// and its tries are deleted. Pending and sending rows are never touched.
///
/// An archived notification still answers its idempotency key: a repeat send of a
/// sent key is "already sent". After deletion the key is forgotten, so a job that
/// repeats a key that old sends again.
///
/// Each statement archives or deletes at most `batch` notifications. Payload
/// overrides: `{"archive_after": "7d", "delete_after": "off", "batch": 1000}`.
public struct NotificationsTrimHandler: TierRetentionHandler {
    public let kind = "notifications.trim"
    public let retention: RetentionJob
    public let settings: NotificationRetentionSettings

    public init(retention: RetentionJob, settings: NotificationRetentionSettings) {
        self.retention = retention
        self.settings = settings
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var archive = settings.archiveAfter
        var delete = settings.deleteAfter
        var batch = batch
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "archive_after": archive = try RetentionWindow.payload(value, field: key, kind: kind)
            case "delete_after": delete = try RetentionWindow.payload(value, field: key, kind: kind)
            case "batch": batch = try RetentionRun.batch(value, kind: kind)
            default: throw RetentionRun.unknownField(key, kind: kind, known: "archive_after, delete_after, batch")
            }
        }
        _ = try await RetentionRun(batch: batch, timeBudget: timeBudget)
            .handle(steps(archiveAfter: archive, deleteAfter: delete), kind: kind, context: context)
    }

    /// Deletion first, so rows about to go are not archived on the way.
    public func steps(archiveAfter: Duration?, deleteAfter: Duration?) -> [RetentionRun.Step] {
        var steps: [RetentionRun.Step] = []
        let database = database
        if let deleteAfter {
            steps.append(.init("deleted") { batch in
                try await database.withConnection { connection in
                    try await connection.firstRow(NotificationStatements.TrimFinished(olderThan: deleteAfter, batch: batch)) ?? 0
                }
            })
        }
        if let archiveAfter {
            steps.append(.init("archived") { batch in
                try await database.withConnection { connection in
                    try await connection.firstRow(NotificationStatements.Archive(olderThan: archiveAfter, batch: batch)) ?? 0
                }
            })
        }
        return steps
    }
}
