import JobdCore
import JobdPostgres
import JobdRedis
import Logging
import ServiceLifecycle
import Synchronization

/// The periodic upkeep that makes crashes and Redis losses harmless:
/// - **rescuer**: attempts whose lease expired (their daemon died or froze) go back
///   to `available`, or to the dead letters when spent or poisoned;
/// - **reconciler**: detects that Redis lost its data (the epoch key vanished or
///   changed), says so, and wakes the promoter. Nothing needs undoing in Postgres:
///   pushing writes nothing there, and the elected promoter, seeing its lists empty
///   or short, forgets the lost ids and pushes every waiting job again (`PushedIDs`);
/// - **registry**: keeps this daemon's row in `queue.daemons` fresh, and removes the
///   `queue.listeners` rows (wake-up protocol) of daemons that are gone.
///
/// Every step is one statement and safe with any number of daemons running it.
public struct Maintenance: Service {
    let store: QueueStore
    let dispatch: RedisDispatch
    let promoterWake: WakeSignal
    let configuration: DaemonConfiguration
    let daemon: DaemonIdentity
    let stats: DaemonStats
    let logger: Logger
    /// The worker slots the daemon runs now (its pools' live sizes, which the
    /// autoscaler and reloads change), recorded in `queue.daemons.workers` at every
    /// pass; nil records the configured start size.
    let liveWorkers: (@Sendable () -> Int)?

    public init(
        store: QueueStore, dispatch: RedisDispatch, promoterWake: WakeSignal,
        configuration: DaemonConfiguration, daemon: DaemonIdentity, stats: DaemonStats, logger: Logger,
        liveWorkers: (@Sendable () -> Int)? = nil
    ) {
        self.liveWorkers = liveWorkers
        self.store = store
        self.dispatch = dispatch
        self.promoterWake = promoterWake
        self.configuration = configuration
        self.daemon = daemon
        self.stats = stats
        self.logger = logger
    }

    public func run() async throws {
        let loop = ResilientLoop(name: "maintenance", logger: logger, stats: stats)
        let epochs = EpochTracker()
        await cancelWhenGracefulShutdown {
            await loop.run {
                try await runOnce(epochs: epochs)
                stats.beat("maintenance")
                try await Task.sleep(for: configuration.maintenanceInterval)
            }
        }
        _ = try? await store.unregisterDaemon(id: daemon.id)
        await store.close()
        await dispatch.connection.close()
    }

    /// One pass of every step; tests call it directly.
    ///
    /// The Postgres steps and the Redis step run independently: Redis being down
    /// must not stop the rescuer, nor Postgres being down the epoch check. The first
    /// error is thrown once every step has had its turn.
    public func runOnce(epochs: EpochTracker = EpochTracker()) async throws {
        var firstError: (any Error)?
        do {
            try await store.registerDaemon(
                id: daemon.id, hostname: daemon.hostname, pid: daemon.pid, version: daemon.version,
                workers: liveWorkers?() ?? configuration.workers.total)
            // Wake-up rows of daemons that stopped without removing theirs (crashed,
            // killed): an idle one would make every insert NOTIFY for nobody.
            let reaped = try await store.reapListeners(staleAfter: Self.listenerStaleAfter(configuration))
            if reaped > 0 { logger.notice("removed wake-up rows of vanished daemons", metadata: [LogKey.count: "\(reaped)"]) }
            let summary = try await store.backlogSummary()
            stats.update {
                $0.postgresHealthy = true
                $0.dueBacklog = summary.due
                $0.deadLetterCount = summary.deadLetters
                $0.pausedCount = summary.paused
            }
            try await rescue()
        } catch {
            stats.update { $0.postgresHealthy = false }
            firstError = error
        }
        do {
            try await reconcileRedis(epochs: epochs)
            stats.update { $0.redisHealthy = true }
        } catch {
            stats.update { $0.redisHealthy = false }
            firstError = firstError ?? error
        }
        if let firstError { throw firstError }
    }

    /// How long a `queue.listeners` row and its daemon's heartbeat must both be silent
    /// before the row is reaped: well past a live daemon's heartbeat (every
    /// maintenance interval) and its idle re-announcements (every poll interval).
    static func listenerStaleAfter(_ configuration: DaemonConfiguration) -> Duration {
        max(.seconds(60), configuration.maintenanceInterval * 10, configuration.pollInterval * 3)
    }

    private func reconcileRedis(epochs: EpochTracker) async throws {
        let candidate = "\(daemon.id)-\(UInt64.random(in: 1...UInt64.max))"
        let epoch = try await dispatch.ensureEpoch(candidate: candidate)
        // Our own candidate won the SET NX: the key was missing, so Redis was emptied,
        // restarted without persistence, or is new (also on this daemon's first pass:
        // Redis may have been flushed while no daemon ran). A different epoch than last
        // time: another daemon saw the loss first. Either way the lists hold none of
        // the ids pushed before; the promoter pushes the waiting jobs again.
        let previous = epochs.current
        let lost = epoch == candidate || (previous != nil && previous != epoch)
        if lost {
            logger.warning("redis lost its data; dispatch rebuilt from postgres", metadata: [
                LogKey.messageID: "\(JobdMessageID.redisLostDispatchRebuilt.rawValue)",
            ])
            promoterWake.signal()
        }
        epochs.remember(epoch)
    }

    private func rescue() async throws {
        let rescued = try await store.rescueExpiredLeases(maxRescues: configuration.maxRescues)
        guard !rescued.isEmpty else { return }
        stats.update { $0.rescued += rescued.count }
        for job in rescued {
            logger.warning(job.state == .dead ? "job dead-lettered by the rescuer" : "job rescued", metadata: [
                LogKey.messageID: "\(job.state == .dead ? JobdMessageID.jobDeadLettered.rawValue : JobdMessageID.jobRescued.rawValue)",
                LogKey.jobID: "\(job.id)", LogKey.jobKind: "\(job.kind)", LogKey.jobAttempt: "\(job.attempt)",
                "rescues": "\(job.rescues)", "previous_owner": "\(job.previousOwner)",
            ])
        }
        promoterWake.signal()
    }
}

/// The Redis epoch this daemon saw last.
public final class EpochTracker: Sendable {
    private let last = Mutex<String?>(nil)
    public init() {}
    var current: String? { last.withLock { $0 } }
    func remember(_ epoch: String) {
        last.withLock { $0 = epoch }
    }
}

/// Who this daemon is in `queue.daemons` and in `leased_by`.
public struct DaemonIdentity: Sendable, Equatable {
    public var id: String
    public var hostname: String
    public var pid: Int32
    public var version: String

    public init(id: String, hostname: String, pid: Int32, version: String) {
        self.id = id
        self.hostname = hostname
        self.pid = pid
        self.version = version
    }
}
