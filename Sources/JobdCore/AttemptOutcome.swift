/// Why an attempt failed, as thrown by a handler.
///
/// `transient` failures are retried with backoff until `max_attempts` is spent;
/// `permanent` ones go to the dead-letter table at once. Any other `Error` a handler
/// throws counts as transient. `code` is a short, stable reason code
/// (`payload_invalid`, `unknown_kind`, …) that operators filter on.
public struct JobFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable, Equatable {
        case transient
        case permanent
    }

    public var severity: Severity
    public var code: String
    public var message: String

    public init(_ severity: Severity, code: String, message: String) {
        self.severity = severity
        self.code = code
        self.message = message
    }

    public static func transient(_ message: String, code: String = "handler_error") -> JobFailure {
        JobFailure(.transient, code: code, message: message)
    }

    public static func permanent(_ message: String, code: String = "permanent") -> JobFailure {
        JobFailure(.permanent, code: code, message: message)
    }

    public var description: String { "\(code): \(message)" }
}

/// Thrown by a handler to run the job again later without spending an attempt
/// (for example an HTTP 429 with `Retry-After`). `code` and `message` say why, like
/// a `JobFailure`'s, for the log line; a snooze is not an error, so the job's
/// `last_error` and error history are left as they were.
///
/// The delay is clamped to 0…`maxDelay`: it often comes from a peer or a payload
/// (brought into `Duration` by `TotalConversion.duration(seconds:)`, which makes NaN
/// 0), and `run_at` must stay within its CHECK (`jobs_run_at_range_check`) and
/// `make_interval`'s range, or the whole completion batch would be refused.
///
/// `keepingPlace` is the other kind: due again at once, in the place it held in its
/// lane (the promoter and the direct claim take a lane's due jobs by `run_at`, then
/// id), not behind every job that became due while it ran.
public struct JobSnooze: Error, Sendable, Equatable, CustomStringConvertible {
    /// A year: longer than any sensible snooze, far inside `run_at`'s range.
    public static let maxDelay: Duration = .seconds(366 * 86_400)
    /// How much earlier than its last due time a job snoozed `keepingPlace` is due:
    /// ahead of the jobs of its lane that became due at that same time. The margin
    /// `queue.complete_batch` subtracts in SQL (migrations `0043_queue_snooze_keeps_place`,
    /// `0052_queue_completion_arrays`);
    /// the two must stay equal.
    public static let placeMargin: Duration = .seconds(1)
    /// How long from the completion until the job is due again, in 0…`maxDelay`.
    /// Not used when `keepsPlace`.
    public var delay: Duration
    /// Due again as of `placeMargin` before it was last due (see `keepingPlace`).
    public private(set) var keepsPlace: Bool = false
    public var code: String
    public var message: String

    public init(for delay: Duration, code: String, message: String) {
        self.delay = Self.bounded(delay)
        self.code = code.isEmpty ? "snoozed" : code
        self.message = message.isEmpty ? "run again in \(self.delay.seconds) s" : message
    }

    /// Due again at once, ahead of the jobs of its lane that became due after it was
    /// last due: the completion writes `run_at` = the row's `run_at` − `placeMargin`, in
    /// SQL. While the attempt runs the row still holds the `run_at` its claim saw (the
    /// claim does not change it): the time it was last due. For a job that goes on
    /// with work it made due itself (a bulk retry's re-driven jobs), so that it is not
    /// queued behind that work.
    public static func keepingPlace(code: String, message: String) -> JobSnooze {
        var snooze = JobSnooze(for: .zero, code: code, message: message)
        snooze.keepsPlace = true
        return snooze
    }

    public var description: String { "\(code): \(message)" }

    /// `delay` clamped to 0…`maxDelay`.
    public static func bounded(_ delay: Duration) -> Duration { min(max(delay, .zero), maxDelay) }
}

/// What one attempt came to, before the failure policy is applied.
public enum AttemptResult: Sendable, Equatable {
    case succeeded
    case failed(JobFailure)
    case snoozed(JobSnooze)
    /// Interrupted by a graceful drain that ran out of time; the job goes back to
    /// `available` and the interrupted attempt still counts.
    case interrupted
}

