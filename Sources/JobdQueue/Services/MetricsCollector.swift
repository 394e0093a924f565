import JobdCore
import JobdPostgres
import Logging
import Metrics
import ServiceLifecycle

/// Refreshes the gauges that need a query (backlog by state and priority, dead
/// letters) and mirrors `DaemonStats` into counters and gauges, every `interval`.
///
/// Scrapes only read what this loop last wrote, so a scrape costs the database
/// nothing and a slow database never slows a scrape. Runs only when the metrics
/// endpoint is configured.
public struct MetricsCollector: Service {
    let store: QueueStore
    let stats: DaemonStats
    let workerUsage: @Sendable () -> (busy: Int, total: Int)
    let interval: Duration
    let logger: Logger

    public init(
        store: QueueStore, stats: DaemonStats, interval: Duration = .seconds(5), logger: Logger,
        workerUsage: @escaping @Sendable () -> (busy: Int, total: Int)
    ) {
        self.store = store
        self.stats = stats
        self.interval = interval
        self.logger = logger
        self.workerUsage = workerUsage
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var mirrored = DaemonStats.Snapshot()
            var reported: Set<[String]> = []
            while !Task.isCancelled {
                mirrored = mirror(stats.snapshot, since: mirrored)
                reported = await refreshBacklog(previous: reported)
                try? await Task.sleep(for: interval)
            }
        }
        await store.close()
    }

    /// Counters only go up: add what happened since the last pass.
    private func mirror(_ now: DaemonStats.Snapshot, since last: DaemonStats.Snapshot) -> DaemonStats.Snapshot {
        Counter(label: MetricName.promoted).increment(by: max(0, now.promoted - last.promoted))
        Counter(label: MetricName.rescued).increment(by: max(0, now.rescued - last.rescued))
        Counter(label: MetricName.staleRefused).increment(by: max(0, now.staleRefused - last.staleRefused))
        let usage = workerUsage()
        Gauge(label: MetricName.workersBusy).record(usage.busy)
        Gauge(label: MetricName.workersTotal).record(usage.total)
        Gauge(label: MetricName.deadLetters).record(now.deadLetterCount)
        Gauge(label: MetricName.dependencyUp, dimensions: [("dependency", "redis")]).record(now.redisHealthy ? 1 : 0)
        return now
    }

    /// Sets a gauge per (state, priority) seen now, and zeroes those seen before but
    /// absent now, so a drained state reads 0 rather than its last count.
    private func refreshBacklog(previous: Set<[String]>) async -> Set<[String]> {
        do {
            let rows = try await store.backlogByState()
            Gauge(label: MetricName.dependencyUp, dimensions: [("dependency", "postgres")]).record(1)
            var seen: Set<[String]> = []
            for row in rows {
                seen.insert([row.state, row.priority])
                Gauge(label: MetricName.jobs, dimensions: [("state", row.state), ("priority", row.priority)]).record(row.count)
            }
            for gone in previous.subtracting(seen) {
                Gauge(label: MetricName.jobs, dimensions: [("state", gone[0]), ("priority", gone[1])]).record(0)
            }
            return seen
        } catch {
            Gauge(label: MetricName.dependencyUp, dimensions: [("dependency", "postgres")]).record(0)
            logger.debug("metrics backlog query failed", metadata: [LogKey.error: "\(error)"])
            return previous
        }
    }
}
