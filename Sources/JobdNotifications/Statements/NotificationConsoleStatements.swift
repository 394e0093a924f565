import JobdCore
import JobdPostgres

/// The web console's reads of `notifications.notifications` and its attempts: one
/// notification by id, its tries, and the newest ones (optionally of one status).
enum NotificationConsoleStatements {
    static func decode(_ row: PostgresRow) throws -> NotificationStatus {
        NotificationStatus(
            id: try row.decode("id"), channel: try row.decode("channel"), recipient: try row.decode("recipient"),
            subject: try row.decode("subject", as: String?.self), status: try row.decode("status"),
            tries: try row.decode("tries"), jobID: try row.decode("job_id", as: JobID?.self),
            lastStatusCode: try row.decode("last_status_code", as: Int?.self),
            lastError: try row.decode("last_error", as: String?.self), createdAt: try row.decode("created_at"),
            updatedAt: try row.decode("updated_at"), sentAt: try row.decode("sent_at", as: String?.self),
            failedAt: try row.decode("failed_at", as: String?.self), archived: try row.decode("archived"))
    }

    struct One: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(id)] }
        static func decode(_ row: PostgresRow) throws -> NotificationStatus { try NotificationConsoleStatements.decode(row) }
        static let sql: SQL = """
            SELECT id, channel, recipient, subject, status, tries, job_id, last_status_code,
                   left(last_error, 300) AS last_error, created_at::text AS created_at, updated_at::text AS updated_at,
                   sent_at::text AS sent_at, failed_at::text AS failed_at, archived_at IS NOT NULL AS archived
              FROM notifications.notifications WHERE id = $1::bigint
            """
    }

    /// Newest first by id (the primary key), below `before` when given.
    struct Recent: PostgresStatement {
        var status: String?
        var before: Int64?
        var limit: Int
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.text(status), .int(before), .int(limit)] }
        static func decode(_ row: PostgresRow) throws -> NotificationStatus { try NotificationConsoleStatements.decode(row) }
        static let sql: SQL = """
            SELECT id, channel, recipient, subject, status, tries, job_id, last_status_code,
                   left(last_error, 300) AS last_error, created_at::text AS created_at, updated_at::text AS updated_at,
                   sent_at::text AS sent_at, failed_at::text AS failed_at, archived_at IS NOT NULL AS archived
              FROM notifications.notifications
             WHERE ($1::text IS NULL OR status = $1::text) AND ($2::bigint IS NULL OR id < $2::bigint)
             ORDER BY id DESC
             LIMIT $3::int
            """
    }

    struct Tries: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(id)] }
        static func decode(_ row: PostgresRow) throws -> NotificationStatus.Try {
            NotificationStatus.Try(
                number: try row.decode("try"), jobID: try row.decode("job_id", as: JobID?.self),
                jobAttempt: try row.decode("job_attempt", as: Int?.self), destination: try row.decode("destination"),
                startedAt: try row.decode("started_at"), durationMilliseconds: try row.decode("duration_ms"),
                outcome: try row.decode("outcome"), statusCode: try row.decode("status_code", as: Int?.self),
                errorCode: try row.decode("error_code", as: String?.self), excerpt: try row.decode("excerpt", as: String?.self))
        }
        static let sql: SQL = """
            SELECT try, job_id, job_attempt, destination, started_at::text AS started_at, duration_ms, outcome,
                   status_code, error_code, left(excerpt, 300) AS excerpt
              FROM notifications.attempts WHERE notification_id = $1::bigint
             ORDER BY try
             LIMIT 200
            """
    }
}
