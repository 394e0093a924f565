import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdSystemd
import JobdThreads
import Logging
import Synchronization

/// Builds connections from the configuration and sets up logging once.
public struct Connections: Sendable {
    /// Every tier's settings; each tier's components take their own part.
    public let settings: JobdSettings
    /// The daemon-wide part of `settings`.
    public var configuration: DaemonConfiguration { settings.daemon }
    /// The daemon's logger (services, handlers).
    public let logger: Logger
    /// What the connections themselves log (reconnects, timeouts).
    public let connectionLogger: Logger
    /// Sends a PostgreSQL connection, by name, to another conninfo (nil: the configured
    /// database). A test seam: fault tests point one service's connection at a dead port.
    private let conninfoOverride: (@Sendable (_ name: String) -> String?)?

    /// The process's connections: bootstraps logging from the configuration (once per process).
    public init(settings: JobdSettings) {
        self.settings = settings
        Self.bootstrapLogging(settings.daemon)
        self.logger = Logger(label: "jobd")
        self.connectionLogger = logger
        self.conninfoOverride = nil
    }

    /// Connections that log to the given loggers and leave the process's logging alone
    /// (daemons run in process, as the integration tests run them).
    public init(
        settings: JobdSettings, logger: Logger, connectionLogger: Logger? = nil,
        conninfo: (@Sendable (_ name: String) -> String?)? = nil
    ) {
        self.settings = settings
        self.logger = logger
        self.connectionLogger = connectionLogger ?? logger
        self.conninfoOverride = conninfo
    }

    public func postgres(_ name: String) -> PostgresConnection {
        postgres(name, tier: .queue)
    }

    /// A connection to the database `tier` lives in (the queue's unless configured apart).
    public func postgres(_ name: String, tier: DataTier, scans: PostgresScans = .any) -> PostgresConnection {
        PostgresConnection(
            conninfo: conninfoOverride?(name) ?? configuration.databaseURL(for: tier), name: name,
            commandTimeout: configuration.commandTimeout, scans: scans, logger: connectionLogger)
    }

    /// - Parameter thread: run on this executor's thread (shared with its owner, e.g. a
    ///   claim pipeline's Postgres connection) instead of a thread of its own.
    public func redis(_ name: String, thread: DedicatedThreadExecutor? = nil) -> RedisConnection {
        RedisConnection(
            url: configuration.redisURL, name: name, commandTimeout: configuration.commandTimeout,
            logger: connectionLogger, thread: thread)
    }

    /// The queue's lists through a new connection (`redis(_:thread:)`).
    public func dispatch(_ name: String, thread: DedicatedThreadExecutor? = nil) -> RedisDispatch {
        RedisDispatch(
            connection: redis(name, thread: thread), keys: RedisKeys(prefix: configuration.redisPrefix),
            logger: connectionLogger)
    }

    /// Connects once, failing with a one-line reason that never shows a password.
    public func checkedPostgres(_ name: String, tier: DataTier = .queue) async throws -> PostgresConnection {
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
    public static let logLevel = LogLevelControl(.info)

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
public enum LoggingBootstrap {
    private static let done = Mutex(false)
    public static func once(_ body: () -> Void) {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { body() }
    }
}
