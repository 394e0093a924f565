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
            throw JobSnooze(seconds: 1, code: "retention_continues", message: "more rows past the retention window; continuing in a second")
        }
        context.logger.info("retention applied", metadata: metadata)
        return report
    }

    /// A payload field that is a retention window: a duration of at least a day, or
    /// `"off"` (nil).
    public static func window(_ value: JSONValue, field: String, kind: String) throws -> Double? {
        if case .string(let text) = value {
            if text.lowercased() == "off" { return nil }
            if let seconds = DurationText.seconds(text), seconds >= RetentionSettings.minimumWindow,
               seconds <= RetentionSettings.maximumWindow {
                return seconds
            }
        }
        throw JobFailure.permanent(
            "\(kind) payload: \(field) must be a duration between 1d and 36500d (e.g. \"30d\") or \"off\"",
            code: "payload_invalid")
    }

    public static func batch(_ value: JSONValue, kind: String) throws -> Int {
        try JSONPayload.integer(value, field: "batch", kind: kind, range: RetentionSettings.batchRange)
    }

    public static func unknownField(_ key: String, kind: String, known: String) -> JobFailure {
        .permanent("\(kind) payload: unknown field \"\(key)\" (known: \(known))", code: "payload_invalid")
    }

    /// The integer a `SELECT f(…)` returned.
    public static func count(_ result: PostgresResultRows) -> Int { result.first.flatMap { $0.first ?? nil }.flatMap { Int($0) } ?? 0 }
}

public typealias PostgresResultRows = [[String?]]

/// What a tier's retention job is built from: the tier's database, the configured
/// windows, and how long one run may take before it snoozes.
public struct RetentionJob: Sendable {
    public let database: TierDatabase
    public let settings: RetentionSettings
    public let timeBudget: Duration

    public init(database: TierDatabase, settings: RetentionSettings, timeBudget: Duration) {
        self.database = database
        self.settings = settings
        self.timeBudget = timeBudget
    }
}

/// A retention job over a tier's own database (`notifications.trim`,
/// `analytics.trim`): the daemon's housekeeping, built from a `RetentionJob`. A
/// conformer declares its `kind`, stores the `RetentionJob`, and runs its steps
/// with `RetentionRun`; construction, `isInternal` and the parts are shared here.
public protocol TierRetentionHandler: JobHandler {
    var retention: RetentionJob { get }
    init(retention: RetentionJob)
}

extension TierRetentionHandler {
    /// The daemon's own housekeeping: producers may not enqueue it (`queue.internal_kinds`).
    public var isInternal: Bool { true }

    public init(database: TierDatabase, settings: RetentionSettings, timeBudget: Duration = .seconds(20)) {
        self.init(retention: RetentionJob(database: database, settings: settings, timeBudget: timeBudget))
    }

    public var database: TierDatabase { retention.database }
    public var settings: RetentionSettings { retention.settings }
    public var timeBudget: Duration { retention.timeBudget }
}
