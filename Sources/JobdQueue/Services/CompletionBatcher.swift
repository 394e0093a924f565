import JobdCore
import JobdPostgres
import Logging

/// Group commit for attempt completions (a `GroupCommitBatcher` that retries).
///
/// Workers submit completions and move on; one flusher writes everything submitted
/// since its last write in a single fenced statement. At low load a batch is one
/// completion and is written at once; under load, completions pile up while the
/// previous batch is in flight, so the round trips per job fall as load rises.
/// A failed write keeps its batch and retries with backoff: a completion is never
/// dropped while the daemon runs (if the lease expires meanwhile, the fence refuses
/// it and the rescuer's decision stands).
///
/// Completions submitted and not yet written (queued or in the statement in flight)
/// are "unwritten": the lease heartbeat keeps extending them, because a worker slot
/// is freed as soon as its handler returns but the attempt is not over until its
/// completion is written, and a slow write (an outage, a lock) must not let the
/// rescuer run it again.
public final class CompletionBatcher: Sendable {
    private let batcher: GroupCommitBatcher<AttemptCompletion, Bool>

    /// - Parameter daemon: the daemon whose attempts these are (it claimed them), as
    ///   the ledger rows name it.
    public init(store: QueueStore, daemon: String, stats: DaemonStats, logger: Logger, maxBatch: Int = 2_000) {
        batcher = GroupCommitBatcher(
            maxBatch: maxBatch, onFailure: .retry(RetryBackoff(base: .milliseconds(50), maximum: .seconds(5))),
            onRetry: { error, failures, count in
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("writing completions failed; retrying", metadata: [
                        LogKey.count: "\(count)", LogKey.error: "\(error)",
                    ])
                }
            },
            write: { entries in
                let applied = try await store.complete(entries.map(\.item), daemon: daemon)
                return Self.account(entries, applied: applied, stats: stats, logger: logger)
            })
    }

    public func submit(_ completion: AttemptCompletion) {
        batcher.submit(completion)
    }

    /// Completions submitted and not yet taken by a write.
    public var backlog: Int { batcher.backlog }

    /// Fences whose completion is not written yet; their leases must stay alive.
    public var unwrittenFences: [AttemptFence] { batcher.unwritten.map(\.fence) }

    /// How many completions are submitted and not yet written.
    public var unwrittenCount: Int { batcher.unwrittenCount }

    public func isUnwritten(_ fence: AttemptFence) -> Bool { batcher.containsUnwritten { $0.fence == fence } }

    /// Returns once fewer than `limit` completions are unwritten, or when `give up`
    /// says so (checked at least every 100 ms). One waiter at a time: the pool's
    /// fetch loop.
    public func waitForBacklog(below limit: Int, giveUp: () -> Bool) async {
        await batcher.waitForBacklog(below: limit, giveUp: giveUp)
    }

    /// Flushes until `finish()` was called and everything submitted is written.
    public func run() async {
        await batcher.run()
    }

    /// Asks `run()` to return once the backlog is written.
    public func finish() {
        batcher.finish()
    }

    /// Logs and counts what one write did; returns whether each entry was applied, in
    /// order. A completion refused after a failed write is flagged: if the connection
    /// broke after the commit, the retry finds the attempt already finished, and that
    /// is not a lease that was taken over.
    private static func account(
        _ entries: [GroupCommitBatcher<AttemptCompletion, Bool>.Entry], applied: Set<AttemptFence>,
        stats: DaemonStats, logger: Logger
    ) -> [Bool] {
        var completed = 0, retried = 0, dead = 0, stale = 0
        var outcomes: [Bool] = []
        outcomes.reserveCapacity(entries.count)
        for entry in entries {
            let completion = entry.item
            let wasApplied = applied.contains(completion.fence)
            outcomes.append(wasApplied)
            guard wasApplied else {
                stale += 1
                logger.warning("stale completion refused", metadata: [
                    LogKey.messageID: "\(JobdMessageID.staleCompletionRefused.rawValue)",
                    LogKey.jobID: "\(completion.fence.id)", LogKey.jobAttempt: "\(completion.fence.attempt)",
                    LogKey.outcome: "\(completion.outcome.rawValue)",
                    "after_failed_write": "\(entry.failedWrites > 0)",
                ])
                continue
            }
            switch completion.outcome {
            case .completed: completed += 1
            case .retry, .snooze, .release: retried += 1
            case .dead:
                dead += 1
                logger.warning("job dead-lettered", metadata: [
                    LogKey.messageID: "\(JobdMessageID.jobDeadLettered.rawValue)",
                    LogKey.jobID: "\(completion.fence.id)", LogKey.jobAttempt: "\(completion.fence.attempt)",
                    LogKey.errorCode: "\(completion.errorCode ?? "failed")",
                    LogKey.error: "\(completion.errorMessage ?? "")",
                ])
            }
        }
        stats.update {
            $0.completed += completed
            $0.retried += retried
            $0.deadLettered += dead
            $0.staleRefused += stale
        }
        stats.recordFinished(count: completed + dead)
        return outcomes
    }
}
