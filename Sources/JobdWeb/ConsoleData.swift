import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdThreads
import Logging
import Synchronization

/// The console's PostgreSQL connections: a fixed set of `PostgresConnection`s, each
/// on its own thread (libpq never blocks the cooperative pool, nor the HTTP event
/// loops), each statement with the console's deadline, lent one request at a time.
public final class ConsoleDatabase: Sendable {
    private let pool: CheckoutPool<PostgresConnection>
    private let connections: [PostgresConnection]
    /// The tiers kept in another database than the queue's: two connections each.
    private let tierPools: [DataTier: CheckoutPool<PostgresConnection>]
    private let tierConnections: [PostgresConnection]

    public init(conninfo: String?, size: Int, queryTimeout: Double, tierURLs: [DataTier: String] = [:], logger: Logger) {
        connections = (0..<max(1, size)).map { index in
            PostgresConnection(conninfo: conninfo, name: "web-\(index)", commandTimeout: queryTimeout, logger: logger)
        }
        pool = CheckoutPool(connections)
        var pools: [DataTier: CheckoutPool<PostgresConnection>] = [:]
        var all: [PostgresConnection] = []
        for (tier, url) in tierURLs where url != conninfo {
            let list = (0..<2).map { index in
                PostgresConnection(conninfo: url, name: "web-\(tier.rawValue)-\(index)", commandTimeout: queryTimeout, logger: logger)
            }
            pools[tier] = CheckoutPool(list)
            all += list
        }
        tierPools = pools
        tierConnections = all
    }

    public func withAdmin<T: Sendable>(_ body: (QueueAdmin) async throws -> T) async throws -> T {
        try await pool.withResource { connection in try await body(QueueAdmin(connection: connection)) }
    }

    /// A connection to `tier`'s database (the queue's when the tier shares it).
    public func withTier<T: Sendable>(_ tier: DataTier, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await (tierPools[tier] ?? pool).withResource { connection in try await body(connection) }
    }

    public func close() async {
        for connection in connections + tierConnections { await connection.close() }
    }
}

/// What the overview shows; computed once per interval for every viewer.
public struct OverviewSnapshot: Sendable, Codable, Equatable {
    public struct Daemon: Sendable, Codable, Equatable {
        public var id: String
        public var hostname: String
        public var workers: Int
        public var version: String
        public var heartbeatAgeSeconds: Double
        /// Worker slots now, slots running a job, and slots wanted, as the daemon last
        /// published them to Redis (about once a second); nil when none is published
        /// or Redis is not reachable.
        public var slots: Int? = nil
        public var busy: Int? = nil
        public var desired: Int? = nil
    }

    /// A server's health as the snapshot found it.
    public struct Health: Sendable, Codable, Equatable {
        public var reachable: Bool
        /// One round trip (PostgreSQL: a one-row SELECT; Redis: PING), milliseconds.
        public var latencyMilliseconds: Double?
        public var version: String?
        public var error: String?

        /// One line for people: `reachable · 0.4 ms · 15.6`, or `unreachable: reason`.
        public var summary: String {
            guard reachable else { return "unreachable: \(error ?? "?")" }
            return (["reachable", latencyMilliseconds.map { String(format: "%.1f ms", $0) }, version.map { "version \($0)" }]
                as [String?]).compactMap { $0 }.joined(separator: " · ")
        }

        enum CodingKeys: String, CodingKey { case reachable, latencyMilliseconds, version, error, summary }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(reachable, forKey: .reachable)
            try container.encode(latencyMilliseconds, forKey: .latencyMilliseconds)
            try container.encode(version, forKey: .version)
            try container.encode(error, forKey: .error)
            try container.encode(summary, forKey: .summary)
        }

        public init(reachable: Bool, latencyMilliseconds: Double? = nil, version: String? = nil, error: String? = nil) {
            self.reachable = reachable
            self.latencyMilliseconds = latencyMilliseconds
            self.version = version
            self.error = error
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            reachable = try container.decode(Bool.self, forKey: .reachable)
            latencyMilliseconds = try container.decodeIfPresent(Double.self, forKey: .latencyMilliseconds)
            version = try container.decodeIfPresent(String.self, forKey: .version)
            error = try container.decodeIfPresent(String.self, forKey: .error)
        }

