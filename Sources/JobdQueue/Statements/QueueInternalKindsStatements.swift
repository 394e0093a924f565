import JobdPostgres

/// `queue.internal_kinds`: kinds the producer door (migration 0013's INSERT trigger)
/// refuses to producers.
enum QueueInternalKindsStatements {
    /// Adds `kinds`; kinds already listed are left alone. Affects one row per kind added.
    struct Declare: PostgresStatement {
        var kinds: [String]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.textArray(kinds.map { $0 })] }

        static let sql: SQL = """
            INSERT INTO queue.internal_kinds (kind) SELECT unnest($1::text[])
            ON CONFLICT (kind) DO NOTHING
            """
    }
}
