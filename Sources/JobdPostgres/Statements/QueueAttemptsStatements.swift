import JobdCore

/// `queue.attempts`: the ledger of every attempt's start, solo mark and end.
enum QueueAttemptsStatements {
    /// Records that a suspect runs alone; affects one row while the fence holds.
    struct MarkSolo: PostgresStatement {
        var fence: AttemptFence
        var daemon: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(fence.id), .int(fence.attempt), .text(daemon), .int(fence.token)] }

        static let sql: SQL = """
            INSERT INTO queue.attempts (job_id, attempt, event, daemon)
            SELECT id, attempt, 'solo', $3 FROM queue.jobs
             WHERE id = $1::bigint AND attempt = $2::int AND lease_token = $4::bigint AND state = 'running'
            """
    }

    /// A job's latest `limit` ledger rows, in time order.
    struct History: PostgresStatement {
        var jobID: Int64
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(jobID), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.AttemptEvent {
            QueueAdmin.AttemptEvent(
                attempt: try row.decode("attempt"), event: try row.decode("event"), at: try row.decode("at"),
                daemon: try row.decode("daemon", as: String?.self), outcome: try row.decode("outcome", as: String?.self),
                errorCode: try row.decode("error_code", as: String?.self),
                runSeconds: try row.decode("run_seconds", as: Double?.self))
        }

        static let sql: SQL = """
            SELECT attempt, event, at::text AS at, daemon, outcome, error_code, run_seconds FROM (
                SELECT * FROM queue.attempts WHERE job_id = $1::bigint ORDER BY at DESC LIMIT $2::int
            ) a ORDER BY at, CASE event WHEN 'end' THEN 1 ELSE 0 END
            """
    }
}
