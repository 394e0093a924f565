import JobdAnalytics
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import Logging
import ServiceLifecycle

/// Migrations across the tiers: each database is migrated once, with the tiers it
/// holds (all of them when every tier shares `JOBD_DATABASE_URL`).
public enum TierMigrations {
    public struct Report: Sendable {
        public var tiers: [DataTier]
        public var applied: [Int]
    }

    /// Applies what is missing in every configured database.
    public static func migrate(_ connections: Connections) async throws -> [Report] {
        try await eachDatabase(connections, "migrate") { migrator, tiers in
            Report(tiers: tiers, applied: try await migrator.migrate(tiers: Set(tiers.map(\.rawValue))))
        }
    }

    /// Migrations not yet applied, over every configured database.
    public static func pending(_ connections: Connections) async throws -> [Migration] {
        try await eachDatabase(connections, "startup") { migrator, tiers in
            try await migrator.pending(tiers: Set(tiers.map(\.rawValue)))
        }.flatMap { $0 }.sorted { $0.version < $1.version }
    }

    /// Runs `body` once per database with the tiers it holds, always closing the connection.
    private static func eachDatabase<T: Sendable>(
        _ connections: Connections, _ name: String, _ body: (Migrator, [DataTier]) async throws -> T
    ) async throws -> [T] {
        var results: [T] = []
        for group in connections.configuration.tiersByDatabase {
            let tiers = group.tiers.sorted()
            let connection = try await connections.checkedPostgres("\(name)-\(tiers[0].rawValue)", tier: tiers[0])
            do {
                results.append(try await body(Migrator(connection: connection, logger: connections.logger), tiers))
                await connection.close()
            } catch {
                await connection.close()
                throw error
            }
        }
        return results
    }
}

/// The job kinds this build serves and the background loops their tiers need
/// (indexers, schedulers, …). The one place a new kind is wired in.
public struct TierComponents: Sendable {
    public var handlers: [any JobHandler]
    /// Started before the daemon's own services, so they stop after the pools drain.
    public var services: [any Service]
    public var databases: TierDatabases

    /// - Parameter testFaults: lets `noop` abort the process (the fault suite only).
    public init(connections: Connections, testFaults: Bool = false) {
        let configuration = connections.configuration
        let settings = connections.settings
        let logger = connections.logger
        databases = TierDatabases(configuration: configuration, logger: logger) { tier, name in
            connections.postgres(name, tier: tier)
        }
        handlers = [NoopHandler(testFaults: testFaults)]
        // The console's bulk actions (retry, cancel, discard by filter), in batches.
        handlers.append(BulkActionHandler(connection: connections.postgres("bulk")))
        handlers.append(NotificationSendHandler(
            database: databases[.notifications], settings: settings.notifications,
            userAgent: "jobd/\(JobdBuild.version)", logger: logger))
        services = []
        // Content tier: content.write, content.purge, and the batched search indexer.
        let content = databases[.content]
        // The indexer makes way while this process's content.write lane is busy.
        let lane = ContentLaneActivity()
        handlers += [ContentWriteHandler(database: content, compressionLevel: settings.content.compressionLevel, lane: lane),
                     ContentPurgeHandler(database: content, settings: settings.content)]
        services += [ContentIndexer(database: content, settings: settings.content, lane: lane, logger: logger)]
        // OLTP tier: campaign preparation, delivery and the outbox relay.
        let campaigns = CampaignComponents(connections: connections, databases: databases, settings: settings.campaigns)
        handlers += campaigns.handlers
        services += campaigns.services
        // Analytics tier and periodic jobs: see AnalyticsComponents.
        let analytics = AnalyticsComponents(connections: connections, databases: databases)
        handlers += analytics.handlers
        services += analytics.services
    }
}
