import JobdCore
import JobdPostgres

/// Where a notification stands, with its tries: what the web console and its API
/// show. The body is never read here (it may hold anything a producer sent).
public struct NotificationStatus: Sendable, Equatable, Codable {
    public struct Try: Sendable, Equatable, Codable {
        public var number: Int
        public var jobID: JobID?
        public var jobAttempt: Int?
        public var destination: String
        public var startedAt: String
        public var durationMilliseconds: Double
        /// sent | failed | retry | snoozed
        public var outcome: String
        public var statusCode: Int?
        public var errorCode: String?
        public var excerpt: String?
    }

    public var id: Int64
    public var channel: String
    public var recipient: String
    public var subject: String?
    /// pending | sending | sent | failed
    public var status: String
    public var tries: Int
    public var jobID: JobID?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var createdAt: String
    public var updatedAt: String
    public var sentAt: String?
    public var failedAt: String?
    /// Retention dropped its body.
    public var archived: Bool
    /// Filled by `load` (empty in lists).
    public var attempts: [Try] = []

    /// One notification and its tries; nil when there is none with that id.
    public static func load(_ connection: PostgresConnection, id: Int64) async throws -> NotificationStatus? {
        guard var status = try await connection.firstRow(NotificationConsoleStatements.One(id: id)) else { return nil }
        status.attempts = try await connection.rows(NotificationConsoleStatements.Tries(id: id))
        return status
    }

    /// The newest notifications first (of `status` when given), below id `before`.
    public static func recent(
        _ connection: PostgresConnection, status: String?, before: Int64?, limit: Int
    ) async throws -> [NotificationStatus] {
        try await connection.rows(NotificationConsoleStatements.Recent(status: status, before: before, limit: max(1, min(limit, 500))))
    }
}
