import Metrics
import Prometheus

/// Installs the Prometheus backend for swift-metrics, once per process, and returns
/// the registry the endpoint renders.
///
/// Histogram buckets: job run times and queue waits span sub-millisecond no-ops to
/// hour-long retries, so the buckets run from 0.5 ms to 10 min.
public enum PrometheusSetup {
    public static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(600),
    ]

    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
