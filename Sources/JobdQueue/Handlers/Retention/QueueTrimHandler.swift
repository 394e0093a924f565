import JobdCore
import JobdPostgres

/// `queue.trim`: retention of the attempts ledger and of dead letters.
///
/// - `queue.attempts` rows older than `JOBD_ATTEMPTS_RETENTION` (default 30 days)
///   whose job finished before that window began or no longer exists; a job still
///   queued, running or retrying keeps its whole history. A completed job's `end` row
///   is the completed job as operators see it (its job row is deleted at completion),
///   so the configured window is at least `JOBD_COMPLETED_RETENTION`.
/// - Dead letters older than `JOBD_DEAD_LETTER_RETENTION` (default 90 days), with
///   their dead jobs, oldest first.
///
/// Each statement removes at most `batch` rows (`JOBD_RETENTION_BATCH`, default
/// 5,000) through `queue.trim_attempts` / `queue.trim_dead_letters`, which are all
/// `jobd_daemon` may delete there. Payload overrides: `{"attempts_older_than": "14d",
/// "dead_letters_older_than": "off", "batch": 1000}`.
public struct QueueTrimHandler: JobHandler {
    public let kind = "queue.trim"
    /// The daemon's own housekeeping: producers may not enqueue it (`queue.internal_kinds`).
    public var isInternal: Bool { true }
    let connection: PostgresConnection
    let settings: QueueRetentionSettings
    let timeBudget: Duration

    /// `JOBD_COMPLETED_RETENTION`: a completed job is its ledger row, so the
    /// configured ledger window is never shorter than this (a payload's
    /// `attempts_older_than` is taken as given).
    let completedRetention: Duration

    public init(
        connection: PostgresConnection, settings: QueueRetentionSettings, completedRetention: Duration = .zero,
        timeBudget: Duration = .seconds(20)
    ) {
        self.connection = connection
        self.settings = settings
        self.completedRetention = completedRetention
        self.timeBudget = timeBudget
    }

    /// The ledger's window when the payload names none: `JOBD_ATTEMPTS_RETENTION`, at
    /// least `JOBD_COMPLETED_RETENTION`; nil (off) keeps the ledger.
    public var configuredAttemptsWindow: Duration? { settings.attempts.map { max($0, completedRetention) } }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var attempts = configuredAttemptsWindow
        var deadLetters = settings.deadLetters
        var batch = settings.batch
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "attempts_older_than": attempts = try RetentionWindow.payload(value, field: key, kind: kind)
            case "dead_letters_older_than": deadLetters = try RetentionWindow.payload(value, field: key, kind: kind)
            case "batch": batch = try RetentionRun.batch(value, kind: kind)
            default:
                throw RetentionRun.unknownField(key, kind: kind, known: "attempts_older_than, dead_letters_older_than, batch")
            }
        }
        _ = try await RetentionRun(batch: batch, timeBudget: timeBudget)
            .handle(steps(attempts: attempts, deadLetters: deadLetters), kind: kind, context: context)
    }

    /// The statements, in order; a window that is off has no step.
    public func steps(attempts: Duration?, deadLetters: Duration?) -> [RetentionRun.Step] {
        var steps: [RetentionRun.Step] = []
        let connection = connection
        if let attempts {
            steps.append(.init("attempts") { batch in
                try await connection.firstRow(
                    QueueRetentionStatements.TrimAttempts(olderThan: attempts, batch: batch))?.count ?? 0
            })
        }
        if let deadLetters {
            steps.append(.init("dead_letters") { batch in
                try await connection.firstRow(
                    QueueRetentionStatements.TrimDeadLetters(olderThan: deadLetters, batch: batch))?.count ?? 0
            })
        }
        return steps
    }
}
