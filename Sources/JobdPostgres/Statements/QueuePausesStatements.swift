/// `queue.pauses`: paused priority lanes and kinds, read by the promoter's statements.
enum QueuePausesStatements {
    /// Affects one row when it was not paused yet.
    struct Pause: PostgresStatement {
        var scope: QueueAdmin.PauseScope
        var name: String
        var pausedBy: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(scope.rawValue), .text(name), .text(pausedBy)] }

        static let sql: SQL = """
            INSERT INTO queue.pauses (scope, name, paused_by) VALUES ($1, $2, $3)
            ON CONFLICT (scope, name) DO NOTHING
            """
    }

    /// Affects one row when it was paused.
    struct Resume: PostgresStatement {
        var scope: QueueAdmin.PauseScope
        var name: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(scope.rawValue), .text(name)] }

        static let sql: SQL = "DELETE FROM queue.pauses WHERE scope = $1 AND name = $2"
    }

    /// Wakes the promoters now rather than at their next poll.
    struct WakePromoters: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static let sql: SQL = "SELECT pg_notify('jobd_jobs', '')"
    }

    struct List: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.Pause {
            QueueAdmin.Pause(
                scope: try row.decode("scope"), name: try row.decode("name"), pausedBy: try row.decode("paused_by"),
                pausedAt: try row.decode("paused_at"))
        }

        static let sql: SQL = "SELECT scope, name, paused_by, paused_at::text AS paused_at FROM queue.pauses ORDER BY scope, name"
    }
}

extension QueueAdmin.PauseScope: PostgresDecodable {}
