import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdSystemd
import Logging
import Synchronization

/// Builds connections from the configuration and sets up logging once.
struct Connections {
    let configuration: DaemonConfiguration
    let logger: Logger

    init(configuration: DaemonConfiguration) {
        self.configuration = configuration
        Self.bootstrapLogging(configuration)
        self.logger = Logger(label: "jobd")
    }

    func postgres(_ name: String) -> PostgresConnection {
        postgres(name, tier: .queue)
    }

    /// A connection to the database `tier` lives in (the queue's unless configured apart).
    func postgres(_ name: String, tier: DataTier) -> PostgresConnection {
        PostgresConnection(
            conninfo: configuration.databaseURL(for: tier), name: name, commandTimeout: configuration.commandTimeout,
            logger: logger)
    }

    func redis(_ name: String) -> RedisConnection {
        RedisConnection(
            url: configuration.redisURL, name: name, commandTimeout: .milliseconds(Int(configuration.commandTimeout * 1000)),
            logger: logger)
    }

    func dispatch(_ name: String) -> RedisDispatch {
        RedisDispatch(connection: redis(name), keys: RedisKeys(prefix: configuration.redisPrefix), logger: logger)
    }

    /// Connects once, failing with a one-line reason that never shows a password.
    func checkedPostgres(_ name: String, tier: DataTier = .queue) async throws -> PostgresConnection {
        let connection = postgres(name, tier: tier)
        do {
            try await connection.connect()
        } catch {
            let target = configuration.databaseURL(for: tier).map(Redaction.connectionString)
                ?? "libpq defaults (PG* variables)"
            // libpq adds hints on further lines; the CLI promises one line.
            let reason = "\(error)".split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            throw CLIError("cannot connect to PostgreSQL at \(target): \(reason)")
        }
        return connection
    }

    /// The level of every logger in this process; a reload changes it here.
    static let logLevel = LogLevelControl(.info)

    private static func bootstrapLogging(_ configuration: DaemonConfiguration) {
        let format = LogFormat(rawValue: configuration.logFormat) ?? .auto
        logLevel.level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { label in
                ProcessLevelLogHandler(wrapping: format.makeHandler(label: label), control: logLevel)
            }
        }
    }
}

/// LoggingSystem.bootstrap may run once per process.
enum LoggingBootstrap {
    private static let done = Mutex(false)
    static func once(_ body: () -> Void) {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { body() }
    }
}
