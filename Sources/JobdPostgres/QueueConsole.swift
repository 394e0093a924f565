import JobdCore

/// The operator's actions and the web console's reads: cancel, pause and resume, the
/// job search, one job with its ledger, re-drive and discard. Run as the schema owner
/// (like the other operator commands); each is one parameterised statement, built so
/// that the indexes of migration 0040 and the partial indexes of the loops serve it.
extension QueueAdmin {
    // MARK: Cancel

    public enum CancelOutcome: String, Sendable, Codable, Equatable {
        /// It was waiting (available, retryable, promoted) and is `cancelled` now.
        case cancelled
        /// It is running: its attempt runs to its end, and then the job ends
        /// `cancelled` (unless that attempt completed it).
        case requested
        /// Already finished (completed, dead, cancelled): nothing changed.
        case finished
        /// No such job, or it changed state while this statement ran (try again).
        case unchanged
    }

    public struct CancelResult: Sendable, Codable, Equatable {
        public var id: JobID
        public var outcome: CancelOutcome
        /// The state before the cancel; nil when no such job.
        public var state: String?
    }

    /// Cancels jobs. Waiting jobs move to `cancelled` at once: a promoted job's id left in
    /// Redis then fails the claim's state check. A running job is marked: its daemon's
    /// completion (fenced as always by id, attempt and lease token) or the rescuer ends
    /// it `cancelled` instead of retrying, releasing or dead-lettering it.
    public func cancel(ids: [JobID]) async throws -> [CancelResult] {
        guard !ids.isEmpty else { return [] }
        let result = try await connection.query("""
            WITH moved AS (
                UPDATE queue.jobs
                   SET state = 'cancelled', finished_at = now(), promoted_at = NULL,
                       cancel_requested_at = now()
                 WHERE id = ANY($1::bigint[]) AND state IN ('available', 'retryable', 'promoted')
                RETURNING id
            ), marked AS (
                UPDATE queue.jobs
                   SET cancel_requested_at = coalesce(cancel_requested_at, now())
                 WHERE id = ANY($1::bigint[]) AND state = 'running'
                RETURNING id
            )
            SELECT i.id, j.state, m.id IS NOT NULL, k.id IS NOT NULL
              FROM unnest($1::bigint[]) AS i(id)
              LEFT JOIN queue.jobs j ON j.id = i.id
              LEFT JOIN moved m ON m.id = i.id
              LEFT JOIN marked k ON k.id = i.id
            """, [PostgresArray.integers(ids)])
        return result.rows.compactMap { row in
            guard let id = row[0].flatMap({ JobID($0) }) else { return nil }
            let state = row[1]
            let outcome: CancelOutcome
            if row[2] == "t" {
                outcome = .cancelled
            } else if row[3] == "t" {
                outcome = .requested
            } else if let state, JobState(rawValue: state).map({ JobState.finished.contains($0) }) == true {
                outcome = .finished
            } else {
                outcome = .unchanged
            }
            return CancelResult(id: id, outcome: outcome, state: state)
        }
    }

    // MARK: Retry, discard

    /// Runs a job again now: a dead job is re-driven (its dead letter removed, attempts
    /// reset), a cancelled one returns to `available` with attempts reset, and a waiting
    /// one (available or retryable, maybe scheduled later) becomes due now. Returns
    /// false when the job is in none of those states.
    public func retry(id: JobID) async throws -> Bool {
        if try await !retryDeadLetters(ids: [id]).isEmpty { return true }
        let result = try await connection.query("""
            UPDATE queue.jobs
               SET state = 'available', run_at = now(),
                   attempt = CASE WHEN state = 'cancelled' THEN 0 ELSE attempt END,
                   rescues = CASE WHEN state = 'cancelled' THEN 0 ELSE rescues END,
                   finished_at = NULL, cancel_requested_at = NULL
             WHERE id = $1::bigint AND state IN ('cancelled', 'available', 'retryable')
            """, [String(id)])
        return result.affectedRows == 1
    }

    /// Discards dead letters: each job moves from `dead` to `cancelled` (kept with its
    /// history until `queue.prune` removes finished jobs) and its dead letter is deleted.
    /// Returns the ids discarded.
    public func discardDeadLetters(ids: [JobID]) async throws -> [JobID] {
        let result = try await connection.query("""
            WITH gone AS (
                DELETE FROM queue.dead_letters WHERE job_id = ANY($1::bigint[]) RETURNING job_id
            )
            UPDATE queue.jobs j SET state = 'cancelled', finished_at = now()
              FROM gone g
             WHERE j.id = g.job_id AND j.state = 'dead'
            RETURNING j.id
            """, [PostgresArray.integers(ids)])
        return result.rows.compactMap { $0[0].flatMap { JobID($0) } }.sorted()
    }

    // MARK: Pause and resume

    public enum PauseScope: String, Sendable, Codable, CaseIterable {
        case priority
        case kind
    }

    public struct Pause: Sendable, Codable, Equatable {
        public var scope: PauseScope
        public var name: String
        public var pausedBy: String
        public var pausedAt: String
    }

