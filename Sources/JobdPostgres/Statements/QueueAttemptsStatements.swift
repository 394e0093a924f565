import JobdCore

/// `queue.attempts`: the ledger. One row per attempt, written by the statement that
/// ends it (completion, rescue), plus a `solo` mark for a suspect that runs alone;
/// rows written before migration 0022 may also hold a `start` row per attempt.
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

    /// A job's latest `limit` ledger rows in time order, each ended attempt preceded
    /// by its start (from the row's `started_at` and daemon) and the running attempt,
    /// if any, shown as a start read from the job row.
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
            WITH ledger AS (
                SELECT attempt, event, at, daemon, outcome, error_code, run_seconds, started_at
                  FROM queue.attempts WHERE job_id = $1::bigint ORDER BY at DESC LIMIT $2::int
            ), events AS (
                SELECT attempt, event, at, daemon, outcome, error_code, run_seconds FROM ledger
                UNION ALL
                SELECT attempt, 'start', started_at, daemon, NULL, NULL, NULL FROM ledger
                 WHERE event = 'end' AND started_at IS NOT NULL
                UNION ALL
                SELECT attempt, 'start', started_at, leased_by, NULL, NULL, NULL FROM queue.jobs
                 WHERE id = $1::bigint AND state = 'running' AND started_at IS NOT NULL
            )
            SELECT attempt, event, at::text AS at, daemon, outcome, error_code, run_seconds
              FROM events ORDER BY at, CASE event WHEN 'start' THEN 0 WHEN 'solo' THEN 1 ELSE 2 END
            """
    }
}
