import Foundation
import JobdCore

/// The Postgres half of the dispatch protocol. Every method is one SQL statement,
/// batched over many jobs, so a round trip is paid per batch and not per job.
///
/// Times are Postgres's `now()`: with several daemons on several hosts, the one
/// clock they all share is the database's.
public struct QueueStore: Sendable {
    /// The connection every statement of this store runs on.
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Closes the connection for good (the owner is done with this store).
    public func close() async {
        await connection.close()
    }

    // MARK: Promoter

    /// What the promoter's read found: whether this connection's session holds the
    /// promoter lock, whether it took it just now, and the due jobs in dispatch order.
    public struct DueJobs: Sendable {
        /// This session is the queue database's one promoter (it holds the lock).
        public var elected: Bool
        /// It was not before this read (a new session, or the lock was free just now):
        /// what the promoter remembers of earlier pushes belongs to a lost lease.
        public var newlyElected: Bool
        public var jobs: [(id: JobID, priority: JobPriority)]
        /// Per lane, the highest key among `jobs` (the lanes that found some).
        public var highest: [JobPriority: DueKey] = [:]
    }

    /// The promoter's pass. Takes the promoter lock if it is free (session-level, held
    /// until this connection's session ends), and only while this session holds it
    /// reads up to `limits[p]` due, unpaused waiting jobs of each priority, oldest
    /// first, leaving out `excluding[p]` (ids still in that priority's Redis list),
    /// and only those after `after[p]` in dispatch order (run_at, id), when given.
    /// Writes nothing to `queue.jobs`.
    ///
    /// Each lane is read along `jobs_due_idx` on the daemon's promoter connection
    /// (`PostgresScans.indexed`): prepared while the queue was idle and analyzed nearly
    /// empty, the generic plan was a sequential scan and a sort per lane, 200 ms a read
    /// once 300,000 jobs waited (1.3 ms along the index).
    /// - Parameter markingBusy: a daemon id whose `queue.listeners` row the same
    ///   statement sets busy (the promoter is working, so inserts need not notify);
    ///   nil leaves every row as it is.
    public func dueJobs(
        limits: [JobPriority: Int], excluding: [JobPriority: [JobID]] = [:], after: [JobPriority: DueKey] = [:],
        markingBusy daemonID: String? = nil
    ) async throws -> DueJobs {
        let rows = try await connection.rows(QueueJobsStatements.Promote(
            high: limits[.high] ?? 0, normal: limits[.normal] ?? 0, low: limits[.low] ?? 0,
            excludeHigh: excluding[.high] ?? [], excludeNormal: excluding[.normal] ?? [],
            excludeLow: excluding[.low] ?? [], busyDaemon: daemonID,
            startHigh: after[.high] ?? .start, startNormal: after[.normal] ?? .start, startLow: after[.low] ?? .start))
        let jobs = rows.compactMap { row -> (priority: JobPriority, key: DueKey)? in
            guard let id = row.id, let priority = row.priority else { return nil }
            return (priority, DueKey(runAtMicros: row.dispatchOrder ?? 0, id: id))
        }
        .sorted { ($0.priority.rank, $0.key) < ($1.priority.rank, $1.key) }
        var highest: [JobPriority: DueKey] = [:]
        for job in jobs { highest[job.priority] = job.key }  // in order: the last is the highest
        return DueJobs(
            elected: rows.first?.elected ?? false, newlyElected: rows.first?.newly ?? false,
            jobs: jobs.map { (id: $0.key.id, priority: $0.priority) }, highest: highest)
    }

    /// A promoter standing by: ends the session that holds the promoter lock if it has
    /// been idle longer than `staleAfter` (its daemon is frozen or cut off), so
    /// the next read can take the lock. Returns the number of sessions ended.
    public func deposeStalePromoter(staleAfter: Duration) async throws -> Int {
        try await connection.firstRow(QueueJobsStatements.DeposeStalePromoter(staleSeconds: staleAfter.seconds)) ?? 0
    }

