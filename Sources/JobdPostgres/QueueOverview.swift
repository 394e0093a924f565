import JobdCore

/// The web console's overview, read through the admin store (which never hands
/// out its connection).
extension QueueAdmin {
    public struct UnfinishedCount: Sendable, Equatable {
        public var state: String
        public var priority: String
        public var count: Int
    }

    public struct OverviewSummary: Sendable, Equatable {
        /// ISO 8601, the database's clock.
        public var generatedAt: String
        /// Completed and cancelled jobs, from the statistics of `jobs_finished_idx`.
        public var finishedEstimate: Int
        public var deadLetters: Int
        /// Seconds the oldest due, unclaimed job has waited; nil when none is due.
        public var oldestDueSeconds: Double?
        /// The database's current minute, in minutes since 1970.
        public var currentMinute: Int64
    }

    public struct LiveDaemon: Sendable, Equatable {
        public var id: String
        public var hostname: String
        public var workers: Int
        public var version: String
        public var heartbeatAgeSeconds: Double
    }

    public struct MinuteOutcomes: Sendable, Equatable {
        /// Minutes since 1970.
        public var minute: Int64
        public var completed: Int
        public var failed: Int
    }

    /// The server's version; also the overview's round trip for its latency figure.
    public func serverVersion() async throws -> String? {
        try await connection.firstRow(QueueOverviewStatements.ServerVersion())
    }

    /// Available, retryable and running jobs by state and priority; of each priority's
    /// waiting jobs at most `waitingCap + 1` are counted (the first due): when a
    /// priority's available and retryable counts add up to more than `waitingCap`, they
    /// are lower bounds.
    public func unfinishedCounts(waitingCap: Int = QueueAdmin.overviewWaitingCap) async throws -> [UnfinishedCount] {
        try await connection.rows(QueueOverviewStatements.Unfinished(cap: waitingCap))
    }

    /// How many waiting jobs of a priority the overview counts exactly.
    public static let overviewWaitingCap = 5_000

    public func overviewSummary() async throws -> OverviewSummary {
        guard let summary = try await connection.firstRow(QueueOverviewStatements.Summary()) else {
            throw PostgresError(.server, "the overview summary returned no row")
        }
        return summary
    }

    /// Daemons with a heartbeat in the last 30 seconds.
    public func liveDaemons() async throws -> [LiveDaemon] {
        try await connection.rows(QueueOverviewStatements.LiveDaemons())
    }

    /// Ended attempts per minute from `fromMinute` (minutes since 1970) on; minutes
    /// without any are absent.
    public func endedAttemptsPerMinute(from fromMinute: Int64) async throws -> [MinuteOutcomes] {
        try await connection.rows(QueueOverviewStatements.EndedAttemptsPerMinute(fromMinute: fromMinute))
    }
}
