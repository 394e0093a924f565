import JobdAnalytics
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import ServiceLifecycle

/// The analytics tier's kinds and loops, and the periodic jobs they rely on:
/// - `metrics.emit`, `analytics.rollup` (analytics tier), `queue.prune` (queue tier);
/// - the retention jobs `queue.trim`, `notifications.trim`, `analytics.trim`;
/// - the Scheduler (`JOBD_SCHEDULES`: by default the daily rollup, the hourly prune
///   and the retention jobs; `content.purge` too once JOBD_CONTENT_RETENTION is set).
/// Per-attempt figures are not written per attempt: the rollup aggregates the queue
/// tier's attempts ledger.
struct AnalyticsComponents {
    var handlers: [any JobHandler]
    var services: [any Service]

    init(connections: Connections, databases: TierDatabases) {
        let settings = connections.settings
        let logger = connections.logger
        // Its own queue connection: a day's aggregate may run for minutes.
        let queue = TierDatabase(tier: .queue, size: 1, logger: logger) { _ in connections.postgres("rollup") }
        let rollup = AnalyticsRollup(databases: databases, queue: queue, logger: logger)
        handlers = [
            MetricsEmitHandler(analytics: databases[.analytics]),
            AnalyticsRollupHandler(rollup: rollup),
            QueuePruneHandler(connection: connections.postgres("prune"), retention: settings.queue.completedRetention),
            // Retention of every tier (JOBD_*_RETENTION): built-in schedules fire them.
            QueueTrimHandler(
                connection: connections.postgres("trim"), settings: settings.retention.queue,
                completedRetention: settings.queue.completedRetention),
            NotificationsTrimHandler(
                database: databases[.notifications], settings: settings.retention.notifications,
                batch: settings.retention.batch),
            AnalyticsTrimHandler(
                database: databases[.analytics], settings: settings.retention.analytics, batch: settings.retention.batch),
        ]
        services = []
        if !settings.queue.schedules.isEmpty {
            services.append(Scheduler(
                schedules: settings.queue.schedules, connection: connections.postgres("scheduler"), logger: logger))
        }
    }
}
