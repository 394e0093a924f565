import JobdCore
import Logging

/// The bounded-batch loop every retention job shares. Each step is one statement
/// that touches at most `batch` rows and returns how many it touched; a step is
/// repeated until a batch comes back short (nothing left now), then the next step
/// runs. When the run's time budget is spent with work left, the job snoozes (no
/// attempt is spent) and the next run carries on — so a backlog of months never
/// holds a worker, a lease or a long transaction. Every step is idempotent.
public struct RetentionRun: Sendable {
    /// One kind of row a job removes or archives: a name for the log, and the
    /// statement, given the batch size.
    public struct Step: Sendable {
        public var name: String
        public var run: @Sendable (_ batch: Int) async throws -> Int

        public init(_ name: String, run: @escaping @Sendable (_ batch: Int) async throws -> Int) {
            self.name = name
            self.run = run
        }
    }

    /// What a run did: per step, the rows each statement touched, in order.
    public struct Report: Sendable, Equatable {
        public var statements: [String: [Int]] = [:]
        /// False when the budget ran out with rows left.
        public var finished = true

        public func total(_ step: String) -> Int { statements[step, default: []].reduce(0, +) }
    }

    public var batch: Int
    public var timeBudget: Duration

    public init(batch: Int, timeBudget: Duration) {
        self.batch = batch
        self.timeBudget = timeBudget
    }

    public func run(_ steps: [Step]) async throws -> Report {
        let deadline = ContinuousClock.now + timeBudget
        var report = Report()
        for step in steps {
            while true {
                try Task.checkCancellation()
                let touched = try await step.run(batch)
                report.statements[step.name, default: []].append(touched)
                if touched < batch { break }
                if ContinuousClock.now >= deadline {
                    report.finished = false
                    return report
                }
            }
        }
        return report
    }

    /// Runs `steps` for a job: logs the totals, and snoozes when rows are left.
    public func handle(_ steps: [Step], kind: String, context: JobContext) async throws -> Report {
        let report = try await run(steps)
        var metadata: Logger.Metadata = [LogKey.jobKind: "\(kind)"]
        for step in steps { metadata[step.name] = "\(report.total(step.name))" }
        if !report.finished {
            context.logger.info("retention applied; more left, continuing shortly", metadata: metadata)
            throw JobSnooze(for: .seconds(1), code: "retention_continues", message: "more rows past the retention window; continuing in a second")
        }
        context.logger.info("retention applied", metadata: metadata)
        return report
    }

    public static func batch(_ value: JSONValue, kind: String) throws -> Int {
        try JSONPayload.integer(value, field: "batch", kind: kind, range: batchRange)
    }

    /// `JOBD_RETENTION_BATCH`'s default and bounds, which a payload's `batch` keeps too.
    public static let defaultBatch = 5_000
    public static let batchRange = 1...100_000

    public static func unknownField(_ key: String, kind: String, known: String) -> JobFailure {
        .permanent("\(kind) payload: unknown field \"\(key)\" (known: \(known))", code: "payload_invalid")
    }
}

/// What a tier's retention job is built from besides its windows: the tier's
/// database, the batch (`JOBD_RETENTION_BATCH`), and how long one run may take
/// before it snoozes.
public struct RetentionJob: Sendable {
    public let database: TierDatabase
    public let batch: Int
    public let timeBudget: Duration

    public init(database: TierDatabase, batch: Int = RetentionRun.defaultBatch, timeBudget: Duration = .seconds(20)) {
        self.database = database
        self.batch = batch
        self.timeBudget = timeBudget
    }
}

/// A retention job over a tier's own database (`notifications.trim`,
/// `analytics.trim`): the daemon's housekeeping, built from a `RetentionJob` and the
/// tier's own windows (`Settings`, declared and read by the tier's module). A
/// conformer declares its `kind`, stores both, and runs its steps with
/// `RetentionRun`; construction, `isInternal` and the parts are shared here.
public protocol TierRetentionHandler: JobHandler {
    associatedtype Settings: Sendable
    var retention: RetentionJob { get }
    var settings: Settings { get }
    init(retention: RetentionJob, settings: Settings)
}

extension TierRetentionHandler {
    /// The daemon's own housekeeping: producers may not enqueue it (`queue.internal_kinds`).
    public var isInternal: Bool { true }

    public init(
        database: TierDatabase, settings: Settings, batch: Int = RetentionRun.defaultBatch,
        timeBudget: Duration = .seconds(20)
    ) {
        self.init(retention: RetentionJob(database: database, batch: batch, timeBudget: timeBudget), settings: settings)
    }

    public var database: TierDatabase { retention.database }
    public var batch: Int { retention.batch }
    public var timeBudget: Duration { retention.timeBudget }
}
