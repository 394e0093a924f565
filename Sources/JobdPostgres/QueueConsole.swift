import JobdCore

/// The operator's actions and the web console's reads: cancel, pause and resume, the
/// job search, one job with its ledger, re-drive and discard. Run as the schema owner
/// (like the other operator commands); each is one parameterised statement, built so
/// that the indexes of migration 0021 and the partial indexes of the loops serve it.
extension QueueAdmin {
    // MARK: Cancel

    public enum CancelOutcome: String, Sendable, Codable, Equatable {
        /// It was waiting (available, retryable) and is `cancelled` now.
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

    /// Cancels jobs. Waiting jobs move to `cancelled` at once: an id of theirs left in
    /// Redis then fails the claim's state check. A running job is marked: its daemon's
    /// completion (fenced as always by id, attempt and lease token) or the rescuer ends
    /// it `cancelled` instead of retrying, releasing or dead-lettering it.
    public func cancel(ids: [JobID]) async throws -> [CancelResult] {
        guard !ids.isEmpty else { return [] }
        return try await connection.rows(QueueJobsStatements.Cancel(ids: ids)).map { row in
            let outcome: CancelOutcome
            if row.moved {
                outcome = .cancelled
            } else if row.marked {
                outcome = .requested
            } else if let state = row.state, JobState(rawValue: state).map({ JobState.finished.contains($0) }) == true {
                outcome = .finished
            } else {
                outcome = .unchanged
            }
            return CancelResult(id: row.id, outcome: outcome, state: row.state)
        }
    }

    // MARK: Retry, discard

    /// Runs a job again now: a dead job is re-driven (its dead letter removed, attempts
    /// reset), a cancelled one returns to `available` with attempts reset, and a waiting
    /// one (available or retryable, maybe scheduled later) becomes due now. Returns
    /// false when the job is in none of those states.
    public func retry(id: JobID) async throws -> Bool {
        if try await !retryDeadLetters(ids: [id]).isEmpty { return true }
        return try await connection.execute(QueueJobsStatements.RunAgain(id: id)) == 1
    }