    /// Pauses a priority lane or a kind: the promoter promotes none of its jobs until
    /// resumed. Returns false when it was already paused.
    public func pause(_ scope: PauseScope, _ name: String, by who: String) async throws -> Bool {
        let result = try await connection.query("""
            INSERT INTO queue.pauses (scope, name, paused_by) VALUES ($1, $2, $3)
            ON CONFLICT (scope, name) DO NOTHING
            """, [scope.rawValue, name, who])
        return result.affectedRows == 1
    }

    /// Returns false when it was not paused.
    public func resume(_ scope: PauseScope, _ name: String) async throws -> Bool {
        let result = try await connection.query(
            "DELETE FROM queue.pauses WHERE scope = $1 AND name = $2", [scope.rawValue, name])
        if result.affectedRows > 0 {
            // Wake the promoters now rather than at their next poll.
            try await connection.query("SELECT pg_notify('jobd_jobs', '')")
        }
        return result.affectedRows > 0
    }

    public func pauses() async throws -> [Pause] {
        let result = try await connection.query(
            "SELECT scope, name, paused_by, paused_at::text FROM queue.pauses ORDER BY scope, name")
        return result.rows.compactMap { row in
            guard let scope = row[0].flatMap(PauseScope.init(rawValue:)) else { return nil }
            return Pause(scope: scope, name: row[1] ?? "", pausedBy: row[2] ?? "", pausedAt: row[3] ?? "")
        }
    }

    // MARK: Job search

    public struct JobFilter: Sendable, Equatable {
        public var id: JobID?
        public var state: JobState?
        public var kind: String?
        public var priority: JobPriority?
        public var uniqueKey: String?
        /// A JSON object the payload must contain (`payload @> …`).
        public var contains: String?
        /// Keyset pagination: only ids below this one (the list is newest first).
        public var beforeID: JobID?
        public var limit: Int = 50

        public init() {}
    }

    public struct JobSummary: Sendable, Codable, Equatable {
        public var id: JobID
        public var kind: String
        public var state: String
        public var priority: String
        public var attempt: Int
        public var maxAttempts: Int
        public var runAt: String
        public var createdAt: String
        public var uniqueKey: String?
        public var lastError: String?
        public var cancelRequested: Bool
    }

    /// Jobs matching `filter`, newest first, at most `filter.limit`.
    ///
    /// The statement holds only the conditions given, so each can use its index: id
    /// (primary key), kind (`jobs_kind_id_idx`), payload containment
    /// (`jobs_payload_path_idx`), the loops' partial indexes for the unfinished states
    /// (the predicate that names their indexed column is added), and keyset paging
    /// walks the primary key down from `beforeID`.
    public func jobs(_ filter: JobFilter) async throws -> [JobSummary] {
        // One text for every filter: the statement is not prepared, so the server plans
        // it with the values bound, and each `$n IS NULL OR …` of an absent filter folds
        // away, leaving only the given conditions for the planner to serve by index.
        let result = try await connection.query("""
            SELECT id, kind, state, priority, attempt, max_attempts, run_at::text, created_at::text,
                   unique_key, left(last_error, 300), cancel_requested_at IS NOT NULL
              FROM queue.jobs
             WHERE ($1::bigint IS NULL OR id = $1::bigint)
               AND ($2::text IS NULL OR state = $2::text)
               AND ($2::text IS DISTINCT FROM 'running' OR lease_expires_at IS NOT NULL)
               AND ($2::text IS DISTINCT FROM 'promoted' OR promoted_at IS NOT NULL)
               AND ($3::text IS NULL OR kind = $3::text)
               AND ($4::text IS NULL OR priority = $4::text)
               AND ($5::text IS NULL OR unique_key = $5::text)
               AND ($6::jsonb IS NULL OR payload @> $6::jsonb)
               AND ($7::bigint IS NULL OR id < $7::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            """, [
                filter.id.map { String($0) }, filter.state?.rawValue, filter.kind, filter.priority?.rawValue,
                filter.uniqueKey, filter.contains, filter.beforeID.map { String($0) },
                String(max(1, min(filter.limit, 500))),
            ])
        return result.rows.map { row in
            JobSummary(
                id: row[0].flatMap { JobID($0) } ?? 0, kind: row[1] ?? "", state: row[2] ?? "", priority: row[3] ?? "",
                attempt: row[4].flatMap { Int($0) } ?? 0, maxAttempts: row[5].flatMap { Int($0) } ?? 0,
                runAt: row[6] ?? "", createdAt: row[7] ?? "", uniqueKey: row[8], lastError: row[9],
                cancelRequested: row[10] == "t")
        }
    }

    // MARK: One job

    public struct JobDetail: Sendable, Codable, Equatable {
        public var summary: JobSummary
        /// JSON text.
        public var payload: String
        /// JSON text: one object per failed attempt.
        public var errors: String
        public var rescues: Int
        public var leasedBy: String?
        public var startedAt: String?
        public var finishedAt: String?
        public var deadLetterReason: String?
    }

