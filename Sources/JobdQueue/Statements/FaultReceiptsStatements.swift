import JobdCore
import JobdPostgres

/// `public.fault_receipts`: created by the fault suite (never by a migration); one
/// row per successful run of its `probe` kind.
enum FaultReceiptsStatements {
    struct Insert: PostgresStatement {
        var jobID: JobID
        var attempt: Int
        var daemon: String

        var bindings: PostgresBindings { [.int(jobID), .int(attempt), .text(daemon)] }

        static let sql: SQL = "INSERT INTO public.fault_receipts (job_id, attempt, daemon) VALUES ($1, $2, $3)"
    }
}
