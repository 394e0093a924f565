import JobdCore

/// Told about every finished attempt by the worker pool, right before the attempt's
/// completion is handed to the `CompletionBatcher`.
///
/// Called on the worker's task for every job, so it must neither block nor suspend:
/// record and return (the `FactsWriter` appends to a bounded in-memory buffer under
/// a lock). The completion may still be refused by the fence later (the lease was
/// lost); the attempt did run, so its fact stands.
public protocol AttemptObserver: Sendable {
    func attemptFinished(_ job: ClaimedJob, completion: AttemptCompletion)
}