    public func job(_ id: JobID) async throws -> JobDetail? {
        let result = try await connection.query("""
            SELECT j.id, j.kind, j.state, j.priority, j.attempt, j.max_attempts, j.run_at::text, j.created_at::text,
                   j.unique_key, j.last_error, j.cancel_requested_at IS NOT NULL,
                   j.payload::text, j.errors::text, j.rescues, j.leased_by, j.started_at::text, j.finished_at::text,
                   d.reason
              FROM queue.jobs j LEFT JOIN queue.dead_letters d ON d.job_id = j.id
             WHERE j.id = $1::bigint
            """, [String(id)])
        guard let row = result.rows.first else { return nil }
        let summary = JobSummary(
            id: row[0].flatMap { JobID($0) } ?? 0, kind: row[1] ?? "", state: row[2] ?? "", priority: row[3] ?? "",
            attempt: row[4].flatMap { Int($0) } ?? 0, maxAttempts: row[5].flatMap { Int($0) } ?? 0,
            runAt: row[6] ?? "", createdAt: row[7] ?? "", uniqueKey: row[8], lastError: row[9],
            cancelRequested: row[10] == "t")
        return JobDetail(
            summary: summary, payload: row[11] ?? "{}", errors: row[12] ?? "[]",
            rescues: row[13].flatMap { Int($0) } ?? 0, leasedBy: row[14], startedAt: row[15], finishedAt: row[16],
            deadLetterReason: row[17])
    }

    public struct AttemptEvent: Sendable, Codable, Equatable {
        public var attempt: Int
        public var event: String
        public var at: String
        public var daemon: String?
        public var outcome: String?
        public var errorCode: String?
        public var runSeconds: Double?
    }

    /// The job's ledger rows in time order (at most `limit`, the latest ones).
    public func attempts(of id: JobID, limit: Int = 200) async throws -> [AttemptEvent] {
        let result = try await connection.query("""
            SELECT attempt, event, at::text, daemon, outcome, error_code, run_seconds FROM (
                SELECT * FROM queue.attempts WHERE job_id = $1::bigint ORDER BY at DESC LIMIT $2::int
            ) a ORDER BY at, CASE event WHEN 'end' THEN 1 ELSE 0 END
            """, [String(id), String(limit)])
        return result.rows.map { row in
            AttemptEvent(
                attempt: row[0].flatMap { Int($0) } ?? 0, event: row[1] ?? "", at: row[2] ?? "", daemon: row[3],
                outcome: row[4], errorCode: row[5], runSeconds: row[6].flatMap(Double.init))
        }
    }
}

extension QueueAdmin {
    // MARK: Dead letters, a page at a time

    /// Where a page of dead letters ends: the last row's `dead_at` (microseconds since
    /// 1970, exact) and job id. Text form `MICROS.ID`, both non-negative integers.
    public struct DeadLetterCursor: Sendable, Equatable {
        public var deadAtMicros: Int64
        public var jobID: JobID

        public init(deadAtMicros: Int64, jobID: JobID) {
            self.deadAtMicros = deadAtMicros
            self.jobID = jobID
        }

        public init?(text: String) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let micros = Int64(parts[0]), let id = JobID(parts[1]), micros >= 0, id >= 0 else {
                return nil
            }
            self.init(deadAtMicros: micros, jobID: id)
        }

        public var text: String { "\(deadAtMicros).\(jobID)" }
    }

    /// Dead letters newest first (`dead_at`, then job id, descending), `limit` of them,
    /// after `before` when given: keyset pages through `dead_letters_dead_at_idx`, each
    /// as cheap as the first however deep. Each letter comes with its cursor.
    public func deadLetterPage(
        limit: Int, kind: String?, before: DeadLetterCursor?
    ) async throws -> [(letter: DeadLetter, cursor: DeadLetterCursor)] {
        let result = try await connection.query("""
            SELECT job_id, kind, priority, attempts, reason, last_error, dead_at::text, errors::text, payload::text,
                   (extract(epoch FROM dead_at) * 1000000)::bigint
              FROM queue.dead_letters
             WHERE ($2::text IS NULL OR kind = $2)
               AND ($3::bigint IS NULL
                    OR (dead_at <= timestamptz 'epoch' + $3::bigint * interval '1 microsecond'
                        AND (dead_at < timestamptz 'epoch' + $3::bigint * interval '1 microsecond' OR job_id < $4::bigint)))
             ORDER BY dead_at DESC, job_id DESC
             LIMIT $1::int
            """, [String(limit), kind, before.map { String($0.deadAtMicros) }, before.map { String($0.jobID) }])
        return result.rows.map { row in
            let letter = DeadLetter(
                jobID: row[0].flatMap { JobID($0) } ?? 0, kind: row[1] ?? "", priority: row[2] ?? "",
                attempts: row[3].flatMap { Int($0) } ?? 0, reason: row[4] ?? "", lastError: row[5],
                deadAt: row[6] ?? "", errors: row[7] ?? "[]", payload: row[8] ?? "{}")
            return (letter, DeadLetterCursor(deadAtMicros: row[9].flatMap { Int64($0) } ?? 0, jobID: letter.jobID))
        }
    }
}
