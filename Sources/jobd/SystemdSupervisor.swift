import JobdCore
import JobdQueue
import JobdSystemd
import Logging
import ServiceLifecycle
import Synchronization

/// Talks to systemd: STATUS= every few seconds, WATCHDOG=1 only while every loop
/// makes progress, STOPPING=1 and EXTEND_TIMEOUT_USEC= during a drain. Outside
/// systemd (no NOTIFY_SOCKET) every message is a no-op, and the loop only logs.
///
/// It runs beside the ServiceGroup rather than in it, so that it keeps pinging the
/// watchdog while the group drains; `announcer` is the one piece inside the group,
/// last in order so that it hears of a graceful shutdown first.
struct SystemdSupervisor: Sendable {
    let daemon: JobDaemon
    let notifier: SystemdNotifier
    let configuration: DaemonConfiguration
    let logger: Logger
    private let draining = DrainFlag()

    init(daemon: JobDaemon, notifier: SystemdNotifier, configuration: DaemonConfiguration, logger: Logger) {
        self.daemon = daemon
        self.notifier = notifier
        self.configuration = configuration
        self.logger = logger
    }

    var announcer: DrainAnnouncer { DrainAnnouncer(supervisor: self) }

    func markDraining() {
        guard draining.set() else { return }
        _ = notifier.stopping()
        logger.notice("drain started", metadata: [
            LogKey.messageID: "\(JobdMessageID.drainStarted.rawValue)",
            "timeout_s": "\(configuration.shutdownTimeout.seconds)",
        ])
    }

    /// The loops whose heartbeats gate the watchdog.
    private var watchedLoops: [String] {
        ["promoter", "maintenance", "listener"] + daemon.pools.map { "workers:\($0.name)" }
    }

    func run() async {
        _ = notifier.ready()
        let pingInterval = notifier.watchdogInterval
        let tick: Duration = min(pingInterval ?? .seconds(1), .seconds(1))
        // A loop is wedged when silent for longer than this. Loops beat at least every
        // poll interval or maintenance interval, so allow a few of those.
        let limit = max(configuration.pollInterval, configuration.maintenanceInterval) * 4 + .seconds(2)
        var lastStatus = ContinuousClock.now - .seconds(60)
        var lastStaleReport = ContinuousClock.now - .seconds(60)
        var gate = WatchdogGate(stalenessLimit: limit)
        for loop in watchedLoops { gate.register(loop, now: .now) }
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let snapshot = daemon.stats.snapshot
            let isDraining = draining.isSet
            if pingInterval != nil {
                for loop in watchedLoops {
                    if let beat = snapshot.heartbeats[loop] { gate.heartbeat(loop, now: beat) }
                }
                if isDraining || gate.shouldPing(now: now) {
                    _ = notifier.watchdogPing()
                } else if now - lastStaleReport > .seconds(5) {
                    lastStaleReport = now
                    logger.error("loop stalled; withholding watchdog pings", metadata: [
                        LogKey.messageID: "\(JobdMessageID.watchdogStalled.rawValue)",
                        "stale_loops": "\(gate.staleLoops(now: now).joined(separator: ","))",
                    ])
                }
            }
            if isDraining {
                _ = notifier.extendTimeout(.seconds(configuration.shutdownTimeout.components.seconds) + .seconds(15))
            }
            if now - lastStatus >= .seconds(5) {
                lastStatus = now
                _ = notifier.status(statusLine(snapshot, draining: isDraining))
            }
            try? await Task.sleep(for: tick)
        }
    }

    func statusLine(_ s: DaemonStats.Snapshot, draining: Bool) -> String {
        let usage = daemon.workerUsage
        let state = draining ? "draining" : "running"
        // The capacity this daemon lacks, when it lacks any (pools at their maximum, or
        // fixed, and still pressured): what an operator's autoscaler adds daemons for.
        let desired = daemon.desiredWorkers
        let want = desired > usage.total ? " (want \(desired))" : ""
        return "\(state): workers \(usage.busy)/\(usage.total) busy\(want), \(daemon.stats.finishedInLastMinute()) jobs/min, "
            + "backlog \(s.dueBacklog) due, \(s.deadLetterCount) dead letters, "
            // Paused lanes or kinds hold jobs back: say so where an operator looks first.
            + (s.pausedCount > 0 ? "\(s.pausedCount) paused, " : "")
            + "postgres \(s.postgresHealthy ? "ok" : "down"), redis \(s.redisHealthy ? "ok" : "down")"
    }
}

/// Inside the ServiceGroup, last: the first service told of a graceful shutdown.
struct DrainAnnouncer: Service {
    let supervisor: SystemdSupervisor
    func run() async throws {
        try? await gracefulShutdown()
        supervisor.markDraining()
    }
}

/// Set once when the drain starts.
final class DrainFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// True for the call that set it.
    func set() -> Bool { !value.exchange(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