        static func failure(_ error: any Error) -> Health {
            Health(reachable: false, error: String(String(describing: error).prefix(300)))
        }
    }

    public struct Minute: Sendable, Codable, Equatable {
        /// Start of the minute, seconds since 1970.
        public var minute: Int64
        public var completed: Int
        public var failed: Int
    }

    /// ISO 8601, the database's clock.
    public var generatedAt: String
    /// Unfinished states (available, retryable, running) × priority: exact, except for
    /// the priorities in `waitingCapped`.
    public var unfinished: [String: [String: Int]]
    /// Priorities with more waiting jobs than the overview counts (`waitingCap`): their
    /// available and retryable figures count only the first due of them (lower bounds),
    /// so a snapshot's cost does not grow with the backlog.
    public var waitingCapped: [String]? = nil
    public var waitingCap: Int? = nil
    /// How long this snapshot took to compute, milliseconds (its statements and Redis
    /// commands; no viewer waits for it once a snapshot exists).
    public var computeMilliseconds: Double? = nil
    /// completed and cancelled jobs together: the planner's estimate (the table may
    /// hold millions; counting them every few seconds is what pins a database).
    public var finishedEstimate: Int
    public var deadLetters: Int
    /// Age of the oldest due waiting job (in Redis or not); nil when none waits.
    public var oldestDueSeconds: Double?
    public var daemons: [Daemon]
    public var pauses: [QueueAdmin.Pause]
    /// The last hour, one entry per minute with any attempt ending.
    public var lastHour: [Minute]
    public var postgres = Health(reachable: true)
    /// nil when the console runs without Redis settings.
    public var redis: Health? = nil
    /// Entries in each priority's Redis dispatch list (pushed, not yet popped).
    public var redisLists: [String: Int]? = nil

    /// `paused: …` as `jobd status` prints it.
    public var pausedLine: String {
        "paused: " + (pauses.isEmpty ? "nothing"
            : pauses.map { "\($0.scope.rawValue) \($0.name) (by \($0.pausedBy))" }.joined(separator: ", "))
    }
}

/// Where the console finds the daemons' Redis: its health, dispatch lists and each
/// daemon's published capacity are on the overview.
public struct ConsoleRedisTarget: Sendable {
    public var url: RedisURL
    public var prefix: String
    public var commandTimeout: Duration

    public init(url: RedisURL, prefix: String, commandTimeout: Duration) {
        self.url = url
        self.prefix = prefix
        self.commandTimeout = commandTimeout
    }
}

/// The overview's numbers, shared: whoever asks first after the snapshot is older than
/// `interval` starts one computation (one set of statements), and everyone gets the
/// stored snapshot meanwhile, so no request waits for the computation except the very
/// first (there is nothing to show before it; concurrent first callers await that same
/// computation). A snapshot is at most one interval plus one computation old
/// (`generated_at` says when). No work at all while nobody looks.
public final class OverviewCache: Sendable {
    private struct State {
        var snapshot: OverviewSnapshot?
        var takenAt: ContinuousClock.Instant?
        var inflight: Task<OverviewSnapshot, any Error>?
    }

    private let interval: Duration
    private let compute: @Sendable () async throws -> OverviewSnapshot
    private let state = Mutex(State())
    /// How many computations started (tests check the sharing).
    public let computations = Atomic<Int>(0)

    public init(interval: Duration, compute: @escaping @Sendable () async throws -> OverviewSnapshot) {
        self.interval = interval
        self.compute = compute
    }

    public func current() async throws -> OverviewSnapshot {
        let (stored, task): (OverviewSnapshot?, Task<OverviewSnapshot, any Error>?) = state.withLock { state in
            if let snapshot = state.snapshot, let takenAt = state.takenAt, ContinuousClock.now - takenAt < interval {
                return (snapshot, nil)
            }
            if state.inflight == nil {
                // The task stores its own result: when a stored snapshot is served
                // meanwhile, nobody awaits it.
                computations.add(1, ordering: .relaxed)
                state.inflight = Task<OverviewSnapshot, any Error> { [self] in
                    do {
                        let snapshot = try await self.compute()
                        self.state.withLock { state in
                            state.snapshot = snapshot
                            state.takenAt = .now
                            state.inflight = nil
                        }
                        return snapshot
                    } catch {
                        self.state.withLock { $0.inflight = nil }
                        throw error
                    }
                }
            }
            return (state.snapshot, state.inflight)
        }
        if let stored { return stored }
        guard let task else { throw CancellationError() }
        return try await task.value
    }
}

/// Computes overview snapshots. The last hour's per-minute figures come from the
/// ledger; a minute that has ended is read once and kept, so each snapshot reads only
/// the ledger rows of the current minute (and of any minute since the last snapshot).
///
/// PostgreSQL or Redis being unreachable is part of the snapshot (its `Health`), not an
/// error: the overview still shows what the other server says.
final class OverviewSource: Sendable {
    private let database: ConsoleDatabase
    /// One Redis connection (its own thread, the target's command timeout), used only
    /// by the snapshot computation, which runs one at a time.
    let dispatch: RedisDispatch?
    private let minutes = Mutex<(rows: [Int64: OverviewSnapshot.Minute], readUpTo: Int64?)>(([:], nil))

    init(database: ConsoleDatabase, redis: ConsoleRedisTarget?, logger: Logger) {
        self.database = database
        dispatch = redis.map { target in
            RedisDispatch(
                connection: RedisConnection(url: target.url, name: "web-redis", commandTimeout: target.commandTimeout, logger: logger),
                keys: RedisKeys(prefix: target.prefix), logger: logger)
        }
    }

