import JobdCore
import JobdPostgres
import JobdRedis
import JobdThreads
import Logging
import ServiceLifecycle

/// Assembles the daemon's services from its configuration. The CLI runs them in one
/// `ServiceGroup`; the integration tests run them the same way, in process.
///
/// Connections: each service owns its own, each on its own thread —
/// Postgres: listener, promoter, maintenance, and per pool one for completions and
/// lease heartbeats and one per claim pipeline (`JOBD_CLAIM_PIPELINES`, default one);
/// Redis: promoter, maintenance, the autoscaler and one per claim pipeline. A claim
/// pipeline's Redis connection runs on its Postgres connection's thread: it pops and
/// then claims, in sequence, so sharing the thread saves two hand-offs per claim.
public struct JobDaemon: Sendable {
    /// In start order; `ServiceGroup` stops them in reverse: the pool shutdown trigger
    /// first (every pool stops fetching and its drain deadline starts), then the
    /// listener and the promoter stop, then the pools drain, then maintenance ends,
    /// then the handlers' own services and the tiers' services (which the draining
    /// jobs may still need).
    public let services: [any Service]
    public let pools: [WorkerPool]
    public let promoter: Promoter
    public let maintenance: Maintenance
    /// Sizes the pools between their bounds and publishes what they want.
    public let autoscaler: Autoscaler
    public let stats: DaemonStats
    public let identity: DaemonIdentity
    /// The fault suite's switches (`JOBD_TEST_FAULTS=1` only); nil in production.
    public let testFaults: TestFaults?

    public init(
        configuration: DaemonConfiguration,
        handlers: HandlerRegistry,
        identity: DaemonIdentity,
        logger: Logger,
        postgres: (_ name: String, _ scans: PostgresScans) -> PostgresConnection,
        redis: (_ name: String, _ thread: DedicatedThreadExecutor?) -> RedisDispatch,
        testFaults: TestFaults? = nil,
        tierServices: [any Service] = []
    ) {
        var logger = logger
        logger[metadataKey: LogKey.daemon] = "\(identity.id)"
        let stats = DaemonStats()
        let wake = WakeSignal()
        let poolShutdown = PoolShutdown()
        self.stats = stats
        self.identity = identity
        self.testFaults = testFaults
        let pools = configuration.workers.pools.map { pool in
            let name = pool.lanes.count == JobPriority.allCases.count ? "shared" : pool.lanes.map(\.rawValue).joined()
            // A pool that may grow gets the claim pipelines of its maximum from the start.
            // Claims probe the primary key, never scan the table (`QueueStore.claim`).
            let claim = postgres("claim-\(name)", .indexed)
            return WorkerPool(
                name: name, lanes: pool.lanes, slots: pool.slots,
                claimStore: QueueStore(connection: claim),
                completionStore: QueueStore(connection: postgres("complete-\(name)", .any)),
                dispatch: redis("fetch-\(name)", claim.thread), handlers: handlers, configuration: configuration,
                daemonID: identity.id, stats: stats, logger: logger, promoterWake: wake,
                shutdown: poolShutdown, extraPipelines: (1..<WorkerPool.claimPipelines(
                    forSlots: pool.bounds.upperBound, configured: configuration.claimPipelines)).map { index in
                    let claim = postgres("claim-\(name)-\(index + 1)", .indexed)
                    return ClaimPipeline(
                        store: QueueStore(connection: claim),
                        dispatch: redis("fetch-\(name)-\(index + 1)", claim.thread))
                })
        }
        self.pools = pools
        maintenance = Maintenance(
            store: QueueStore(connection: postgres("maintenance", .any)), dispatch: redis("maintenance", nil),
            promoterWake: wake, configuration: configuration, daemon: identity, stats: stats, logger: logger,
            liveWorkers: { pools.map(\.capacity).reduce(0, +) })
        promoter = Promoter(
            store: QueueStore(connection: postgres("promoter", .indexed)), dispatch: redis("promoter", nil), wake: wake,
            configuration: configuration, stats: stats, logger: logger, daemonID: identity.id,
            testFaults: testFaults)
        let listener = NotificationListener(connection: postgres("listener", .any), wake: wake, stats: stats, logger: logger)
        autoscaler = Autoscaler(
            pools: pools, bounds: configuration.workers.pools.map(\.bounds), dispatch: redis("autoscaler", nil),
            settings: configuration.scaling, daemonID: identity.id, logger: logger)
        // After the pools: it stops before they drain, so a drain sees no resize.
        var services: [any Service] = tierServices + handlers.services + [maintenance] + pools + [autoscaler, promoter, listener,
            PoolShutdownTrigger(shutdown: poolShutdown, timeout: configuration.shutdownTimeout)]
        let internalKinds = handlers.internalKinds
        if !internalKinds.isEmpty {
            services.append(InternalKindsDeclaration(
                kinds: internalKinds, connection: postgres("internal-kinds", .any), logger: logger))
        }
        self.services = services
    }

    /// Applies new worker counts or bounds without a restart when the pools keep their
    /// lanes (a shared pool stays shared, per-priority pools keep the same lanes); a
    /// pool outside its new bounds is resized at once (a fixed count is bounds n-n),
    /// and the autoscaler works within them from then on. Returns false, changing
    /// nothing, when the layout itself changed and needs a restart.
    public func resize(workers layout: WorkerLayout) -> Bool {
        let wanted = layout.pools
        guard wanted.count == pools.count, zip(wanted, pools).allSatisfy({ $0.lanes == $1.lanes }) else { return false }
        autoscaler.setBounds(wanted.map(\.bounds))
        return true
    }

    /// Worker slots the pools would run if their maxima and the ceiling allowed
    /// (above `workerUsage.total` when this daemon lacks capacity).
    public var desiredWorkers: Int { max(autoscaler.desiredWorkers, workerUsage.total) }

    /// Busy and total worker slots across pools.
    public var workerUsage: (busy: Int, total: Int) {
        (pools.map(\.busy).reduce(0, +), pools.map(\.capacity).reduce(0, +))
    }
}
