import JobdCore
import JobdPostgres
import JobdRuntime
import ServiceLifecycle

/// The analytics tier's kinds and loops, and the periodic jobs they rely on:
/// - `metrics.emit`, `analytics.rollup` (analytics tier), `queue.prune` (queue tier);
/// - the FactsWriter (attempt facts; the worker pools' observer) and the Scheduler
///   (`JOBD_SCHEDULES`: by default the daily rollup and the hourly prune).
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
