import JobdCore
import JobdPostgres

/// The fault suite's `probe` kind (registered only with `JOBD_TEST_FAULTS`, never in
/// production). It runs like `noop` — the same payload, except that it never aborts —
/// and, once that work succeeded, writes a receipt `(job_id, attempt, daemon)` to
/// the table `public.fault_receipts`, which the suite creates, through connections
/// of its own and committed before the handler returns.
///
/// The suite counts runs from these receipts instead of from the daemon's ledger: a
/// run whose completion never reached `queue.attempts` (the process killed between
/// the handler's return and the completion's commit) still left its receipt, so a
/// second run of the same job shows up as a second receipt. A receipt that cannot be
/// written fails the attempt transiently: a success without its receipt would be a
/// run the suite cannot see.
public struct FaultProbeHandler: JobHandler {
    public let kind = "probe"
    /// Receipt connections; a job writes through `connections[id % count]`, so
    /// concurrent attempts rarely queue behind one another's commit.
    let connections: [PostgresConnection]
    let daemon: String

    public init(connections: [PostgresConnection], daemon: String) {
        precondition(!connections.isEmpty)
        self.connections = connections
        self.daemon = daemon
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        try await NoopHandler(testFaults: false).handle(job, context: context)
        let connection = connections[Int(job.id.magnitude % UInt64(connections.count))]
        do {
            try await connection.execute(FaultReceiptsStatements.Insert(jobID: job.id, attempt: job.attempt, daemon: daemon))
        } catch {
            throw JobFailure.transient("probe receipt not written: \(error)", code: "probe_receipt_failed")
        }
    }

    public func close() async {
        for connection in connections { await connection.close() }
    }
}