    /// The promoter is about to sleep waiting for a NOTIFY: in one statement (one
    /// transaction, committed without waiting for the flush: the table is unlogged),
    /// upserts this daemon's row idle (re-creating it after a crash emptied the
    /// table) and tries the wake-up lock without waiting. Also returns the seconds
    /// until the next scheduled job (nil when none waits), which the sleep needs.
    ///
    /// `locked == true`: no inserter that read "busy" is still uncommitted, so a pass
    /// run after this statement sees all their jobs and later inserters notify.
    /// `excluding`: the promoter's pushed ids per lane, left out of the due time.
    public func announceIdle(
        daemonID: String, excluding: [JobPriority: [JobID]] = [:]
    ) async throws -> (locked: Bool, secondsUntilNextDue: Double?) {
        guard let row = try await connection.firstRow(QueueListenersStatements.AnnounceIdle(
            daemonID: daemonID, excludeHigh: excluding[.high] ?? [], excludeNormal: excluding[.normal] ?? [],
            excludeLow: excluding[.low] ?? [])) else {
            return (false, nil)
        }
        return (row.locked, row.secondsUntilNextDue)
    }

    /// Re-check while settling: is the wake-up lock free now (every inserter that read
    /// "busy" committed)? Its own statement, so the pass after it sees their rows.
    public func tryWakeLock() async throws -> Bool {
        try await connection.firstRow(QueueListenersStatements.TryWakeLock()) ?? false
    }

    /// A clean shutdown: this daemon no longer waits for NOTIFYs.
    public func removeListener(daemonID: String) async throws {
        try await connection.execute(QueueListenersStatements.Remove(daemonID: daemonID))
    }

    /// Deletes the rows of daemons that are gone: no row in `queue.daemons` with a
    /// heartbeat in the last `staleAfter`, and the row itself not touched in
    /// that time either (a promoter refreshes its row at every idle transition, at
    /// least once per poll interval). A crashed daemon's idle row would only cost
    /// inserters needless NOTIFYs; reaping a live one wrongly costs at most one poll
    /// interval, until its next idle transition writes the row again.
    public func reapListeners(staleAfter: Duration) async throws -> Int {
        try await connection.execute(QueueListenersStatements.Reap(staleAfterSeconds: staleAfter.seconds))
    }

    /// Seconds until the next job becomes due (nil when none is waiting), so an idle
    /// promoter can sleep exactly until then instead of polling.
    /// `excluding`: the promoter's pushed ids per lane (their jobs wait in Redis).
    public func secondsUntilNextDue(excluding: [JobPriority: [JobID]] = [:]) async throws -> Double? {
        try await connection.firstRow(QueueJobsStatements.SecondsUntilNextDue(
            excludeHigh: excluding[.high] ?? [], excludeNormal: excluding[.normal] ?? [],
            excludeLow: excluding[.low] ?? [])) ?? nil
    }

    // MARK: Workers

    /// Claims popped jobs for this daemon, straight from `available` or `retryable`
    /// (and due): one attempt each, leased for `lease` under `token`. Ids that
    /// are not waiting and due (a duplicate Redis entry whose job another claim took, a
    /// job cancelled or finished meanwhile) are skipped. A payload longer than `maxPayloadBytes` is
    /// not sent back; its job comes with `payload == nil` and is dead-lettered by the
    /// caller.
    ///
    /// Commits without waiting for the WAL flush (`synchronous_commit = off` for its
    /// transaction only): a claim lost in a server crash leaves its jobs to be claimed
    /// again under another token, so the lost attempt's completion, heartbeat and solo
    /// mark are refused; the attempt's durable completion flushes the claim's record
    /// before its own.
    ///
    /// Runs on its caller's executor (`nonisolated(nonsending)`): a caller isolated to
    /// `connection` claims without a hand-off to another thread.
    ///
    /// Finds its rows through the primary key whatever the table's statistics say
    /// (`Claim`'s SQL; the daemon's claim connections disable sequential scans,
    /// `PostgresScans.indexed`). A plan chosen by cost went wrong twice under a
    /// backlog: statistics taken while most rows were `running` made a scan of a
    /// partial index over every waiting job look cheap, and a generic plan made while
    /// the table held a few rows scanned it whole. Either cost grows with the backlog,
    /// so a backlog slowed the claims that should drain it, and under steady inserts
    /// jobs waited for seconds until the inserts stopped.
    ///
    /// - Parameter token: the lease token every fenced statement of these attempts
    ///   checks; a fresh random one per claim, so that a claim lost in a server crash
    ///   and the claim that follows it never share a fence (migration 0011).
    nonisolated(nonsending) public func claim(
        ids: [JobID], daemon: String, lease: Duration, maxPayloadBytes: Int,
        token: Int64 = .random(in: 1 ... .max)
    ) async throws -> [(job: ClaimedJob, payloadBytes: Int, payloadPresent: Bool)] {
        guard !ids.isEmpty else { return [] }
        let rows = try await connection.rows(QueueJobsStatements.Claim(
            ids: ids, daemon: daemon, leaseSeconds: lease.seconds, maxPayloadBytes: maxPayloadBytes, token: token))
        return Self.claimed(rows, token: token)
    }

