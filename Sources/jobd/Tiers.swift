import JobdCore
import JobdPostgres
import JobdRuntime
import Logging
import ServiceLifecycle

/// Migrations across the tiers: each database is migrated once, with the tiers it
/// holds (all of them when every tier shares `JOBD_DATABASE_URL`).
enum TierMigrations {
    struct Report {
        var tiers: [DataTier]
        var applied: [Int]
    }

    /// Applies what is missing in every configured database.
    static func migrate(_ connections: Connections) async throws -> [Report] {
        var reports: [Report] = []
        for group in connections.configuration.tiersByDatabase {
            let tiers = group.tiers.sorted()
            let connection = try await connections.checkedPostgres("migrate-\(tiers[0].rawValue)", tier: tiers[0])
            do {
                let applied = try await Migrator(connection: connection, logger: connections.logger)
                    .migrate(tiers: Set(tiers.map(\.rawValue)))
                reports.append(Report(tiers: tiers, applied: applied))
                await connection.close()
            } catch {
                await connection.close()
                throw error
            }
        }
        return reports
    }

    /// Migrations not yet applied, over every configured database.
    static func pending(_ connections: Connections) async throws -> [Migration] {
        var pending: [Migration] = []
        for group in connections.configuration.tiersByDatabase {
            let tiers = group.tiers.sorted()
            let connection = try await connections.checkedPostgres("startup-\(tiers[0].rawValue)", tier: tiers[0])
            do {
                pending += try await Migrator(connection: connection, logger: connections.logger)
                    .pending(tiers: Set(tiers.map(\.rawValue)))
                await connection.close()
            } catch {
                await connection.close()
                throw error
            }
        }
        return pending.sorted { $0.version < $1.version }
    }
}

/// The job kinds this build serves and the background loops their tiers need
/// (indexers, schedulers, …). The one place a new kind is wired in.
struct TierComponents {
    var handlers: [any JobHandler]
    /// Started before the daemon's own services, so they stop after the pools drain.
    var services: [any Service]
    var databases: TierDatabases

    init(connections: Connections) {
        let configuration = connections.configuration
        let logger = connections.logger
        databases = TierDatabases(configuration: configuration, logger: logger) { tier, name in
            connections.postgres(name, tier: tier)
        }
        handlers = [NoopHandler()]
        handlers.append(NotificationSendHandler(
            database: databases[.notifications], settings: configuration.notifications,
            userAgent: "jobd/\(Jobd.version)", logger: logger))
        services = []
    }
}
