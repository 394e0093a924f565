import JobdPostgres

/// The retention functions of the queue schema (`queue.prune_finished`,
/// `queue.trim_attempts`, `queue.trim_dead_letters`): each deletes at most `batch`
/// rows older than the window, as the schema owner (all `jobd_daemon` may delete
/// there), and returns how many it deleted.
enum QueueRetentionStatements {
    struct Deleted: Sendable, Equatable {
        var count: Int
    }

    /// Finished (`completed`, `cancelled`) jobs of `queue.jobs`.
    struct PruneFinishedJobs: PostgresStatement {
        var olderThan: Duration
        var batch: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Deleted { Deleted(count: try row.decode("deleted")) }

        static let sql: SQL = "SELECT queue.prune_finished($1::float8, $2::int) AS deleted"
    }

    /// `queue.attempts` rows of jobs finished before the window (or gone).
    struct TrimAttempts: PostgresStatement {
        var olderThan: Duration
        var batch: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Deleted { Deleted(count: try row.decode("deleted")) }

        static let sql: SQL = "SELECT queue.trim_attempts($1::float8, $2::int) AS deleted"
    }

    /// Dead letters of `queue.dead_letters`, with their dead jobs, oldest first.
    struct TrimDeadLetters: PostgresStatement {
        var olderThan: Duration
        var batch: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Deleted { Deleted(count: try row.decode("deleted")) }

        static let sql: SQL = "SELECT queue.trim_dead_letters($1::float8, $2::int) AS deleted"
    }
}