    /// Claims up to `max` due jobs straight from PostgreSQL, without a Redis pop: for a
    /// pool whose lists stayed empty while jobs may be due (the promoter stands by,
    /// stopped, or has not pushed yet; the lists were flushed). Lane by lane in `order`,
    /// oldest first within a lane; paused lanes and kinds are left waiting; rows other
    /// claims hold are skipped, not waited for. The same attempt, lease and fence as
    /// `claim(ids:…)`, and a job claimed here whose id is also in a Redis list is
    /// refused when that id is popped and claimed (it is `running` by then).
    /// - Parameter dueFor: only jobs due for at least this long (a job due for less
    ///   is a running promoter's to push).
    public func claimDue(
        order: [JobPriority], max: Int, dueFor: Duration = .zero, daemon: String, lease: Duration, maxPayloadBytes: Int,
        token: Int64 = .random(in: 1 ... .max)
    ) async throws -> [(job: ClaimedJob, payloadBytes: Int, payloadPresent: Bool)] {
        var lanes: [JobPriority] = []
        for lane in order where !lanes.contains(lane) { lanes.append(lane) }
        guard max > 0, !lanes.isEmpty else { return [] }
        let rows = try await connection.rows(QueueJobsStatements.ClaimDue(
            lanes: lanes, daemon: daemon, leaseSeconds: lease.seconds, maxPayloadBytes: maxPayloadBytes, token: token,
            limit: max, dueForSeconds: dueFor.seconds))
        return Self.claimed(rows, token: token)
    }

    private static func claimed(
        _ rows: [QueueJobsStatements.Claim.Row], token: Int64
    ) -> [(job: ClaimedJob, payloadBytes: Int, payloadPresent: Bool)] {
        rows.map { row in
            let job = ClaimedJob(
                id: row.id, kind: row.kind, payload: row.payload ?? "", priority: row.priority, attempt: row.attempt,
                maxAttempts: row.maxAttempts,
                queueWaitSeconds: TotalConversion.seconds(row.queueWaitSeconds, in: 0...1e12),
                rescues: row.rescues, leaseToken: token
            )
            return (job, row.payloadBytes, row.payload != nil)
        }
    }

    /// The claim's text, for tests that plan it by hand.
    public static var claimSQL: String { QueueJobsStatements.Claim.sql.text }

    /// Applies a batch of completions, each fenced by `(id, attempt, token)` and
    /// `state = 'running'`. Returns the fences that were applied; the others were
    /// stale (the lease was taken over) and changed nothing. Each applied completion
    /// writes its attempt's one ledger row, naming `daemon` (the lease holder: the
    /// daemon that claimed these attempts) as the daemon that ran it.
    public func complete(_ batch: [AttemptCompletion], daemon: String? = nil) async throws -> Set<AttemptFence> {
        guard !batch.isEmpty else { return [] }
        let columns = CompletionColumns(batch)
        return Set(try await connection.rows(QueueJobsStatements.Complete(columns: columns, daemon: daemon)))
    }

    /// The promoter's read of due jobs, for tests that plan it by hand.
    public static var promoteSQL: String { QueueJobsStatements.Promote.sql.text }

    /// The idle transition's statements (`announceIdle`, `secondsUntilNextDue`), for
    /// tests that plan them by hand.
    public static var announceIdleSQL: String { QueueListenersStatements.AnnounceIdle.sql.text }
    public static var secondsUntilNextDueSQL: String { QueueJobsStatements.SecondsUntilNextDue.sql.text }

    /// The completion's text, for tests that plan it by hand.
    public static var completeSQL: String { QueueJobsStatements.Complete.sql.text }

