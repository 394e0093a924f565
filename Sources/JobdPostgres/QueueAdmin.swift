import JobdCore

/// Operator-facing queries: enqueue, status and the dead-letter commands.
/// Not on any hot path; each is still a single parameterised statement.
public struct QueueAdmin: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public struct EnqueueRequest: Sendable {
        public var kind: String
        public var payload: String = "{}"
        public var priority: JobPriority = .normal
        /// Absolute time (anything `timestamptz` accepts) or nil.
        public var runAt: String?
        /// Seconds from now, used when `runAt` is nil.
        public var delaySeconds: Double = 0
        public var maxAttempts: Int?
        public var uniqueKey: String?

        public init(kind: String) { self.kind = kind }
    }

    /// Enqueues through `queue.enqueue`, so a duplicate unique key returns the id of
    /// the job that already holds it rather than failing.
    public func enqueue(_ request: EnqueueRequest) async throws -> JobID {
        let result = try await connection.query("""
            SELECT queue.enqueue($1, $2::jsonb, $3,
                                 coalesce($4::timestamptz, now() + make_interval(secs => $5::float8)),
                                 coalesce($6::int, 20), $7)
            """, [
                request.kind, request.payload, request.priority.rawValue, request.runAt,
                String(request.delaySeconds), request.maxAttempts.map(String.init), request.uniqueKey,
            ])
        guard let id = result.rows.first?.first.flatMap({ $0.flatMap { JobID($0) } }) else {
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
        let counts = try await connection.query("""
            SELECT state, priority, count(*) FROM queue.jobs GROUP BY state, priority
            """)
        var byState: [String: [String: Int]] = [:]
        for row in counts.rows {
            guard let state = row[0], let priority = row[1], let count = row[2].flatMap({ Int($0) }) else { continue }
            byState[state, default: [:]][priority] = count
        }
        let summary = try await connection.query("""
            SELECT (SELECT extract(epoch FROM now() - min(run_at))::float8 FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND run_at <= now()),
                   (SELECT count(*) FROM queue.dead_letters)
            """)
        let daemons = try await connection.query("""
            SELECT id, hostname, pid, workers, version, started_at::text,
                   extract(epoch FROM now() - heartbeat_at)::float8
              FROM queue.daemons
             WHERE heartbeat_at > now() - make_interval(secs => $1::float8)
             ORDER BY started_at
            """, [String(seconds)])
        return Status(
            counts: byState,
            oldestDueSeconds: summary.rows.first?[0].flatMap(Double.init),
            deadLetters: summary.rows.first?[1].flatMap({ Int($0) }) ?? 0,
            daemons: daemons.rows.map { row in
                Status.Daemon(
                    id: row[0] ?? "", hostname: row[1] ?? "", pid: row[2].flatMap { Int($0) } ?? 0,
                    workers: row[3].flatMap { Int($0) } ?? 0, version: row[4] ?? "", startedAt: row[5] ?? "",
                    secondsSinceHeartbeat: row[6].flatMap(Double.init) ?? 0)
            })
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
        let result = try await connection.query("""
            SELECT job_id, kind, priority, attempts, reason, last_error, dead_at::text, errors::text, payload::text
              FROM queue.dead_letters
             WHERE $2::text IS NULL OR kind = $2
             ORDER BY dead_at DESC, job_id DESC
             LIMIT $1::int
            """, [String(limit), kind])
        return result.rows.map { row in
            DeadLetter(
                jobID: row[0].flatMap { JobID($0) } ?? 0, kind: row[1] ?? "", priority: row[2] ?? "",
                attempts: row[3].flatMap { Int($0) } ?? 0, reason: row[4] ?? "", lastError: row[5],
                deadAt: row[6] ?? "", errors: row[7] ?? "[]", payload: row[8] ?? "{}")
        }
    }

    /// Re-drives dead jobs: back to `available` with attempts reset (their error
    /// history is kept). nil retries every dead letter. Returns the ids re-driven.
    public func retryDeadLetters(ids: [JobID]?) async throws -> [JobID] {
        let result = try await connection.query("""
            WITH redriven AS (
                DELETE FROM queue.dead_letters
                 WHERE $1::bigint[] IS NULL OR job_id = ANY($1::bigint[])
                RETURNING job_id
            )
            UPDATE queue.jobs j
               SET state = 'available', attempt = 0, rescues = 0, run_at = now(),
                   finished_at = NULL, promoted_at = NULL, leased_by = NULL, lease_expires_at = NULL
              FROM redriven r
             WHERE j.id = r.job_id AND j.state = 'dead'
            RETURNING j.id
            """, [ids.map { PostgresArray.integers($0) }])
        return result.rows.compactMap { $0[0].flatMap { JobID($0) } }.sorted()
    }

    /// Deletes dead jobs (and their dead letters) that died more than `olderThan`
    /// seconds ago. Returns how many.
    public func purgeDeadLetters(olderThan seconds: Double) async throws -> Int {
        let result = try await connection.query("""
            DELETE FROM queue.jobs j
             USING queue.dead_letters d
             WHERE d.job_id = j.id AND j.state = 'dead'
               AND d.dead_at < now() - make_interval(secs => $1::float8)
            """, [String(seconds)])
        return result.affectedRows
    }
}
