import ArgumentParser
import Foundation
import JobdAssembly
import JobdCore
import JobdPostgres
import JobdWeb
import Logging
import ServiceLifecycle

/// Builds the console's settings from the configuration; a bad credential list stops
/// the start with a message naming its key.
enum WebConsoleSetup {
    static func settings(_ config: DaemonConfiguration, host: String, port: Int) throws -> WebSettings {
        do {
            let users = try WebCredential.parseList(config.webUsers ?? "", what: "JOBD_WEB_USERS")
            let tokens = try WebCredential.parseList(config.webTokens ?? "", what: "JOBD_WEB_TOKENS")
            var settings = WebSettings(
                host: host, port: port, users: users, tokens: tokens, secret: config.webSecret.map { Array($0.utf8) })
            settings.queryTimeout = min(config.commandTimeout.seconds, 10)
            settings.schedules = config.schedules
            for tier in DataTier.allCases {
                if let url = config.databaseURL(for: tier), url != config.databaseURL { settings.tierURLs[tier] = url }
            }
            try settings.validate()
            return settings
        } catch {
            throw CLIError("invalid configuration: \(error.message)")
        }
    }

    static func server(_ config: DaemonConfiguration, host: String, port: Int, logger: Logger) throws -> ConsoleServer {
        let settings = try settings(config, host: host, port: port)
        do {
            let redis = ConsoleRedisTarget(
                url: config.redisURL, prefix: config.redisPrefix, commandTimeout: .milliseconds(Int(settings.queryTimeout * 1_000)))
            return try ConsoleServer(settings: settings, conninfo: config.databaseURL, redis: redis, logger: logger)
        } catch {
            throw CLIError("invalid configuration: \(error.message)")
        }
    }
}

struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web", abstract: "The operator's web console (and its JSON API).",
        subcommands: [Serve.self, Hash.self], defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve", abstract: "Serve the console (the default: `jobd web --listen 127.0.0.1:8080`).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "HOST:PORT; beyond loopback, JOBD_WEB_USERS or JOBD_WEB_TOKENS must be set.")
        var listen: String?

        func run() async throws {
            let config = try await ConfigurationLoader.load(global)
            let connections = Connections(configuration: config)
            let host: String
            let port: Int
            if let listen {
                do {
                    (host, port) = try WebSettings.parseListen(listen)
                } catch {
                    throw CLIError("--listen: \(error.message)")
                }
            } else if let address = config.webListen {
                (host, port) = (address.host, address.port)
            } else {
                (host, port) = ("127.0.0.1", 8080)
            }
            // Fail now, with the usual one-line reason, if the database cannot be reached.
            await (try await connections.checkedPostgres("web-check")).close()
            let server = try WebConsoleSetup.server(config, host: host, port: port, logger: connections.logger)
            let group = ServiceGroup(configuration: .init(
                services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: connections.logger))
            try await group.run()
        }
    }

    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a PBKDF2 hash of a password read from standard input, for JOBD_WEB_USERS; --token makes a random bearer token instead.")
        @Flag(help: "Generate a random token; print it and the sha256 hash that goes in JOBD_WEB_TOKENS.")
        var token = false

        func run() throws {
            if token {
                var generator = SystemRandomNumberGenerator()
                let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let text = bytes.map { String(format: "%02x", $0) }.joined()
                print("token: \(text)")
                print("hash:  \(CredentialHash.sha256Hash(of: text).text)")
                return
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw CLIError("give the password on standard input")
            }
            print(CredentialHash.make(password: line).text)
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel jobs: waiting ones at once; a running one when its attempt ends (unless that attempt completes it).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Job ids.") var ids: [Int64]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give one or more job ids") }
    }

    func run() async throws {
        let results = try await global.withPostgres("cancel") { connection, connections in
            let results = try await QueueAdmin(connection: connection).cancel(ids: ids)
            connections.logger.notice("jobs cancelled", metadata: [
                "user": "\(ProcessInfo.processInfo.environment["USER"] ?? "cli")", "action": "cancel",
                "job_ids": "\(ids.map(String.init).joined(separator: ","))",
            ])
            return results
        }
        var failed: [String] = []
        for result in results {
            switch result.outcome {
            case .cancelled: print("\(result.id): cancelled")
            case .requested: print("\(result.id): running; cancelled when its attempt ends (unless it completes)")
            case .finished:
                print("\(result.id): already \(result.state ?? "finished")")
                failed.append(String(result.id))
            case .unchanged:
                print("\(result.id): \(result.state == nil ? "no such job" : "changed state meanwhile, try again")")
                failed.append(String(result.id))
            }
        }
        if !failed.isEmpty { throw CLIError("not cancelled: \(failed.joined(separator: ", "))") }
    }
}

/// `--priority P` or `--kind K`, exactly one.
struct PauseTarget: ParsableArguments {
    @Option(help: "A priority lane: high, normal or low.") var priority: String?
    @Option(help: "A job kind.") var kind: String?

    func validate() throws {
        if (priority == nil) == (kind == nil) { throw ValidationError("give --priority or --kind (one of them)") }
        if let priority, JobPriority(rawValue: priority) == nil { throw ValidationError("--priority is high, normal or low") }
        if let kind, kind.isEmpty || kind.count > 128 { throw ValidationError("--kind is 1 to 128 characters") }
    }

    var scope: QueueAdmin.PauseScope { priority != nil ? .priority : .kind }
    var name: String { priority ?? kind ?? "" }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop promoting a priority lane or a kind (running jobs finish).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: PauseTarget

    func run() async throws {
        let who = "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown")
        let added = try await global.withPostgres("pause") { connection, connections in
            let added = try await QueueAdmin(connection: connection).pause(target.scope, target.name, by: who)
            connections.logger.notice("paused", metadata: [
                "user": "\(who)", "action": "pause", "scope": "\(target.scope.rawValue)", "name": "\(target.name)",
            ])
            return added
        }
        print("\(target.scope.rawValue) \(target.name): \(added ? "paused" : "already paused")")
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Promote a paused priority lane or kind again.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: PauseTarget

    func run() async throws {
        let who = "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown")
        let removed = try await global.withPostgres("resume") { connection, connections in
            let removed = try await QueueAdmin(connection: connection).resume(target.scope, target.name)
            connections.logger.notice("resumed", metadata: [
                "user": "\(who)", "action": "resume", "scope": "\(target.scope.rawValue)", "name": "\(target.name)",
            ])
            return removed
        }
        print("\(target.scope.rawValue) \(target.name): \(removed ? "resumed" : "was not paused")")
        if !removed { throw ExitCode(1) }
    }
}