    /// Extends the leases of attempts still running here. Returns the fences whose
    /// lease was lost (rescued or taken over) — their completions will be refused.
    ///
    /// At most `chunk` fences per statement, each found through the primary key. The
    /// statement does not test `state = 'running'`: with it the planner may scan an
    /// index for every running row — under a long snapshot, through every dead
    /// version of every lease ever extended — which can run past the statement
    /// timeout, and a heartbeat that keeps failing lets every lease expire. The token stands in for the state: `lease_token` is set by
    /// the claim and cleared by each statement that moves a job out of `running`
    /// (completion, rescue), so it matches only a running attempt.
    public func extendLeases(_ fences: [AttemptFence], lease: Duration, chunk: Int = 500) async throws -> Set<AttemptFence> {
        guard !fences.isEmpty else { return [] }
        var kept = Set<AttemptFence>()
        var start = 0
        while start < fences.count {
            let part = fences[start..<min(start + max(1, chunk), fences.count)]
            start = part.endIndex
            kept.formUnion(try await connection.rows(QueueJobsStatements.ExtendLeases(fences: part, leaseSeconds: lease.seconds)))
        }
        return Set(fences).subtracting(kept)
    }

    /// The heartbeat's text, for tests that plan it by hand.
    public static var extendLeasesSQL: String { QueueJobsStatements.ExtendLeases.sql.text }

    // MARK: Maintenance (rescuer)

    /// One rescuer pass: attempts whose lease expired go back to `available`, or to
    /// the dead letters when their attempts are spent or they were rescued
    /// `maxRescues` times (a job that keeps killing its daemon is a poison pill).
    ///
    /// A job rescued `max(1, maxRescues - 1)` times is a suspect and runs alone
    /// (WorkerPool); its further rescues count only for attempts that did run alone
    /// (a `solo` ledger row), so a job is dead-lettered as poison only if the process
    /// died while it was the one job running.
    public func rescueExpiredLeases(maxRescues: Int, limit: Int = 1_000) async throws -> [RescuedJob] {
        try await connection.rows(QueueJobsStatements.Rescue(limit: limit, maxRescues: maxRescues))
    }

    /// Records that a suspect (a job rescued before) now runs alone in its daemon, so
    /// that if this attempt is lost too, the rescue counts towards the poison-pill
    /// limit. False when the attempt is no longer this one's to run (lease lost).
    /// One statement per suspect; suspects exist only after a daemon died mid-job.
    public func markSolo(_ fence: AttemptFence, daemon: String) async throws -> Bool {
        try await connection.execute(QueueAttemptsStatements.MarkSolo(fence: fence, daemon: daemon)) == 1
    }

    /// Due waiting jobs (in Redis or not), dead letters, and paused lanes and kinds: for
    /// the status line. The job counts use partial indexes, so they stay cheap however
    /// large the table grows.
    public func backlogSummary() async throws -> (due: Int, deadLetters: Int, paused: Int) {
        let row = try await connection.firstRow(QueueJobsStatements.BacklogSummary())
        return (row?.due ?? 0, row?.deadLetters ?? 0, row?.paused ?? 0)
    }

    /// Unfinished jobs by state and priority, for the metrics gauges; available jobs
    /// whose `run_at` is still ahead are reported as `scheduled`. Each branch reads
    /// one partial index, so finished rows (most of the table) are never scanned
    /// (running rows are found by the column their index is on, migration 0012).
    public func backlogByState() async throws -> [(state: String, priority: String, count: Int)] {
        try await connection.rows(QueueJobsStatements.BacklogByState()).map { ($0.state, $0.priority, $0.count) }
    }

    // MARK: Daemon registry

    public func registerDaemon(id: String, hostname: String, pid: Int32, version: String, workers: Int) async throws {
        try await connection.execute(QueueDaemonsStatements.Register(
            id: id, hostname: hostname, pid: pid, version: version, workers: workers))
    }

    public func heartbeatDaemon(id: String) async throws {
        try await connection.execute(QueueDaemonsStatements.Heartbeat(id: id))
    }

    public func unregisterDaemon(id: String) async throws {
        try await connection.execute(QueueDaemonsStatements.Unregister(id: id))
    }

    /// Forgets daemons silent for a day: their rows only clutter `jobd status`.
    public func pruneSilentDaemons() async throws {
        try await connection.execute(QueueDaemonsStatements.PruneSilent())
    }
}

/// A job the rescuer took back from a daemon that stopped heartbeating.
public struct RescuedJob: Sendable, Equatable {
    public var id: JobID
    public var kind: String
    /// `available` (will run again) or `dead`.
    public var state: JobState
    public var attempt: Int
    public var rescues: Int
    public var previousOwner: String
}
