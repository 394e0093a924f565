import JobdAssembly
import JobdCore
import JobdPostgres
import JobdQueue
import JobdRedis
import JobdTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// One test's world: its own database, its own Redis key prefix, and daemons run in
/// process exactly as `jobd run` runs them (the same JobDaemon and ServiceGroup).
struct QueueWorld {
    let database: TestDatabase
    let redisURL: RedisURL
    let prefix: String
    let sql: PostgresConnection
    let logs = LogCapture()
    /// Every daemon made in this world, whose tier connections `close()` closes.
    let assemblies = Assemblies()

    static func make() async throws -> QueueWorld {
        let database = try await TestDatabase.create()
        return QueueWorld(
            database: database, redisURL: try TestEnvironment.redisURL(),
            prefix: "test-\(UInt64.random(in: 0...UInt64.max))", sql: database.connection("test-sql"))
    }

    /// Configuration tuned for fast tests: short intervals, tiny backoff.
    func configuration(_ adjust: (inout JobdSettings) -> Void = { _ in }) -> JobdSettings {
        var config = JobdSettings.defaults
        config.databaseURL = database.url
        config.redisURL = redisURL
        config.redisPrefix = prefix
        config.workers = .shared(8)
        config.pollInterval = .milliseconds(200)
        config.maintenanceInterval = .milliseconds(200)
        config.lease = .seconds(5)
        config.backoff = RetryBackoff(base: .milliseconds(50), maximum: .milliseconds(200))
        config.shutdownTimeout = .seconds(5)
        // No built-in schedules (hourly prune and trims at fixed minutes): a test that
        // crossed one would find a job it did not enqueue. Tests of schedules set their own.
        config.queue.schedules = []
        adjust(&config)
        return config
    }

    func dispatch(_ name: String = "test") -> RedisDispatch {
        RedisDispatch(
            connection: RedisConnection(url: redisURL, name: name, commandTimeout: .seconds(5), logger: .silent),
            keys: RedisKeys(prefix: prefix), logger: .silent)
    }

    /// A daemon as `jobd run` assembles it (`DaemonAssembly`: the queue's services and
    /// every tier's handlers and services), against this world's servers. `handlers`
    /// are registered with the tiers' (a kind a tier serves is replaced);
    /// `conninfo` may send a PostgreSQL connection, by name, elsewhere (nil: the
    /// configured database).
    func makeDaemon(
        _ config: JobdSettings, id: String = "test-daemon", handlers: [any JobHandler] = [],
        conninfo: (@Sendable (String) -> String?)? = nil
    ) -> JobDaemon {
        let assembly = DaemonAssembly(
            connections: Connections(
                settings: config, logger: logs.logger(), connectionLogger: .silent, conninfo: conninfo),
            identity: DaemonIdentity(id: id, hostname: "test", pid: 1, version: "test"),
            overrides: .init(handlers: handlers))
        assemblies.list.withLock { $0.append(assembly) }
        return assembly.daemon
    }

    /// Runs daemons for the duration of `body`, then shuts them down gracefully and
    /// waits until they have stopped.
    func running<T>(
        _ daemons: [JobDaemon], _ body: () async throws -> T
    ) async throws -> T {
        let groups = daemons.map { daemon in
            ServiceGroup(configuration: .init(services: daemon.services, logger: .silent))
        }
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            for group in groups { tasks.addTask { try await group.run() } }
            let result: T
            do {
                result = try await body()
            } catch {
                for group in groups { await group.triggerGracefulShutdown() }
                try await tasks.waitForAll()
                throw error
            }
            for group in groups { await group.triggerGracefulShutdown() }
            try await tasks.waitForAll()
            return result
        }
    }

    func close() async {
        for assembly in assemblies.list.withLock({ $0 }) { await assembly.close() }
        await sql.close()
        if let keys = try? await dispatch("cleanup").connection.command(["KEYS", "\(prefix):*"]).array, !keys.isEmpty {
            _ = try? await dispatch("cleanup").connection.command(["DEL"] + keys.compactMap(\.string))
        }
        await database.drop()
    }

    // MARK: SQL helpers

    @discardableResult
    func exec(_ statement: String, _ params: [String?] = []) async throws -> PostgresResult {
        try await sql.query(statement, params)
    }

    /// The plan PostgreSQL prints for `explain` (an `EXPLAIN …` statement), one text.
    func plan(_ explain: String) async throws -> String {
        try await sql.query(explain).rows.compactMap { $0.first ?? nil }.joined(separator: "\n")
    }

    func scalar(_ statement: String, _ params: [String?] = []) async throws -> String? {
        try await sql.query(statement, params).rows.first?.first ?? nil
    }

    func int(_ statement: String, _ params: [String?] = []) async throws -> Int {
        Int(try await scalar(statement, params) ?? "") ?? -1
    }

    /// Jobs in `state`; completed ones through `queue.completed_jobs` (a completion
    /// deletes the job row; the ledger's end row carries the job).
    func count(state: String) async throws -> Int {
        if state == "completed" { return try await int("SELECT count(*) FROM queue.completed_jobs") }
        return try await int("SELECT count(*) FROM queue.jobs WHERE state = $1", [state])
    }

    func waitForState(_ state: String, count expected: Int, timeout: Double = 20) async throws {
        try await waitUntil(timeout: timeout, "\(expected) jobs in state \(state)") {
            try await count(state: state) == expected
        }
    }
}

/// The daemons a world made (shared by the world's copies).
final class Assemblies: Sendable {
    let list = Mutex<[DaemonAssembly]>([])
}

/// Runs `body` with a fresh world and always cleans up.
func withWorld(_ body: (QueueWorld) async throws -> Void) async throws {
    let world = try await QueueWorld.make()
    do {
        try await body(world)
    } catch {
        await world.close()
        throw error
    }
    await world.close()
}
