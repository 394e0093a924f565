import JobdPostgres

/// Statements about the session rather than a table.
enum SessionStatements {
    /// A round trip that touches nothing: proves the session (and the network under
    /// it) is alive.
    struct Probe: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static let sql: SQL = "SELECT 1"
    }
}
