import JobdCore
import JobdPostgres

/// The bench's producers: its own INSERTs into `queue.jobs`, as any application's.
enum BenchStatements {
    /// `count` jobs of `kind` with an empty payload, in one statement; their ids.
    struct InsertJobs: PostgresStatement {
        var kind: String
        var count: Int

        // Plain, as an application's INSERT would be: the bench does not measure a
        // producer's prepared statements.
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(kind), .int(count)] }

        static func decode(_ row: PostgresRow) throws -> JobID { try row.decode("id") }

        static let sql: SQL = """
            INSERT INTO queue.jobs (kind, payload) SELECT $1, '{}' FROM generate_series(1, $2::int) RETURNING id
            """
    }
}
