import JobdCore
import Logging
import ServiceLifecycle

/// What a handler gets besides the job: a logger that carries the job's metadata.
///
/// The job's metadata is added when a handler first reads `logger`, not when the
/// attempt starts: most attempts log nothing, and copying the logger's metadata
/// for every job was a visible share of the daemon's CPU in a drain.
public struct JobContext: Sendable {
    private var base: Logger
    private var job: ClaimedJob?

    /// The logger, with the job's id, kind, attempt and priority when the context
    /// was made for a job.
    public var logger: Logger {
        get { job.map { base.forAttempt(of: $0) } ?? base }
        set {
            base = newValue
            job = nil
        }
    }

    public init(logger: Logger) { base = logger }

    /// A context whose logger carries `job`'s metadata once it is read.
    public init(logger: Logger, job: ClaimedJob) {
        base = logger
        self.job = job
    }
}

extension Logger {
    /// This logger with `job`'s id, kind, attempt and priority as metadata.
    public func forAttempt(of job: ClaimedJob) -> Logger {
        var logger = self
        logger[metadataKey: LogKey.jobID] = "\(job.id)"
        logger[metadataKey: LogKey.jobKind] = "\(job.kind)"
        logger[metadataKey: LogKey.jobAttempt] = "\(job.attempt)"
        logger[metadataKey: LogKey.jobPriority] = "\(job.priority.rawValue)"
        return logger
    }
}

/// Runs one kind of job. Add a kind by writing one type that conforms and
/// registering it in `HandlerRegistry`.
///
/// Jobs run at least once: a handler must be idempotent, so that running the same
/// job twice leaves the same result. Throw `JobFailure.permanent` for input that can
/// never succeed (dead-lettered at once), `JobFailure.transient` or any other error
/// to retry with backoff, `JobSnooze` to run later without spending an attempt.
/// Cancellation means the daemon is draining and ran out of time: stop promptly.
public protocol JobHandler: Sendable {
    /// The `queue.jobs.kind` this handler serves.
    var kind: String { get }
    /// True for the daemon's own work (retention, rollups): producers may not enqueue
    /// it. The daemon adds such kinds to `queue.internal_kinds` at start-up, where an
    /// INSERT trigger refuses them to every role but the daemon and the owner.
    var isInternal: Bool { get }
    func handle(_ job: ClaimedJob, context: JobContext) async throws
    /// Background loops the handler relies on (a group-commit writer …). The daemon
    /// runs them in its service group, started before the worker pools and stopped
    /// after they drain. Read once, at assembly. Default: none.
    var services: [any Service] { get }
}

extension JobHandler {
    public var services: [any Service] { [] }
}

extension JobHandler {
    public var isInternal: Bool { false }
}

/// Kind → handler. Built once at start-up, read-only afterwards.
public struct HandlerRegistry: Sendable {
    private var handlers: [String: any JobHandler] = [:]

    public init(_ handlers: [any JobHandler] = []) {
        for handler in handlers { register(handler) }
    }

    public mutating func register(_ handler: any JobHandler) {
        precondition(handlers[handler.kind] == nil, "two handlers registered for kind \(handler.kind)")
        handlers[handler.kind] = handler
    }

    public func handler(for kind: String) -> (any JobHandler)? { handlers[kind] }

    public var kinds: [String] { handlers.keys.sorted() }

    /// The handlers' background loops, by kind.
    public var services: [any Service] { kinds.flatMap { handlers[$0]?.services ?? [] } }

    /// The kinds whose handler declares them internal.
    public var internalKinds: [String] { handlers.values.filter(\.isInternal).map(\.kind).sorted() }
}
