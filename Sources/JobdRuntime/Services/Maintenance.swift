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
///   changed) and voids every promotion so the promoter pushes them again; also
///   returns single promotions that sat unclaimed past `promotedTimeout`;
/// - **registry**: keeps this daemon's row in `queue.daemons` fresh.
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

    public init(
        store: QueueStore, dispatch: RedisDispatch, promoterWake: WakeSignal,
        configuration: DaemonConfiguration, daemon: DaemonIdentity, stats: DaemonStats, logger: Logger
    ) {
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
                try await Task.sleep(for: .milliseconds(Int(configuration.maintenanceInterval * 1000)))
            }
        }
        _ = try? await store.unregisterDaemon(id: daemon.id)
        await store.connection.close()
        await dispatch.connection.close()
    }

    /// One pass of every step; tests call it directly.
    public func runOnce(epochs: EpochTracker = EpochTracker()) async throws {
        try await store.registerDaemon(
            id: daemon.id, hostname: daemon.hostname, pid: daemon.pid, version: daemon.version,
            workers: configuration.workers.total)
        let summary = try await store.backlogSummary()
        stats.update {
            $0.postgresHealthy = true
            $0.dueBacklog = summary.due
            $0.deadLetterCount = summary.deadLetters
        }
        try await reconcileRedis(epochs: epochs)
        stats.update { $0.redisHealthy = true }
        try await rescue()
        let reclaimed = try await store.reclaimStalePromotions(olderThan: configuration.promotedTimeout)
        if reclaimed > 0 {
            logger.notice("returned unclaimed promotions to available", metadata: [LogKey.count: "\(reclaimed)"])
            promoterWake.signal()
        }
    }

    private func reconcileRedis(epochs: EpochTracker) async throws {
        let candidate = "\(daemon.id)-\(UInt64.random(in: 1...UInt64.max))"
        let epoch = try await dispatch.ensureEpoch(candidate: candidate)
        let previous = epochs.swap(epoch)
        // Our own candidate won the SET NX: the key was missing, so Redis was emptied
        // (or is new). A different epoch than last time: another daemon saw it first.
        let lost = (previous != nil && previous != epoch) || (previous != nil && epoch == candidate)
        guard lost else { return }
        let reset = try await store.resetAllPromotions()
        logger.warning("redis lost its data; dispatch rebuilt from postgres", metadata: [
            LogKey.messageID: "\(JobdMessageID.redisLostDispatchRebuilt.rawValue)", LogKey.count: "\(reset)",
        ])
        promoterWake.signal()
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
    func swap(_ epoch: String) -> String? {
        last.withLock { value in
            let previous = value
            value = epoch
            return previous
        }
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
