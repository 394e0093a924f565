import JobdCore
import JobdPostgres
import JobdRedis
import Logging
import ServiceLifecycle

/// Moves due jobs from Postgres to the Redis lists, by priority.
///
/// One pass: read the three list lengths, promote up to `high water − length` due
/// jobs per priority in one statement (`FOR UPDATE SKIP LOCKED`, so any number of
/// daemons can promote at once without taking the same row), then push them in one
/// pipeline. Redis thus holds only what workers will take soon, and a newly due
/// high-priority job is never buried behind a deep low list.
///
/// A crash between the commit and the push leaves rows `promoted` with nothing in
/// Redis; the reconciler returns them to `available` after `promotedTimeout`.
public struct Promoter: Service {
    let store: QueueStore
    let dispatch: RedisDispatch
    let wake: WakeSignal
    let configuration: DaemonConfiguration
    let stats: DaemonStats
    let logger: Logger

    public init(
        store: QueueStore, dispatch: RedisDispatch, wake: WakeSignal,
        configuration: DaemonConfiguration, stats: DaemonStats, logger: Logger
    ) {
        self.store = store
        self.dispatch = dispatch
        self.wake = wake
        self.configuration = configuration
        self.stats = stats
        self.logger = logger
    }

    public func run() async throws {
        let loop = ResilientLoop(name: "promoter", logger: logger, stats: stats)
        await cancelWhenGracefulShutdown {
            await loop.run {
                while TestFaults.promoterWedged.load(ordering: .relaxed) && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                let outcome = try await pass()
                stats.beat("promoter")
                if outcome.saturated { return }  // more is due: go again at once
                let nextDue = try await store.secondsUntilNextDue()
                let sleep = min(configuration.pollInterval, max(0.001, nextDue ?? configuration.pollInterval))
                await wake.wait(timeout: outcome.listsFull ? min(sleep, 0.05) : sleep)
            }
        }
        await store.connection.close()
    }

    struct PassOutcome {
        var promoted = 0
        /// A priority hit its batch limit: there may be more due right now.
        var saturated = false
        /// Some list is at its high-water mark: check again soon, as workers drain it.
        var listsFull = false
    }

    /// Runs one pass and returns how many jobs it promoted (tests drive it directly).
    public func promoteOnce() async throws -> Int { try await pass().promoted }

    func pass() async throws -> PassOutcome {
        let lengths = try await dispatch.lengths()
        var limits: [JobPriority: Int] = [:]
        var outcome = PassOutcome()
        for priority in JobPriority.allCases {
            let room = configuration.redisHighWater - (lengths[priority] ?? 0)
            limits[priority] = max(0, min(configuration.promoteBatch, room))
            if room <= 0 { outcome.listsFull = true }
        }
        guard limits.values.contains(where: { $0 > 0 }) else { return outcome }
        let promoted = try await store.promote(limits: limits)
        guard !promoted.isEmpty else { return outcome }
        do {
            try await dispatch.push(promoted)
        } catch {
            // The rows are committed as promoted but Redis never got them: hand them
            // back now rather than waiting for the reconciler's timeout.
            _ = try? await store.unpromote(ids: promoted.map(\.id))
            throw error
        }
        outcome.promoted = promoted.count
        var counts: [JobPriority: Int] = [:]
        for item in promoted { counts[item.priority, default: 0] += 1 }
        for priority in JobPriority.allCases where counts[priority, default: 0] >= (limits[priority] ?? 0) && (limits[priority] ?? 0) > 0 {
            outcome.saturated = true
        }
        stats.update { $0.promoted += promoted.count }
        logger.debug("promoted jobs", metadata: [LogKey.count: "\(promoted.count)"])
        return outcome
    }
}