/// How the completion batch will move a running job out of `running`.
public enum CompletionOutcome: String, Sendable, Equatable, Codable {
    case completed
    /// To `retryable`, due after `delay`.
    case retry
    /// To `retryable` after `delay` without spending the attempt.
    case snooze
    /// To `dead`, copied into `queue.dead_letters`.
    case dead
    /// Back to `available` at once (drain).
    case release
}

/// One row of the completion batch: what to write for one fenced attempt.
public struct AttemptCompletion: Sendable, Equatable {
    public var fence: AttemptFence
    public var outcome: CompletionOutcome
    /// From the completion until the job is due again (retry and snooze), in
    /// 0…`JobSnooze.maxDelay`; zero and not used when `keepsPlace`. Written to the batch
    /// as seconds by `CompletionColumns`, the one place it becomes a number.
    public var delay: Duration
    /// A snooze `keepingPlace`: due again `JobSnooze.placeMargin` before the row's
    /// `run_at` (the time it was last due), not after a delay from the completion.
    public var keepsPlace: Bool
    public var errorCode: String?
    public var errorMessage: String?
    /// Run time of the handler, seconds (recorded with the attempt).
    public var runSeconds: Double
    /// The attempt's queue wait as its claim reported it (due → claimed, seconds;
    /// `ClaimedJob.queueWaitSeconds`), recorded with the attempt.
    public var queueWaitSeconds: Double

    public init(
        fence: AttemptFence, outcome: CompletionOutcome, delay: Duration = .zero,
        errorCode: String? = nil, errorMessage: String? = nil, runSeconds: Double = 0, queueWaitSeconds: Double = 0,
        keepsPlace: Bool = false
    ) {
        self.fence = fence
        self.outcome = outcome
        self.delay = delay
        self.keepsPlace = keepsPlace
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.runSeconds = runSeconds
        self.queueWaitSeconds = queueWaitSeconds
    }
}

/// Turns an attempt's result into the completion to write: retry with backoff while
/// attempts remain, dead-letter when spent or permanent.
public struct FailurePolicy: Sendable, Equatable {
    public var backoff: RetryBackoff
    /// Error texts are stored and logged; bound them so a handler cannot bloat rows.
    public var maxErrorLength: Int

    public init(backoff: RetryBackoff, maxErrorLength: Int = 2_000) {
        self.backoff = backoff
        self.maxErrorLength = maxErrorLength
    }

    public func completion(
        for job: ClaimedJob, result: AttemptResult, runSeconds: Double,
        using generator: inout some RandomNumberGenerator
    ) -> AttemptCompletion {
        var completion = AttemptCompletion(
            fence: job.fence, outcome: .completed, runSeconds: runSeconds, queueWaitSeconds: job.queueWaitSeconds)
        switch result {
        case .succeeded:
            break
        case .snoozed(let snooze) where snooze.keepsPlace:
            // The completion reads the row's `run_at`; no delay.
            completion.outcome = .snooze
            completion.keepsPlace = true
        case .snoozed(let snooze):
            completion.outcome = .snooze
            // `delay` is a var: bounded again here, where it is written.
            completion.delay = JobSnooze.bounded(snooze.delay)
        case .interrupted:
            completion.outcome = .release
            completion.errorCode = "interrupted"
            completion.errorMessage = "attempt interrupted by shutdown"
        case .failed(let failure):
            completion.errorCode = failure.code
            completion.errorMessage = bounded(failure.message)
            if failure.severity == .permanent {
                completion.outcome = .dead
            } else if job.attempt >= job.maxAttempts {
                completion.outcome = .dead
                completion.errorCode = failure.code
            } else {
                completion.outcome = .retry
                completion.delay = backoff.delay(forAttempt: job.attempt, using: &generator)
            }
        }
        return completion
    }

    public func bounded(_ text: String) -> String {
        guard text.utf8.count > maxErrorLength else { return text }
        var cut = String(decoding: text.utf8.prefix(maxErrorLength), as: UTF8.self)
        // A cut through a multi-byte character decodes to U+FFFD; drop it.
        while cut.last == "\u{FFFD}" { cut.removeLast() }
        return cut + "…"
    }
}
