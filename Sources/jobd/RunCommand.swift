import ArgumentParser
import Foundation
import JobdAssembly
import JobdCore
import JobdMetrics
import JobdPostgres
import JobdQueue
import JobdSystemd
import Logging
import ServiceLifecycle
import UnixSignals

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon: promoter, worker pools, rescuer, reconciler.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Apply pending migrations before starting.")
    var migrate = false

    @Option(help: "Stop gracefully after this long (e.g. 30s); for demos and benchmarks.")
    var runFor: String?

    func run() async throws {
        let (config, configValues) = try await ConfigurationLoader.loadWithValues(global)
        let connections = Connections(settings: config)
        let logger = connections.logger
        ConfigurationLoader.warnUnknownKeys(global, logger: logger)
        let runLimit = try runFor.map { text -> Double in
            guard let seconds = DurationText.seconds(text) else { throw CLIError("--run-for: \"\(text)\" is not a duration") }
            return seconds
        }

        // READY=1 only once Postgres answers, the schema is current and Redis answers.
        if migrate { _ = try await TierMigrations.migrate(connections) }
        let pending = try await TierMigrations.pending(connections)
        guard pending.isEmpty else {
            let names = pending.map { "\($0.version)_\($0.name)" }.joined(separator: ", ")
            throw CLIError("the database schema is behind (pending: \(names)); run `jobd migrate` first")
        }
        do {
            try await connections.dispatch("startup").ping()
        } catch {
            throw CLIError("cannot reach Redis at \(config.redisURL.redacted): \(error)")
        }

        let identity = DaemonIdentity(
            id: "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max) % 100_000)",
            hostname: ProcessInfo.processInfo.hostName, pid: getpid(), version: Jobd.version)
        // Test-only, deliberately not a configuration key: `1` lets the fault suite make a
        // `noop` job abort the process (scenario 8, poison pill); `1` or `probe` registers
        // the `probe` kind, whose receipts the suite counts runs with.
        let testFaultsValue = ProcessInfo.processInfo.environment["JOBD_TEST_FAULTS"]
        let testFaults = testFaultsValue == "1"
        if testFaults {
            logger.warning("JOBD_TEST_FAULTS=1: noop jobs may abort this process; never set this in production")
        }
        let probe = testFaults || testFaultsValue == "probe"
        if probe {
            logger.warning("JOBD_TEST_FAULTS: the probe kind writes receipts to fault_receipts; never set this in production")
        }
        let assembly = DaemonAssembly(
            connections: connections, identity: identity,
            overrides: .init(testFaults: testFaults, faultProbe: probe))
        let daemon = assembly.daemon
        let notifier = SystemdNotifier.fromEnvironment()
        let supervisor = SystemdSupervisor(daemon: daemon, notifier: notifier, configuration: config.daemon, logger: logger)
        // The announcer is last so it is the first to hear of a graceful shutdown;
        // StopAfter (--run-for) ends the run the same way SIGTERM would.
        // The metrics endpoint goes first, so it stops last and a drain can be watched.
        var observability: [any Service] = []
        if let listen = config.metricsListen {
            let registry = PrometheusSetup.bootstrap()
            observability = [
                MetricsServer(address: listen, registry: registry, logger: logger),
                MetricsCollector(store: QueueStore(connection: connections.postgres("metrics")), stats: daemon.stats,
                                 logger: logger, workerUsage: { daemon.workerUsage }),
            ]
        }
        if let listen = config.webListen {
            // The console in the daemon's own group; it stops after the daemon's services.
            observability.insert(
                try WebConsoleSetup.server(config, host: listen.host, port: listen.port, logger: logger), at: 0)
        }
        var services = (observability + assembly.services)
            .map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        services.append(.init(service: supervisor.announcer))
        if let runLimit {
            services.append(.init(service: StopAfter(seconds: runLimit), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))

        logger.notice("daemon ready", metadata: [
            LogKey.messageID: "\(JobdMessageID.daemonReady.rawValue)", LogKey.daemon: "\(identity.id)",
            "workers": "\(config.workers.total)", "redis": "\(config.redisURL.redacted)",
        ])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await supervisor.run() }
            if let faults = daemon.testFaults {
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigusr2) {
                        let wedged = faults.togglePromoterWedge()
                        logger.warning("JOBD_TEST_FAULTS: promoter wedge toggled", metadata: ["wedged": "\(wedged)"])
                    }
                }
            }
            tasks.addTask {
                await ConfigurationReloader(global: global, daemon: daemon, notifier: notifier, logger: logger)
                    .run(initial: configValues)
            }
            tasks.addTask {
                try await group.run()
            }
            try await tasks.next()
            tasks.cancelAll()
        }
        await assembly.close()
        logger.notice("daemon stopped", metadata: [LogKey.daemon: "\(identity.id)"])
    }
}

/// Ends the run after a fixed time, as if SIGTERM had arrived (`--run-for`).
struct StopAfter: Service {
    let seconds: Double
    func run() async throws {
        // Returning ends the group gracefully; an earlier shutdown ends the wait.
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        }
    }
}
