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
public struct NotificationsTrimHandler: JobHandler {
    public let kind = "notifications.trim"
    /// The daemon's own housekeeping: producers may not enqueue it (`queue.internal_kinds`).
    public var isInternal: Bool { true }
    let database: TierDatabase
    let settings: RetentionSettings
    let timeBudget: Duration

    public init(database: TierDatabase, settings: RetentionSettings, timeBudget: Duration = .seconds(20)) {
        self.database = database
        self.settings = settings
        self.timeBudget = timeBudget
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var archive = settings.notificationsArchive
        var delete = settings.notifications
        var batch = settings.batch
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "archive_after": archive = try RetentionRun.window(value, field: key, kind: kind)
            case "delete_after": delete = try RetentionRun.window(value, field: key, kind: kind)
            case "batch": batch = try RetentionRun.batch(value, kind: kind)
            default: throw RetentionRun.unknownField(key, kind: kind, known: "archive_after, delete_after, batch")
            }
        }
        _ = try await RetentionRun(batch: batch, timeBudget: timeBudget)
            .handle(steps(archiveAfter: archive, deleteAfter: delete), kind: kind, context: context)
    }

    /// Deletion first, so rows about to go are not archived on the way.
    public func steps(archiveAfter: Double?, deleteAfter: Double?) -> [RetentionRun.Step] {
        var steps: [RetentionRun.Step] = []
        let database = database
        if let deleteAfter {
            steps.append(.init("deleted") { batch in
                try await database.withConnection { connection in
                    RetentionRun.count(try await connection.query(
                        "SELECT notifications.trim_finished($1::float8, $2::int)", [String(deleteAfter), String(batch)]).rows)
                }
            })
        }
        if let archiveAfter {
            steps.append(.init("archived") { batch in
                try await database.withConnection { connection in
                    RetentionRun.count(try await connection.query(Self.archiveSQL, [String(archiveAfter), String(batch)]).rows)
                }
            })
        }
        return steps
    }

    /// Empties the body of up to $2 finished notifications older than $1 seconds
    /// and the excerpts of their tries, in one statement. `updated_at` is left alone:
    /// it stays the time the notification finished, which deletion goes by.
    static let archiveSQL = """
        WITH doomed AS (
            SELECT id FROM notifications.notifications
             WHERE status IN ('sent', 'failed') AND archived_at IS NULL
               AND updated_at < now() - make_interval(secs => $1::float8)
             ORDER BY updated_at
             LIMIT $2::int
             FOR UPDATE SKIP LOCKED
        ), archived AS (
            UPDATE notifications.notifications n SET body = '', archived_at = now()
              FROM doomed d WHERE n.id = d.id
            RETURNING n.id
        ), excerpts AS (
            UPDATE notifications.attempts a SET excerpt = NULL
              FROM archived x WHERE a.notification_id = x.id AND a.excerpt IS NOT NULL
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM excerpts)
        """
}