    func snapshot() async throws -> OverviewSnapshot {
        let started = ContinuousClock.now
        var snapshot = try await figures()
        snapshot.computeMilliseconds = Self.milliseconds(ContinuousClock.now - started)
        return snapshot
    }

    private func figures() async throws -> OverviewSnapshot {
        var snapshot: OverviewSnapshot
        do {
            snapshot = try await queueFigures()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let format = ISO8601DateFormatter()
            snapshot = OverviewSnapshot(
                generatedAt: format.string(from: Date()), unfinished: [:], finishedEstimate: 0, deadLetters: 0,
                oldestDueSeconds: nil, daemons: [], pauses: [], lastHour: [])
            snapshot.postgres = .failure(error)
        }
        if let dispatch {
            do {
                let started = ContinuousClock.now
                try await dispatch.ping()
                let latency = Self.milliseconds(ContinuousClock.now - started)
                let info = try await dispatch.connection.command(["INFO", "server"]).string ?? ""
                let version = info.split(whereSeparator: \.isNewline)
                    .first { $0.hasPrefix("redis_version:") }
                    .map { String($0.dropFirst("redis_version:".count)) }
                let lengths = try await dispatch.lengths()
                snapshot.redisLists = Dictionary(uniqueKeysWithValues: lengths.map { ($0.key.rawValue, $0.value) })
                let capacities = try await dispatch.capacities(daemons: snapshot.daemons.map(\.id))
                for index in snapshot.daemons.indices {
                    guard let capacity = capacities[snapshot.daemons[index].id] else { continue }
                    snapshot.daemons[index].slots = capacity.workers
                    snapshot.daemons[index].busy = capacity.busy
                    snapshot.daemons[index].desired = capacity.desired
                }
                snapshot.redis = OverviewSnapshot.Health(reachable: true, latencyMilliseconds: latency, version: version)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                snapshot.redis = .failure(error)
            }
        }
        return snapshot
    }

    func close() async {
        await dispatch?.connection.close()
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
    }

    private func queueFigures() async throws -> OverviewSnapshot {
        try await database.withAdmin { admin in
            let started = ContinuousClock.now
            let version = try await admin.serverVersion()
            let health = OverviewSnapshot.Health(
                reachable: true, latencyMilliseconds: Self.milliseconds(ContinuousClock.now - started), version: version)
            // Unfinished states through the loops' partial indexes; finished ones by
            // the statistics of jobs_finished_idx (completed and cancelled rows).
            var unfinished: [String: [String: Int]] = [:]
            let cap = QueueAdmin.overviewWaitingCap
            var waiting: [String: Int] = [:]
            for count in try await admin.unfinishedCounts(waitingCap: cap) {
                unfinished[count.state, default: [:]][count.priority] = count.count
                if count.state != "running" { waiting[count.priority, default: 0] += count.count }
            }
            let summary = try await admin.overviewSummary()
            let daemons = try await admin.liveDaemons().map { daemon in
                OverviewSnapshot.Daemon(
                    id: daemon.id, hostname: daemon.hostname, workers: daemon.workers,
                    version: daemon.version, heartbeatAgeSeconds: daemon.heartbeatAgeSeconds)
            }
            let pauses = try await admin.pauses()
            let lastHour = try await readMinutes(admin, currentMinute: summary.currentMinute)
            var snapshot = OverviewSnapshot(
                generatedAt: summary.generatedAt, unfinished: unfinished,
                finishedEstimate: summary.finishedEstimate, deadLetters: summary.deadLetters,
                oldestDueSeconds: summary.oldestDueSeconds,
                daemons: daemons, pauses: pauses, lastHour: lastHour)
            snapshot.postgres = health
            snapshot.waitingCap = cap
            snapshot.waitingCapped = waiting.filter { $0.value > cap }.keys.sorted()
            return snapshot
        }
    }

    private func readMinutes(_ admin: QueueAdmin, currentMinute: Int64) async throws -> [OverviewSnapshot.Minute] {
        let firstWanted = currentMinute - 59
        let from = max(firstWanted, minutes.withLock { $0.readUpTo } ?? firstWanted)
        // Ended attempts by minute: retry, dead and lease_expired count as failures.
        let ended = try await admin.endedAttemptsPerMinute(from: from)
        return minutes.withLock { state in
            for minute in stride(from: from, through: currentMinute, by: 1) { state.rows[minute] = nil }
            for outcome in ended {
                state.rows[outcome.minute] = OverviewSnapshot.Minute(
                    minute: outcome.minute * 60, completed: outcome.completed, failed: outcome.failed)
            }
            for minute in state.rows.keys where minute < firstWanted { state.rows[minute] = nil }
            // The current minute is still filling: read it again next time.
            state.readUpTo = currentMinute
            return state.rows.values.sorted { $0.minute < $1.minute }
        }
    }
}
