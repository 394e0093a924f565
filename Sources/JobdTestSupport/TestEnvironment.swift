import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import Logging

/// Where the servers the test command started are (scripts/test exports these).
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public var variable: String
        public var description: String {
            "\(variable) is not set: run the integration tests through scripts/test, which starts PostgreSQL and Redis on loopback"
        }
    }

    public static func databaseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["JOBD_TEST_DATABASE_URL"], !url.isEmpty else {
            throw Missing(variable: "JOBD_TEST_DATABASE_URL")
        }
        return url
    }

    public static func redisURL() throws -> RedisURL {
        guard let url = ProcessInfo.processInfo.environment["JOBD_TEST_REDIS_URL"], !url.isEmpty else {
            throw Missing(variable: "JOBD_TEST_REDIS_URL")
        }
        return try RedisURL(parsing: url)
    }
}

/// A fresh, migrated database of its own for one test, dropped by `drop()`.
public struct TestDatabase: Sendable {
    public let name: String
    public let url: String
    let adminURL: String

    /// Creates `jobd_test_<random>` on the test server and applies the migrations of
    /// `tiers` (all of them by default: one database holding every tier).
    public static func create(
        tiers: Set<DataTier> = Set(DataTier.allCases), logger: Logger = .silent
    ) async throws -> TestDatabase {
        let adminURL = try TestEnvironment.databaseURL()
        let name = "jobd_test_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        let admin = PostgresConnection(conninfo: adminURL, name: "test-admin", commandTimeout: 30, logger: logger)
        try await admin.executeScript("CREATE DATABASE " + SQL.identifier(name))
        await admin.close()
        let url = replacingDatabase(in: adminURL, with: name)
        let database = TestDatabase(name: name, url: url, adminURL: adminURL)
        let connection = database.connection("test-migrate")
        try await Migrator(connection: connection, logger: logger).migrate(tiers: Set(tiers.map(\.rawValue)))
        await connection.close()
        return database
    }

    public func connection(_ name: String = "test", timeout: Double = 10) -> PostgresConnection {
        PostgresConnection(conninfo: url, name: name, commandTimeout: timeout, logger: .silent)
    }

    public func drop() async {
        let admin = PostgresConnection(conninfo: adminURL, name: "test-admin", commandTimeout: 30, logger: .silent)
        _ = try? await admin.executeScript("DROP DATABASE IF EXISTS " + SQL.identifier(name) + " WITH (FORCE)")
        await admin.close()
    }

    /// postgresql://user@host:port/db?x → …/name?x
    static func replacingDatabase(in url: String, with name: String) -> String {
        guard let scheme = url.range(of: "://") else { return "\(url) dbname=\(name)" }
        let afterScheme = url[scheme.upperBound...]
        let query = afterScheme.firstIndex(of: "?").map { String(afterScheme[$0...]) } ?? ""
        let path = afterScheme.firstIndex(of: "?").map { afterScheme[..<$0] } ?? afterScheme
        let authority = path.firstIndex(of: "/").map { path[..<$0] } ?? path
        return String(url[..<scheme.upperBound]) + authority + "/" + name + query
    }
}

extension Logger {
    /// A logger that drops everything, for plumbing in tests.
    public static var silent: Logger {
        Logger(label: "jobd.test.silent", factory: { _ in SwiftLogNoOpLogHandler() })
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass.
public func waitUntil(
    timeout: Double, _ what: String = "condition", _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }
    throw Timeout(description: "timed out after \(timeout) s waiting for \(what)")
}
