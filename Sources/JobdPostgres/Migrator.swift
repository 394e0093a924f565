import JobdCore
import Logging

/// One numbered SQL file from `Migrations/NNNN_<tier>[_<what>].sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    /// `queue`, `content`, … — the first word of the file name is the tier it belongs to.
    public var name: String
    public var sql: SQL

    public init(version: Int, name: String, sql: SQL) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public var tier: String { String(name.split(separator: "_").first ?? Substring(name)) }

    /// FNV-1a of the SQL: detects an applied migration whose file was edited later.
    public var checksum: String { String(FNV1a.hash(sql.text.utf8), radix: 16) }
}

/// Applies migrations in order, once each, recording them in `jobd.migrations`.
///
/// Two `jobd migrate` at once are safe: the whole run holds a session advisory lock,
/// so the second waits, then finds everything applied and does nothing.
public struct Migrator: Sendable {
    public let connection: PostgresConnection
    public let migrations: [Migration]
    public let logger: Logger

    public init(connection: PostgresConnection, migrations: [Migration] = Migration.embedded, logger: Logger) {
        self.connection = connection
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Applies what is missing for `tiers` and returns the versions applied now.
    @discardableResult
    public func migrate(tiers: Set<String>) async throws -> [Int] {
        // Lock first: even CREATE ... IF NOT EXISTS races with a concurrent creator.
        try await connection.executeScript(MigrationStatements.raiseStatementTimeout)
        try await connection.execute(MigrationStatements.Lock(), timeout: 300)
        do {
            try await connection.executeScript(MigrationStatements.createLedger)
            let applied = try await appliedVersions()
            var done: [Int] = []
            for migration in migrations where tiers.contains(migration.tier) {
                if let checksum = applied[migration.version] {
                    if checksum != migration.checksum {
                        logger.warning("applied migration differs from its file", metadata: [
                            "migration": "\(migration.version)_\(migration.name)",
                        ])
                    }
                    continue
                }
                try await apply(migration)
                done.append(migration.version)
            }
            try await connection.execute(MigrationStatements.Unlock())
            return done
        } catch {
            _ = try? await connection.execute(MigrationStatements.Unlock())
            throw error
        }
    }

    /// Migrations of `tiers` not yet applied (the daemon refuses to start while any are).
    public func pending(tiers: Set<String>) async throws -> [Migration] {
        guard try await connection.firstRow(MigrationStatements.LedgerExists()) == true else {
            return migrations.filter { tiers.contains($0.tier) }
        }
        let applied = try await appliedVersions()
        return migrations.filter { tiers.contains($0.tier) && applied[$0.version] == nil }
    }

    private func appliedVersions() async throws -> [Int: String] {
        var applied: [Int: String] = [:]
        for row in try await connection.rows(MigrationStatements.Applied()) {
            applied[row.version] = row.checksum
        }
        return applied
    }

    /// Each migration runs in its own transaction with its ledger row. Its SQL is a
    /// file compiled into the binary (`Migration.embedded`), run as a script.
    private func apply(_ migration: Migration) async throws {
        logger.info("applying migration", metadata: ["migration": "\(migration.version)_\(migration.name)"])
        try await connection.executeScript(MigrationStatements.begin)
        do {
            try await connection.executeScript(migration.sql, timeout: 600)
            try await connection.execute(MigrationStatements.Record(migration: migration))
            try await connection.executeScript(MigrationStatements.commit)
        } catch {
            _ = try? await connection.executeScript(MigrationStatements.rollback)
            throw MigrationError(migration: "\(migration.version)_\(migration.name)", underlying: "\(error)")
        }
    }
}

public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public var migration: String
    public var underlying: String
    public var description: String { "migration \(migration) failed: \(underlying)" }
}
