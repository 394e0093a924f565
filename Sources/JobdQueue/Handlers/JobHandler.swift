import JobdCore
import Logging
import ServiceLifecycle

/// What a handler gets besides the job: a logger that already carries the job's
/// metadata, and the deadline the daemon would like it to respect.
public struct JobContext: Sendable {
    public var logger: Logger
    public init(logger: Logger) { self.logger = logger }
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
