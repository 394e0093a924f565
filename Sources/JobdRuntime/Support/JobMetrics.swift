import JobdCore
import Metrics

/// The daemon's metric names, in one place (Prometheus naming: `_total` counters,
/// `_seconds` histograms). docs/architecture.md lists what each one means.
public enum MetricName {
    /// Counter {kind, priority, outcome}: attempts finished (outcome: completed, retry,
    /// snooze, dead, release).
    public static let attemptsFinished = "jobd_attempts_finished_total"
    /// Histogram {kind}: handler run time.
    public static let runSeconds = "jobd_job_run_seconds"
    /// Histogram {kind, priority}: due (`run_at`) → attempt start.
    public static let queueWaitSeconds = "jobd_job_queue_wait_seconds"
    /// Counters mirrored from `DaemonStats` by `MetricsCollector`.
    public static let promoted = "jobd_jobs_promoted_total"
    public static let rescued = "jobd_jobs_rescued_total"
    public static let staleRefused = "jobd_stale_completions_refused_total"
    /// Gauge {state, priority}: unfinished jobs (available, scheduled, retryable, promoted, running).
    public static let jobs = "jobd_jobs"
    /// Gauge: rows in `queue.dead_letters`.
    public static let deadLetters = "jobd_dead_letters"
    /// Gauges: worker slots busy and configured.
    public static let workersBusy = "jobd_workers_busy"
    public static let workersTotal = "jobd_workers_total"
    /// Gauge {dependency}: 1 when Postgres / Redis answered the last check.
    public static let dependencyUp = "jobd_dependency_up"
}

/// Per-attempt instruments. Kinds without a registered handler are reported as
/// `unknown`, so a stream of garbage kinds cannot grow the label set without bound.
public struct JobMetrics: Sendable {
    private let knownKinds: Set<String>

    public init(knownKinds: [String]) {
        self.knownKinds = Set(knownKinds)
    }

    private func kindLabel(_ kind: String) -> String { knownKinds.contains(kind) ? kind : "unknown" }

    func attemptStarted(_ job: ClaimedJob) {
        Timer(label: MetricName.queueWaitSeconds, dimensions: [
            ("kind", kindLabel(job.kind)), ("priority", job.priority.rawValue),
        ]).recordNanoseconds(TotalConversion.nanoseconds(job.queueWaitSeconds))
    }

    func attemptFinished(_ job: ClaimedJob, outcome: CompletionOutcome, runSeconds: Double) {
        let kind = kindLabel(job.kind)
        Counter(label: MetricName.attemptsFinished, dimensions: [
            ("kind", kind), ("priority", job.priority.rawValue), ("outcome", outcome.rawValue),
        ]).increment()
        Timer(label: MetricName.runSeconds, dimensions: [("kind", kind)])
            .recordNanoseconds(TotalConversion.nanoseconds(runSeconds))
    }
}
