import JobdCore

/// `queue.bulk_actions` and the functions of its migration: the dry-run count, the
/// start (audit row + job), one batch, and the reads of the console.
enum QueueBulkActionsStatements {
    /// How many rows match now, and the id bound that fixes that set (`upper`): a
    /// plain count (`queue.bulk_action_count`), which needs no order.
    struct Count: PostgresStatement {
        var target: QueueAdmin.BulkTarget
        var filter: String

        struct Row: Sendable {
            var count: Int
            var upper: JobID
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(target.rawValue), .jsonb(filter)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(count: try row.decode("count"), upper: try row.decode("upper"))
        }

        static let sql: SQL = """
            WITH u AS (SELECT coalesce(max(id), 0) + 1 AS upper FROM queue.jobs)
            SELECT queue.bulk_action_count($1, $2::jsonb, u.upper) AS count, u.upper FROM u
            """
    }

    /// The audit row and the job that works through it.
    struct Start: PostgresStatement {
        var target: QueueAdmin.BulkTarget
        var action: QueueAdmin.BulkVerb
        var filter: String
        var requestedBy: String
        var upper: JobID
        var batch: Int

        struct Row: Sendable {
            var id: Int64
            var expected: Int
            var jobID: JobID
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(target.rawValue), .text(action.rawValue), .jsonb(filter), .text(requestedBy), .int(upper),
             .int(batch)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), expected: try row.decode("expected"), jobID: try row.decode("job_id"))
        }

        static let sql: SQL = """
            SELECT id, expected, job_id FROM queue.bulk_action_start($1, $2, $3::jsonb, $4, $5::bigint, $6::int)
            """
    }

    /// One step of at most `limit` rows (see `queue.bulk_action_step(bigint, integer)`).
    struct Step: PostgresStatement {
        var id: Int64
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.BulkStep {
            QueueAdmin.BulkStep(
                processed: try row.decode("processed"), affected: try row.decode("affected"), done: try row.decode("done"),
                cancelled: try row.decode("cancelled"))
        }

        static let sql: SQL = """
            SELECT processed, affected, done, cancelled FROM queue.bulk_action_step($1::bigint, $2::int)
            """
    }

    /// One bulk action (nil id: the newest `limit`), with its job's state.
    struct List: PostgresStatement {
        var id: Int64?
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.BulkAction {
            QueueAdmin.BulkAction(
                id: try row.decode("id"), target: try row.decode("target"), action: try row.decode("action"),
                filter: try row.decode("filter"), requestedBy: try row.decode("requested_by"),
                expected: try row.decode("expected"), processed: try row.decode("processed"),
                affected: try row.decode("affected"), batch: try row.decode("batch"),
                jobID: try row.decode("job_id", as: JobID?.self), jobState: try row.decode("job_state", as: String?.self),
                jobError: try row.decode("job_error", as: String?.self),
                createdAt: try row.decode("created_at"), startedAt: try row.decode("started_at", as: String?.self),
                finishedAt: try row.decode("finished_at", as: String?.self),
                cancelledAt: try row.decode("cancelled_at", as: String?.self))
        }

        static let sql: SQL = """
            SELECT b.id, b.target, b.action, b.filter::text AS filter, b.requested_by, b.expected, b.processed,
                   b.affected, b.batch, b.job_id, j.state AS job_state, left(j.last_error, 300) AS job_error,
                   b.created_at::text AS created_at, b.started_at::text AS started_at,
                   b.finished_at::text AS finished_at, b.cancelled_at::text AS cancelled_at
              FROM queue.bulk_actions b LEFT JOIN queue.jobs j ON j.id = b.job_id
             WHERE ($1::bigint IS NULL OR b.id = $1::bigint)
             ORDER BY b.id DESC
             LIMIT $2::int
            """
    }
}
