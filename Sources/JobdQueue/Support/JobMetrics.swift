import JobdCore
import Metrics
import Synchronization

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
    /// Counters mirrored from `DaemonStats` by `MetricsCollector`. `promoted`: ids this
    /// daemon's promoter pushed to Redis (0 while it stands by).
    public static let promoted = "jobd_jobs_promoted_total"
    public static let rescued = "jobd_jobs_rescued_total"
    public static let staleRefused = "jobd_stale_completions_refused_total"
    /// Gauge {state, priority}: unfinished jobs (available, scheduled, retryable, running).
    public static let jobs = "jobd_jobs"
    /// Gauge: rows in `queue.dead_letters`.
    public static let deadLetters = "jobd_dead_letters"
    /// Gauges: worker slots busy and configured.
    public static let workersBusy = "jobd_workers_busy"
    public static let workersTotal = "jobd_workers_total"
    /// Gauge {dependency}: 1 when Postgres / Redis answered the last check.
    public static let dependencyUp = "jobd_dependency_up"
    /// Gauge {pool}: slots the pool would run if its maximum and the ceiling allowed
    /// (the autoscaler's want; above `jobd_workers_total` when the daemon lacks capacity).
    public static let desiredWorkers = "jobd_desired_workers"
    /// Gauge {pool}: slots the pool has now.
    public static let poolWorkers = "jobd_pool_workers"
    /// Counter {pool, direction, reason}: resizes applied by the autoscaler or a reload.
    public static let poolResizes = "jobd_pool_resizes_total"
}

/// Attempts a pool started since the autoscaler last looked, and the longest queue
/// wait among them. Updated on every start (one uncontended lock), read and reset
/// by the autoscaler each sample.
public final class AttemptStartWindow: Sendable {
    private struct Window {
        var started = 0
        var maxWaitSeconds = 0.0
    }
    private let window = Mutex(Window())

    public init() {}

    func record(waitSeconds: Double) {
        window.withLock { window in
            window.started += 1
            // NaN or negative (a clock skew between producer and server) count as no wait.
            if waitSeconds > window.maxWaitSeconds { window.maxWaitSeconds = waitSeconds }
        }
    }

    /// Attempts started and the longest wait since the previous call; resets both.
    public func take() -> (started: Int, maxWaitSeconds: Double) {
        window.withLock { window in
            defer { window = Window() }
            return (window.started, window.maxWaitSeconds)
        }
    }
}

/// Per-attempt instruments. Kinds without a registered handler are reported as
/// `unknown`, so a stream of garbage kinds cannot grow the label set without bound.
public struct JobMetrics: Sendable {
    private let knownKinds: Set<String>
    /// Starts and queue waits of this pool, for the autoscaler.
    public let starts = AttemptStartWindow()

    public init(knownKinds: [String]) {
        self.knownKinds = Set(knownKinds)
    }

    private func kindLabel(_ kind: String) -> String { knownKinds.contains(kind) ? kind : "unknown" }

    func attemptStarted(_ job: ClaimedJob) {
        starts.record(waitSeconds: job.queueWaitSeconds)
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
