import ArgumentParser
import Foundation
import JobdCore
import JobdPostgres
import JobdRuntime
import JobdSystemd
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon: promoter, worker pools, rescuer, reconciler.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Apply pending migrations before starting.")
    var migrate = false

    @Option(help: "Stop gracefully after this long (e.g. 30s); for demos and benchmarks.")
    var runFor: String?

    func run() async throws {
        let config = try await ConfigurationLoader.load(global)
        let connections = Connections(configuration: config)
        let logger = connections.logger
        let runLimit = try runFor.map { text -> Double in
            guard let seconds = DurationText.seconds(text) else { throw CLIError("--run-for: \"\(text)\" is not a duration") }
            return seconds
        }

        // READY=1 only once Postgres answers, the schema is current and Redis answers.
        let startup = try await connections.checkedPostgres("startup")
        let migrator = Migrator(connection: startup, logger: logger)
        if migrate { try await migrator.migrate(tiers: ["queue"]) }
        let pending = try await migrator.pending(tiers: ["queue"])
        guard pending.isEmpty else {
            let names = pending.map { "\($0.version)_\($0.name)" }.joined(separator: ", ")
            throw CLIError("the database schema is behind (pending: \(names)); run `jobd migrate` first")
        }
        await startup.close()
        do {
            try await connections.dispatch("startup").ping()
        } catch {
            throw CLIError("cannot reach Redis at \(config.redisURL.redacted): \(error)")
        }

        let identity = DaemonIdentity(
            id: "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UInt32.random(in: 0...UInt32.max) % 100_000)",
            hostname: ProcessInfo.processInfo.hostName, pid: getpid(), version: Jobd.version)
        // Test-only, deliberately not a configuration key: lets the fault suite make a
        // `noop` job abort the process (scenario 8, poison pill).
        let testFaults = ProcessInfo.processInfo.environment["JOBD_TEST_FAULTS"] == "1"
        if testFaults {
            logger.warning("JOBD_TEST_FAULTS=1: noop jobs may abort this process; never set this in production")
        }
        let daemon = JobDaemon(
            configuration: config, handlers: HandlerRegistry([NoopHandler(testFaults: testFaults)]), identity: identity, logger: logger,
            postgres: connections.postgres, redis: connections.dispatch)
        let notifier = SystemdNotifier.fromEnvironment()
        let supervisor = SystemdSupervisor(daemon: daemon, notifier: notifier, configuration: config, logger: logger)
        // The announcer is last so it is the first to hear of a graceful shutdown;
        // StopAfter (--run-for) ends the run the same way SIGTERM would.
        var services = daemon.services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
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
            tasks.addTask {
                try await group.run()
            }
            try await tasks.next()
            tasks.cancelAll()
        }
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
