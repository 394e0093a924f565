import JobdCore
import JobdRedis
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Sizes the worker pools between their bounds (`JOBD_WORKERS=1-64`): samples every
/// pool each `sampleInterval` — slots running and reserved, its Redis lists' length,
/// attempts started and their longest queue wait — feeds `PoolScaler`, and applies
/// its decisions with `WorkerSlots.resize`, the path a reload takes.
///
/// Every resize is logged (`pool resized`, with pool, from, to, reason, backlog and
/// wait) and counted (`jobd_pool_resizes_total`); each sample also publishes what
/// each pool wants (`jobd_desired_workers`), so an operator's autoscaler can add
/// daemons when one is at its maximum and still short. Pools with fixed sizes are
/// sampled too: they publish their want the same way and never resize.
///
/// About once a second it also publishes the daemon's slots, want and busy slots to
/// Redis (`DaemonCapacity`, expiring after 10 s) for `jobd status` on any machine.
///
/// One Redis connection of its own (one `LLEN` round trip per sample).
public final class Autoscaler: Service, Sendable {
    let pools: [WorkerPool]
    let dispatch: RedisDispatch
    let settings: ScalingSettings
    let logger: Logger
    let daemonID: String
    private let controller: Mutex<PoolScaler>
    private let started = ContinuousClock.now
    /// The last sample's wants, summed over pools (the status line's "want").
    private let lastDesired: Atomic<Int>

    public init(
        pools: [WorkerPool], bounds: [ClosedRange<Int>], dispatch: RedisDispatch, settings: ScalingSettings,
        daemonID: String, logger: Logger
    ) {
        precondition(pools.count == bounds.count, "one range per pool")
        self.pools = pools
        self.daemonID = daemonID
        self.dispatch = dispatch
        self.settings = settings
        self.logger = logger
        let described = zip(pools, bounds).map { pool, bounds in
            PoolScaler.Pool(name: pool.name, rank: pool.lanes.map(\.rank).min() ?? 0, bounds: bounds)
        }
        controller = Mutex(PoolScaler(pools: described, settings: settings))
        lastDesired = Atomic(bounds.map(\.lowerBound).reduce(0, +))
    }

    /// Worker slots the pools would run if their maxima and the ceiling allowed.
    public var desiredWorkers: Int { lastDesired.load(ordering: .relaxed) }

    /// Each pool's size as the controller set it.
    public var sizes: [Int] { controller.withLock { $0.sizes } }

    private var now: Duration { started.duration(to: .now) }

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var lastPublished = ContinuousClock.now - .seconds(60)
            while !Task.isCancelled {
                await sample()
                if ContinuousClock.now - lastPublished >= .seconds(1) {
                    lastPublished = .now
                    await publish()
                }
                try? await Task.sleep(for: settings.sampleInterval)
            }
        }
        try? await dispatch.removeCapacity(daemon: daemonID)
        await dispatch.connection.close()
    }

    /// New bounds from a reload, in pool order; a size outside them moves at once.
    public func setBounds(_ bounds: [ClosedRange<Int>]) {
        let decisions = controller.withLock { controller -> [PoolScaler.Decision] in
            let decisions = controller.setBounds(bounds, now: now)
            apply(decisions)
            return decisions
        }
        report(decisions)
    }

    private func sample() async {
        var lengths: [JobPriority: Int] = [:]
        do {
            lengths = try await dispatch.lengths()
        } catch {
            // No backlog signal this time: queue waits and idleness still count.
            logger.debug("autoscaler could not read the Redis lists", metadata: [LogKey.error: "\(error)"])
        }
        let observations = pools.map { pool -> PoolScaler.Observation in
            let starts = pool.metrics.starts.take()
            return PoolScaler.Observation(
                busy: pool.slots.busy, occupied: pool.slots.occupied,
                backlog: pool.lanes.reduce(0) { $0 + max(0, lengths[$1] ?? 0) },
                started: starts.started, maxWait: starts.started > 0 ? TotalConversion.duration(seconds: starts.maxWaitSeconds) : nil)
        }
        let moment = now
        let (decisions, desired, sizes) = controller.withLock { controller in
            let decisions = controller.tick(now: moment, observations: observations)
            apply(decisions)
            return (decisions, controller.desired(now: moment), controller.sizes)
        }
        report(decisions)
        lastDesired.store(desired.reduce(0, +), ordering: .relaxed)
        for (index, pool) in pools.enumerated() {
            Gauge(label: MetricName.desiredWorkers, dimensions: [("pool", pool.name)]).record(desired[index])
            Gauge(label: MetricName.poolWorkers, dimensions: [("pool", pool.name)]).record(sizes[index])
        }
    }

    private func publish() async {
        let busy = pools.map(\.busy).reduce(0, +)
        let workers = pools.map(\.capacity).reduce(0, +)
        let capacity = DaemonCapacity(workers: workers, desired: max(desiredWorkers, workers), busy: busy)
        do {
            try await dispatch.publishCapacity(capacity, daemon: daemonID, ttl: .seconds(10))
        } catch {
            logger.debug("autoscaler could not publish the daemon's capacity", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// Called with the controller locked, so a reload and a sample apply in the order
    /// the controller decided them.
    private func apply(_ decisions: [PoolScaler.Decision]) {
        for decision in decisions { pools[decision.pool].slots.resize(to: decision.to) }
    }

    private func report(_ decisions: [PoolScaler.Decision]) {
        for decision in decisions {
            let pool = pools[decision.pool].name
            logger.notice("pool resized", metadata: [
                LogKey.messageID: "\(JobdMessageID.poolResized.id)",
                LogKey.pool: "\(pool)", LogKey.from: "\(decision.from)", LogKey.to: "\(decision.to)",
                LogKey.reason: "\(decision.reason.rawValue)", LogKey.backlog: "\(decision.backlog)",
                LogKey.waitMs: "\(decision.maxWait.map { TotalConversion.milliseconds($0) } ?? 0)",
            ])
            Counter(label: MetricName.poolResizes, dimensions: [
                ("pool", pool), ("direction", decision.direction), ("reason", decision.reason.rawValue),
            ]).increment()
        }
    }
}
