import JobdCore

/// Operator-facing queries: enqueue, status and the dead-letter commands.
/// Not on any hot path; each is still a single parameterised statement.
public struct QueueAdmin: Sendable {
    /// Not handed out: every caller goes through a method that runs a named statement.
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Closes the connection for good (the owner is done with this store).
    public func close() async {
        await connection.close()
    }

    public struct EnqueueRequest: Sendable {
        public var kind: String
        public var payload: String = "{}"
        public var priority: JobPriority = .normal
        /// Absolute time (anything `timestamptz` accepts) or nil.
        public var runAt: String?
        /// From now, used when `runAt` is nil.
        public var delay: Duration = .zero
        public var maxAttempts: Int?
        public var uniqueKey: String?

        public init(kind: String) { self.kind = kind }
    }

    /// Enqueues through `queue.enqueue`, so a duplicate unique key returns the id of
    /// the job that already holds it rather than failing.
    public func enqueue(_ request: EnqueueRequest) async throws -> JobID {
        guard let id = try await connection.firstRow(QueueJobsStatements.Enqueue(request: request)) ?? nil else {
            throw PostgresError(.server, "queue.enqueue returned no id")
        }
        return id
    }

    // MARK: Status

    public struct Status: Sendable, Codable, Equatable {
        public var counts: [String: [String: Int]]  // state → priority → count
        public var oldestDueSeconds: Double?
        public var deadLetters: Int
        public var daemons: [Daemon]

        public struct Daemon: Sendable, Codable, Equatable {
            public var id: String
            public var hostname: String
            public var pid: Int
            public var workers: Int
            public var version: String
            public var startedAt: String
            public var secondsSinceHeartbeat: Double
        }
    }

    public func status(liveWithin seconds: Double = 30) async throws -> Status {
        var byState: [String: [String: Int]] = [:]
        for row in try await connection.rows(QueueJobsStatements.CountByState()) {
            // Completed jobs come twice: ledger rows and rows from before the ledger held them.
            byState[row.state, default: [:]][row.priority, default: 0] += row.count
        }
        let summary = try await connection.firstRow(QueueJobsStatements.OldestDue())
        let daemons = try await connection.rows(QueueDaemonsStatements.Live(liveWithinSeconds: seconds))
        return Status(
            counts: byState, oldestDueSeconds: summary?.oldestDueSeconds, deadLetters: summary?.deadLetters ?? 0,
            daemons: daemons)
    }

    // MARK: Dead letters

    public struct DeadLetter: Sendable, Codable, Equatable {
        public var jobID: JobID
        public var kind: String
        public var priority: String
        public var attempts: Int
        public var reason: String
        public var lastError: String?
        public var deadAt: String
        /// JSON text of the error history.
        public var errors: String
        /// JSON text of the payload.
        public var payload: String
    }

    public func deadLetters(limit: Int = 100, kind: String? = nil) async throws -> [DeadLetter] {
        try await connection.rows(QueueDeadLettersStatements.List(limit: limit, kind: kind))
    }

    /// Re-drives dead jobs: back to `available` with attempts reset (their error
    /// history is kept). nil retries every dead letter. Returns the ids re-driven.
    public func retryDeadLetters(ids: [JobID]?) async throws -> [JobID] {
        try await connection.rows(QueueDeadLettersStatements.Retry(ids: ids)).sorted()
    }

    /// Deletes dead jobs (and their dead letters) that died more than `olderThan`
    /// seconds ago. Returns how many.
    public func purgeDeadLetters(olderThan seconds: Double) async throws -> Int {
        try await connection.execute(QueueDeadLettersStatements.Purge(olderThanSeconds: seconds))
    }
}
