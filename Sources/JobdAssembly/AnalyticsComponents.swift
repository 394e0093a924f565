import JobdAnalytics
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import ServiceLifecycle

/// The analytics tier's kinds and loops, and the periodic jobs they rely on:
/// - `metrics.emit`, `analytics.rollup` (analytics tier), `queue.prune` (queue tier);
/// - the retention jobs `queue.trim`, `notifications.trim`, `analytics.trim`;
/// - the FactsWriter (attempt facts; the worker pools' observer) and the Scheduler
///   (`JOBD_SCHEDULES`: by default the daily rollup, the hourly prune and the
///   retention jobs; `content.purge` too once JOBD_CONTENT_RETENTION is set).
struct AnalyticsComponents {
    var handlers: [any JobHandler]
    var services: [any Service]
    var factsWriter: FactsWriter?

    init(connections: Connections, databases: TierDatabases) {
        let configuration = connections.configuration
        let logger = connections.logger
        let rollup = AnalyticsRollup(databases: databases, logger: logger)
        handlers = [
            MetricsEmitHandler(analytics: databases[.analytics]),
            AnalyticsRollupHandler(rollup: rollup),
            QueuePruneHandler(connection: connections.postgres("prune"), retention: configuration.completedRetention),
            // Retention of every tier (JOBD_*_RETENTION): built-in schedules fire them.
            QueueTrimHandler(connection: connections.postgres("trim"), settings: configuration.retention),
            NotificationsTrimHandler(database: databases[.notifications], settings: configuration.retention),
            AnalyticsTrimHandler(database: databases[.analytics], settings: configuration.retention),
        ]
        services = []
        if configuration.factsBuffer > 0 {
            // Own connections: facts never wait behind a long rollup on the shared pool.
            let writer = FactsWriter(
                analytics: connections.postgres("facts", tier: .analytics), spool: connections.postgres("facts-spool"),
                capacity: configuration.factsBuffer, drainTimeout: max(1, configuration.shutdownTimeout), logger: logger)
            factsWriter = writer
            services.append(writer)
        }
        if !configuration.schedules.isEmpty {
            services.append(Scheduler(
                schedules: configuration.schedules, connection: connections.postgres("scheduler"), logger: logger))
        }
    }
}
