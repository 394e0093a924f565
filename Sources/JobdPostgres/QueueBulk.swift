import Foundation
import JobdCore

/// Bulk actions by filter: a dry-run count, then an audit row and a job of the
/// internal kind `queue.bulk_action` that works through the matches in keyset
/// batches, recording its progress (the functions of the bulk-actions migration).
extension QueueAdmin {
    public enum BulkTarget: String, Sendable, Codable, Equatable {
        /// The jobs page's filter.
        case jobs
        /// The dead-letter page's filter (its kind).
        case deadLetters = "dead_letters"
    }

    public enum BulkVerb: String, Sendable, Codable, Equatable, CaseIterable {
        case retry, cancel, discard
    }

    public struct BulkCount: Sendable, Equatable, Codable {
        /// Rows matching now.
        public var count: Int
        /// Only jobs with an id below this one: pass it to `startBulkAction` so the
        /// action works on the set counted, not on jobs enqueued since.
        public var upper: JobID
    }

    public struct BulkStart: Sendable, Equatable, Codable {
        public var id: Int64
        /// Rows matching when confirmed (counted again then).
        public var expected: Int
        public var jobID: JobID
    }

    public struct BulkStep: Sendable, Equatable, Codable {
        public var processed: Int
        public var affected: Int
        public var done: Bool
        /// The action's job was cancelled: this step changed nothing, and no step will.
        public var cancelled: Bool

        public init(processed: Int, affected: Int, done: Bool, cancelled: Bool = false) {
            self.processed = processed
            self.affected = affected
            self.done = done
            self.cancelled = cancelled
        }
    }

    public struct BulkAction: Sendable, Equatable, Codable {
        public var id: Int64
        public var target: String
        public var action: String
        /// The filter as stored (JSON text).
        public var filter: String
        public var requestedBy: String
        public var expected: Int
        public var processed: Int
        public var affected: Int
        public var batch: Int
        public var jobID: JobID?
        /// The state of the job working through it (nil once that job is pruned).
        public var jobState: String?
        public var jobError: String?
        public var createdAt: String
        public var startedAt: String?
        public var finishedAt: String?
        /// When a step found the action's job cancelled (it stopped there).
        public var cancelledAt: String?
    }

    /// The filter of a bulk action over jobs, as the migration's functions read it.
    /// `beforeID` and `limit` (paging) are not part of it: a bulk action takes every
    /// matching job. `contains` is stored as the JSON object it is.
    public static func bulkFilter(_ filter: JobFilter) -> String {
        var fields: [String] = []
        func add(_ key: String, _ value: String?) {
            if let value { fields.append(quoted(key) + ":" + quoted(value)) }
        }
        if let id = filter.id { fields.append("\"id\":\(id)") }
        add("state", filter.state?.rawValue)
        add("kind", filter.kind)
        add("priority", filter.priority?.rawValue)
        add("unique_key", filter.uniqueKey)
        if let contains = filter.contains { fields.append("\"contains\":" + contains) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The filter of a bulk action over dead letters.
    public static func bulkDeadLetterFilter(kind: String?) -> String {
        kind.map { "{\"kind\":" + quoted($0) + "}" } ?? "{}"
    }

    private static func quoted(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    /// The dry run: how many rows match `filter` (JSON, see `bulkFilter`) now.
    public func countBulk(target: BulkTarget, filter: String) async throws -> BulkCount {
        guard let row = try await connection.firstRow(QueueBulkActionsStatements.Count(target: target, filter: filter)) else {
            throw PostgresError(.server, "the bulk count returned no row")
        }
        return BulkCount(count: row.count, upper: row.upper)
    }

    /// Records the action (who, what, the filter, the count now) and enqueues its job.
    public func startBulkAction(
        target: BulkTarget, action: BulkVerb, filter: String, requestedBy: String, upper: JobID, batch: Int = 1000
    ) async throws -> BulkStart {
        guard let row = try await connection.firstRow(QueueBulkActionsStatements.Start(
            target: target, action: action, filter: filter, requestedBy: requestedBy, upper: upper,
            batch: max(1, min(batch, 10_000))))
        else { throw PostgresError(.server, "the bulk start returned no row") }
        return BulkStart(id: row.id, expected: row.expected, jobID: row.jobID)
    }

    /// Works through the next `limit` matching rows of bulk action `id` (at most its
    /// `batch`); `done` once none is left, `cancelled` (and nothing changed) once its
    /// job was cancelled.
    public func bulkActionStep(id: Int64, limit: Int) async throws -> BulkStep {
        guard let step = try await connection.firstRow(QueueBulkActionsStatements.Step(id: id, limit: max(1, limit))) else {
            throw PostgresError(.server, "the bulk step returned no row")
        }
        return step
    }

    public func bulkAction(id: Int64) async throws -> BulkAction? {
        try await connection.firstRow(QueueBulkActionsStatements.List(id: id, limit: 1))
    }

    /// The newest bulk actions first.
    public func bulkActions(limit: Int = 50) async throws -> [BulkAction] {
        try await connection.rows(QueueBulkActionsStatements.List(id: nil, limit: max(1, min(limit, 500))))
    }
}
