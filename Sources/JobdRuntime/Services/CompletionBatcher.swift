import JobdCore
import JobdPostgres
import Logging
import Synchronization

/// Group commit for attempt completions.
///
/// Workers submit completions and move on; one flusher writes everything submitted
/// since its last write in a single fenced statement. At low load a batch is one
/// completion and is written at once; under load, completions pile up while the
/// previous batch is in flight, so the round trips per job fall as load rises.
/// A failed write keeps its batch and retries with backoff: a completion is never
/// dropped while the daemon runs (if the lease expires meanwhile, the fence refuses
/// it and the rescuer's decision stands).
public final class CompletionBatcher: Sendable {
    let store: QueueStore
    let stats: DaemonStats
    let logger: Logger
    let maxBatch: Int
    private let pending = Mutex<[AttemptCompletion]>([])
    /// Submitted and not yet written (queued or in the statement in flight). The
    /// lease heartbeat keeps extending these: a worker slot is freed as soon as its
    /// handler returns, but the attempt is not over until its completion is written,
    /// and a slow write (an outage, a lock) must not let the rescuer run it again.
    private let unwritten = Mutex<Set<AttemptFence>>([])
    /// Fences whose write failed at least once. If the connection broke after the
    /// commit, the retry finds the attempt already finished and is refused: the log
    /// says so, so that is not mistaken for a lease that was taken over.
    private let retried = Mutex<Set<AttemptFence>>([])
    private let wake = WakeSignal()
    /// Signalled after every write, for the one task waiting in `waitForBacklog`.
    private let written = WakeSignal()
    private let finishing = Mutex(false)

    public init(store: QueueStore, stats: DaemonStats, logger: Logger, maxBatch: Int = 2_000) {
        self.store = store
        self.stats = stats
        self.logger = logger
        self.maxBatch = maxBatch
    }

    public func submit(_ completion: AttemptCompletion) {
        unwritten.withLock { _ = $0.insert(completion.fence) }
        pending.withLock { $0.append(completion) }
        wake.signal()
    }

    public var backlog: Int { pending.withLock { $0.count } }

    /// Fences whose completion is not written yet; their leases must stay alive.
    public var unwrittenFences: [AttemptFence] { unwritten.withLock { Array($0) } }

    /// How many completions are submitted and not yet written.
    public var unwrittenCount: Int { unwritten.withLock { $0.count } }

    public func isUnwritten(_ fence: AttemptFence) -> Bool { unwritten.withLock { $0.contains(fence) } }

    /// Returns once fewer than `limit` completions are unwritten, or when `give up`
    /// says so (checked at least every 100 ms). One waiter at a time: the pool's
    /// fetch loop.
    public func waitForBacklog(below limit: Int, giveUp: () -> Bool) async {
        while unwrittenCount >= limit && !giveUp() {
            await written.wait(timeout: 0.1)
        }
    }

    /// Flushes until `finish()` was called and everything submitted is written.
    public func run() async {
        var failures = 0
        var generator = SystemRandomNumberGenerator()
        let backoff = RetryBackoff(baseSeconds: 0.05, maximumSeconds: 5)
        while true {
            let batch = pending.withLock { queue -> [AttemptCompletion] in
                let count = min(queue.count, maxBatch)
                let batch = Array(queue.prefix(count))
                queue.removeFirst(count)
                return batch
            }
            if batch.isEmpty {
                if finishing.withLock({ $0 }) || Task.isCancelled { return }
                await wake.wait(timeout: 0.5)
                continue
            }
            do {
                try await write(batch)
                failures = 0
            } catch {
                // Put the batch back in front and try again later.
                pending.withLock { $0.insert(contentsOf: batch, at: 0) }
                retried.withLock { set in
                    for completion in batch { set.insert(completion.fence) }
                }
                if Task.isCancelled { return }
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("writing completions failed; retrying", metadata: [
                        LogKey.count: "\(batch.count)", LogKey.error: "\(error)",
                    ])
                }
                try? await Task.sleep(for: .milliseconds(Int(backoff.delay(forAttempt: failures, using: &generator) * 1000)))
            }
        }
    }

    /// Asks `run()` to return once the backlog is written.
    public func finish() {
        finishing.withLock { $0 = true }
        wake.signal()
    }

    private func write(_ batch: [AttemptCompletion]) async throws {
        let applied = try await store.complete(batch)
        unwritten.withLock { set in
            for completion in batch { set.remove(completion.fence) }
        }
        written.signal()
        let retriedFences = retried.withLock { set -> Set<AttemptFence> in
            guard !set.isEmpty else { return [] }
            var hit = Set<AttemptFence>()
            for completion in batch where set.remove(completion.fence) != nil { hit.insert(completion.fence) }
            return hit
        }
        var completed = 0, retried = 0, dead = 0, stale = 0
        for completion in batch {
            guard applied.contains(completion.fence) else {
                stale += 1
                logger.warning("stale completion refused", metadata: [
                    LogKey.messageID: "\(JobdMessageID.staleCompletionRefused.rawValue)",
                    LogKey.jobID: "\(completion.fence.id)", LogKey.jobAttempt: "\(completion.fence.attempt)",
                    LogKey.outcome: "\(completion.outcome.rawValue)",
                    "after_failed_write": "\(retriedFences.contains(completion.fence))",
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
    }
}
