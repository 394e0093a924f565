import JobdCore
import JobdPostgres
import JobdThreads
import Logging
import Synchronization

/// The connections a tier's handlers share: a fixed set of `PostgresConnection`s
/// (each on its own thread) lent out one caller at a time.
///
/// A tier may be its own database and so its own failure domain. When it cannot be
/// reached, `withConnection` throws a transient `JobFailure` coded
/// `tier_unavailable`: the job retries with backoff while jobs of other tiers keep
/// flowing. The first failure and the recovery are each logged once, with the
/// `tierUnavailable` / `tierRecovered` MESSAGE_IDs operators alert on.
public final class TierDatabase: Sendable {
    public let tier: DataTier
    private let connections: [PostgresConnection]
    private let logger: Logger

    /// Indices into `connections`, lent one caller at a time.
    private let pool: CheckoutPool<Int>
    /// Whether the last use failed for want of the server (logged once per outage).
    private let unavailable = Mutex(false)

    /// - Parameter makeConnection: builds connection number `index` (not yet connected;
    ///   libpq connects on first use and again after any failure).
    public init(tier: DataTier, size: Int, logger: Logger, makeConnection: (Int) -> PostgresConnection) {
        precondition(size > 0, "a tier needs at least one connection")
        self.tier = tier
        var logger = logger
        logger[metadataKey: LogKey.tier] = "\(tier.rawValue)"
        self.logger = logger
        connections = (0..<size).map(makeConnection)
        pool = CheckoutPool(Array(0..<size))
    }

    public var size: Int { connections.count }

    /// Runs `body` with a connection of this tier to itself. Waits for a free one;
    /// throws `CancellationError` if the task is cancelled while it waits.
    public func withConnection<T: Sendable>(
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let index = try await pool.checkOut()
        defer { pool.checkIn(index) }
        do {
            let result = try await body(connections[index])
            markAvailable()
            return result
        } catch let error as PostgresError where error.kind != .server {
            markUnavailable(error)
            throw JobFailure.transient("\(tier.rawValue) database unavailable: \(error.message)", code: "tier_unavailable")
        }
    }

    /// Closes every connection; for shutdown and tests.
    public func close() async {
        for connection in connections { await connection.close() }
    }

    private func markUnavailable(_ error: PostgresError) {
        let first = unavailable.withLock { unavailable in
            defer { unavailable = true }
            return !unavailable
        }
        if first {
            logger.error("tier unavailable", metadata: [
                LogKey.messageID: "\(JobdMessageID.tierUnavailable.id)", LogKey.error: "\(error.message)",
            ])
        }
    }

    private func markAvailable() {
        let recovered = unavailable.withLock { unavailable in
            defer { unavailable = false }
            return unavailable
        }
        if recovered {
            logger.notice("tier recovered", metadata: [LogKey.messageID: "\(JobdMessageID.tierRecovered.id)"])
        }
    }
}

/// The tier databases of one process, by tier. The queue tier is not here: the
/// daemon's own services hold its connections.
public struct TierDatabases: Sendable {
    private let databases: [DataTier: TierDatabase]

    public init(_ databases: [TierDatabase]) {
        self.databases = Dictionary(uniqueKeysWithValues: databases.map { ($0.tier, $0) })
    }

    /// Builds one pool per non-queue tier from the configuration.
    public init(
        configuration: DaemonConfiguration, logger: Logger,
        makeConnection: (_ tier: DataTier, _ name: String) -> PostgresConnection
    ) {
        self.init(DataTier.allCases.filter { $0 != .queue }.map { tier in
            TierDatabase(tier: tier, size: configuration.tierConnections, logger: logger) { index in
                makeConnection(tier, "\(tier.rawValue)-\(index)")
            }
        })
    }

    /// Whether a database is configured for `tier` (the subscript traps otherwise).
    public func contains(_ tier: DataTier) -> Bool { databases[tier] != nil }

    public subscript(tier: DataTier) -> TierDatabase {
        guard let database = databases[tier] else { preconditionFailure("no database configured for tier \(tier)") }
        return database
    }

    public func close() async {
        for database in databases.values { await database.close() }
    }
}