    /// Discards dead letters: each job moves from `dead` to `cancelled` (kept with its
    /// history until `queue.prune` removes finished jobs) and its dead letter is deleted.
    /// Returns the ids discarded.
    public func discardDeadLetters(ids: [JobID]) async throws -> [JobID] {
        try await connection.rows(QueueDeadLettersStatements.Discard(ids: ids)).sorted()
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

    /// Pauses a priority lane or a kind: the promoter pushes none of its jobs until
    /// resumed. Returns false when it was already paused.
    public func pause(_ scope: PauseScope, _ name: String, by who: String) async throws -> Bool {
        try await connection.execute(QueuePausesStatements.Pause(scope: scope, name: name, pausedBy: who)) == 1
    }

    /// Returns false when it was not paused.
    public func resume(_ scope: PauseScope, _ name: String) async throws -> Bool {
        let resumed = try await connection.execute(QueuePausesStatements.Resume(scope: scope, name: name)) > 0
        if resumed {
            // Wake the promoters now rather than at their next poll.
            try await connection.execute(QueuePausesStatements.WakePromoters())
        }
        return resumed
    }

    public func pauses() async throws -> [Pause] {
        try await connection.rows(QueuePausesStatements.List())
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
    /// (primary key), kind (`jobs_kind_id_idle_idx`), payload containment
    /// (`jobs_payload_idle_idx`), the loops' partial indexes for the unfinished states
    /// (the predicate that names their indexed column is added), and keyset paging
    /// walks the primary key down from `beforeID`. The kind and payload indexes hold no
    /// running job (a claim writes no entry in them): a state other than `running`
    /// implies their predicate, and without a state the running jobs are read apart,
    /// through `jobs_lease_idx` (`QueueJobsStatements.SearchEveryState`).
    ///
    /// A waiting state alone (with or without a priority) is served by
    /// `QueueJobsStatements.SearchWaiting` from `jobs_waiting_kind_idx`.
    ///
    /// Completed jobs are read from the ledger (a completion deletes the job row and
    /// its ledger row carries the job) and merged in by id: for `state` completed or
    /// no state filter. queue.jobs still holds `completed` rows written before that.
    /// The ledger's completed rows have their own unique-key and payload indexes (see
    /// `QueueJobsStatements.SearchCompleted`); without those filters the newest are
    /// merged kind by kind and priority by priority (`SearchCompletedNewest`). `completed` rows left in
    /// queue.jobs are found through `jobs_completed_id_idx`.
    ///
    /// A payload filter (`contains`, without an id or a unique key) is searched in id
    /// windows (`payloadJobs`), so that a page costs what it shows rather than what matches.
    public func jobs(_ filter: JobFilter) async throws -> [JobSummary] {
        if filter.contains != nil, filter.id == nil, filter.uniqueKey == nil {
            return try await payloadJobs(filter)
        }
        if let state = filter.state, state == .available || state == .retryable, filter.id == nil, filter.kind == nil,
           filter.uniqueKey == nil, filter.contains == nil {
            return try await connection.rows(QueueJobsStatements.SearchWaiting(
                state: state, priority: filter.priority, beforeID: filter.beforeID, limit: filter.limit))
        }
        let rows = filter.state == nil
            ? try await connection.rows(QueueJobsStatements.SearchEveryState(filter: filter))
            : try await connection.rows(QueueJobsStatements.Search(filter: filter))
        guard filter.state == nil || filter.state == .completed else { return rows }
        let completed: [JobSummary]
        if filter.id == nil, filter.uniqueKey == nil, filter.contains == nil {
            completed = try await connection.rows(QueueJobsStatements.SearchCompletedNewest(
                kind: filter.kind, priority: filter.priority, beforeID: filter.beforeID, limit: filter.limit))
        } else {
            completed = try await connection.rows(QueueJobsStatements.SearchCompleted(filter: filter))
        }
        if completed.isEmpty { return rows }
        let limit = max(1, min(filter.limit, 500))
        return Array((rows + completed).sorted { $0.id > $1.id }.prefix(limit))
    }

    /// How wide a payload search's first id window is, in rows of the page asked for.
    static let payloadWindowStart: Int64 = 256
    /// How many times wider than the last one a payload search's next window may be.
    /// Few, wide windows: each window's statement scans the payload indexes' pending
    /// lists again, which a bulk action fills, so a rare value's cost is the number of
    /// windows.
    static let payloadWindowGrowth: Int64 = 16
    /// The widest window searched as a `BitmapAnd` of the payload and id indexes
    /// (`SearchPayloadWindow.indexed`), in ids.
    static let payloadIndexedWindowMax: Int64 = 262_144
    /// How many primary-key entries of a window's range cost what one heap page of a
    /// match does, as `payloadJobs` weighs them. Measured during a bulk retry on the
    /// 10M-job console load: a 120,000-entry range 30–78 ms, 5,100 matches' pages
    /// 28–121 ms.
    static let payloadRangeEntriesPerPage: Double = 20

    /// The jobs whose payload contains `filter.contains`, newest first, as `jobs` lists
    /// them, searched in id windows from the top down.
    ///
    /// The payload index (`jsonb_path_ops` GIN) is lossy and unordered: it yields every
    /// match at once, and returning the newest 50 of 10,000 matches would read the heap
    /// page of all 10,000 (to recheck and sort). Instead, the ids below `beforeID` (or
    /// below the newest id) are searched in adjacent windows `[from, below)`, each one
    /// statement over `queue.jobs` and, when the state allows completed jobs, the
    /// ledger (`SearchPayloadWindow`), until the page is full. The last window reaches id
    /// 1: everything left below. The first window is `payloadWindowStart` × limit ids
    /// wide; each next one as wide as the matches found so far say the rest of the page
    /// needs, twice over, and between as wide as the last and `payloadWindowGrowth`
    /// times that (`nextPayloadWindow`).
    ///
    /// A window either reads only its own matches, at the price of its id range's index
    /// entries (`indexed`), or the heap page of every match in the table. It is indexed
    /// in the first window, which is narrow, and in a window up to
    /// `payloadIndexedWindowMax` ids whose range costs less than the pages of the matches
    /// the density found so far predicts in all ids (`payloadRangeEntriesPerPage`,
    /// weighed on `jobs_pkey`, the dearer of the two ranges). So a value many jobs share
    /// reads its windows' matches, and a sparse or rare one, once a window has shown it
    /// sparse, its few matches. A value dense enough to fill its page within the
    /// indexed windows costs about twice its page's heap pages and the windows'
    /// entries; a rare one or one that never matches ends after about
    /// log16(ids / (256 × limit)) windows (four for 10M ids and 50 a page). The windows
    /// are adjacent and the rows of each are taken newest first, so the page is exactly
    /// the newest `limit` matches below `beforeID`: keyset pages neither skip nor repeat
    /// a row.
    func payloadJobs(_ filter: JobFilter) async throws -> [JobSummary] {
        let limit = max(1, min(filter.limit, 500))
        var below: JobID
        if let beforeID = filter.beforeID {
            below = beforeID
        } else {
            guard let newest = try await connection.firstRow(QueueJobsStatements.NewestID()) ?? nil else { return [] }
            below = newest + 1
        }
        let top = below
        var width = Self.payloadWindowStart * Int64(limit)
        var searched: Int64 = 0
        var found: [JobSummary] = []
        while found.count < limit {
            // The last window is everything left below (ids start at 1).
            let from: JobID? = below - width > 1 ? below - width : nil
            var bounds = filter
            bounds.beforeID = below
            bounds.limit = limit - found.count
            let indexed = from != nil && width <= Self.payloadIndexedWindowMax
                && (searched == 0 || Double(width) < Self.payloadRangeEntriesPerPage * Double(found.count) * Double(top) / Double(searched))
            found += try await connection.rows(QueueJobsStatements.SearchPayloadWindow(filter: bounds, fromID: from, indexed: indexed))
            guard let from else { break }
            searched += width
            below = from
            width = Self.nextPayloadWindow(after: width, searched: searched, found: found.count, limit: limit)
        }
        return found
    }

    /// The width of a payload search's next window, given the ids `searched` so far in
    /// which `found` of the page's `limit` rows were found: twice what the density so
    /// far says the rest of the page needs, at least `last` and at most
    /// `payloadWindowGrowth` × `last` (nothing found yet: the most). Grows and never
    /// overflows for any inputs (`last` ≥ 1).
    static func nextPayloadWindow(after last: Int64, searched: Int64, found: Int, limit: Int) -> Int64 {
        let most = last.multipliedReportingOverflow(by: payloadWindowGrowth)
        let widest = most.overflow ? Int64.max : most.partialValue
        guard found > 0, searched > 0 else { return widest }
        let needed = Double(max(limit - found, 1)) * Double(searched) / Double(found) * 2
        guard needed < Double(widest) else { return widest }
        return max(last, Int64(needed.rounded(.up)))
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

    /// A completed job is read from its ledger row when queue.jobs no longer holds it.
    public func job(_ id: JobID) async throws -> JobDetail? {
        if let job = try await connection.firstRow(QueueJobsStatements.Detail(id: id)) { return job }
        return try await connection.firstRow(QueueJobsStatements.DetailCompleted(id: id))
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
        try await connection.rows(QueueAttemptsStatements.History(jobID: id, limit: limit))
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
    /// after `before` when given: keyset pages through `dead_letters_dead_at_job_idx`, each
    /// as cheap as the first however deep. Each letter comes with its cursor.
    public func deadLetterPage(
        limit: Int, kind: String?, before: DeadLetterCursor?
    ) async throws -> [(letter: DeadLetter, cursor: DeadLetterCursor)] {
        try await connection.rows(QueueDeadLettersStatements.Page(limit: limit, kind: kind, before: before))
    }
}
