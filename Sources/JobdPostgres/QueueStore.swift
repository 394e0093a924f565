import Foundation
import JobdCore

/// The Postgres half of the dispatch protocol. Every method is one SQL statement,
/// batched over many jobs, so a round trip is paid per batch and not per job.
///
/// Times are Postgres's `now()`: with several daemons on several hosts, the one
/// clock they all share is the database's.
public struct QueueStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    // MARK: Promoter

    /// Moves up to `limits[p]` due jobs of each priority to `promoted`, oldest first,
    /// skipping rows another daemon has locked. Returns them in dispatch order.
    /// - Parameter markingBusy: a daemon id whose `queue.listeners` row the same
    ///   statement sets busy (the promoter is working, so inserts need not notify);
    ///   nil leaves every row as it is.
    public func promote(
        limits: [JobPriority: Int], markingBusy daemonID: String? = nil
    ) async throws -> [(id: JobID, priority: JobPriority)] {
        let result = try await connection.queryPrepared(Self.promoteSQL, [
            String(limits[.high] ?? 0), String(limits[.normal] ?? 0), String(limits[.low] ?? 0), daemonID,
        ])
        var promoted: [(id: JobID, priority: JobPriority, order: Int64)] = []
        promoted.reserveCapacity(result.rows.count)
        for row in result.rows {
            guard let id = row[0].flatMap({ JobID($0) }), let priority = row[1].flatMap({ JobPriority(rawValue: $0) }) else {
                continue
            }
            promoted.append((id, priority, row[2].flatMap { Int64($0) } ?? 0))
        }
        promoted.sort { ($0.priority.rank, $0.order, $0.id) < ($1.priority.rank, $1.order, $1.id) }
        return promoted.map { ($0.id, $0.priority) }
    }

    // Paused lanes and kinds (`queue.pauses`, migration 0040) are left out by each lane's
    // condition, read by the statement itself: no extra round trip per pass. A paused
    // lane's uncorrelated NOT EXISTS is a one-time filter, so its index is not even
    // scanned; a paused kind is a filter on the lane's scan, which passes over that kind's
    // due rows. The due-time queries apply the same conditions, so an idle promoter does
    // not see paused jobs as due and spin on them.
    static let promoteSQL = """
        WITH busy AS (
            -- The wake-up protocol's busy mark, in the statement the promoter runs
            -- anyway: no extra round trip. Writes only when the row says idle.
            UPDATE queue.listeners SET idle = false, updated_at = now()
             WHERE daemon_id = $4 AND idle
        ), h AS (
            SELECT id FROM queue.jobs
             WHERE state IN ('available', 'retryable') AND priority = 'high' AND run_at <= now()
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'high')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')
             ORDER BY run_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED
        ), n AS (
            SELECT id FROM queue.jobs
             WHERE state IN ('available', 'retryable') AND priority = 'normal' AND run_at <= now()
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'normal')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')
             ORDER BY run_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED
        ), l AS (
            SELECT id FROM queue.jobs
             WHERE state IN ('available', 'retryable') AND priority = 'low' AND run_at <= now()
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'low')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')
             ORDER BY run_at, id LIMIT $3::int FOR UPDATE SKIP LOCKED
        )
        UPDATE queue.jobs j
           SET state = 'promoted', promoted_at = now()
         WHERE j.id IN (SELECT id FROM h UNION ALL SELECT id FROM n UNION ALL SELECT id FROM l)
           -- Commit without waiting for the WAL flush (this transaction only). Losing a
           -- promotion in a server crash is harmless: the rows are `available` again and
           -- are promoted anew, the ids left in Redis fail the claim's state check, and
           -- the durable completion of an attempt started from it flushes this record first.
           -- Saves a disk flush (1–10 ms here) on every pickup.
           AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
        -- The dispatch order: run_at in microseconds, clamped so that no run_at a row
        -- may hold (infinite, or older than the CHECK of 0013 allows) fails the cast.
        RETURNING j.id, j.priority,
                  (least(greatest(extract(epoch FROM j.run_at), -9e12), 9e12) * 1000000)::bigint
        """

    // The wake-up protocol's advisory lock pair is (1785684580, 1): 'jobd' in ASCII and
    // 1 for the wake-up lock, as in Migrations/0010_queue_wakeup.sql (literal in the SQL
    // below, so every statement text stays constant).

    /// The promoter is about to sleep waiting for a NOTIFY: in one statement (one
    /// transaction, committed without waiting for the flush: the table is unlogged),
    /// upserts this daemon's row idle (re-creating it after a crash emptied the
    /// table) and tries the wake-up lock without waiting. Also returns the seconds
    /// until the next scheduled job (nil when none waits), which the sleep needs.
    ///
    /// `locked == true`: no inserter that read "busy" is still uncommitted, so a pass
    /// run after this statement sees all their jobs and later inserters notify.
    public func announceIdle(daemonID: String) async throws -> (locked: Bool, secondsUntilNextDue: Double?) {
        let result = try await connection.queryPrepared(Self.announceIdleSQL, [daemonID])
        let row = result.rows.first
        return (row?[0] == "t", row?[1].flatMap(Double.init))
    }

    static let announceIdleSQL = """
        WITH idle AS (
            INSERT INTO queue.listeners AS l (daemon_id, idle) VALUES ($1, true)
            ON CONFLICT (daemon_id) DO UPDATE SET idle = true, updated_at = now()
        )
        SELECT pg_try_advisory_xact_lock(1785684580, 1),
               (extract(epoch FROM least(
                   (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'high'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'high')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')),
                   (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'normal'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'normal')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')),
                   (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'low'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'low')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind'))
               )) - extract(epoch FROM now()))::float8
         WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
        """

    /// Re-check while settling: is the wake-up lock free now (every inserter that read
    /// "busy" committed)? Its own statement, so the pass after it sees their rows.
    public func tryWakeLock() async throws -> Bool {
        let result = try await connection.queryPrepared(
            "SELECT pg_try_advisory_xact_lock(1785684580, 1)")
        return result.rows.first?[0] == "t"
    }

    /// A clean shutdown: this daemon no longer waits for NOTIFYs.
    public func removeListener(daemonID: String) async throws {
        try await connection.query("DELETE FROM queue.listeners WHERE daemon_id = $1", [daemonID])
    }

    /// Deletes the rows of daemons that are gone: no row in `queue.daemons` with a
    /// heartbeat in the last `staleAfter` seconds, and the row itself not touched in
    /// that time either (a promoter refreshes its row at every idle transition, at
    /// least once per poll interval). A crashed daemon's idle row would only cost
    /// inserters needless NOTIFYs; reaping a live one wrongly costs at most one poll
    /// interval, until its next idle transition writes the row again.
    public func reapListeners(staleAfter: Double) async throws -> Int {
        let result = try await connection.query("""
            DELETE FROM queue.listeners l
             WHERE l.updated_at < now() - make_interval(secs => $1::float8)
               AND NOT EXISTS (SELECT 1 FROM queue.daemons d
                                WHERE d.id = l.daemon_id
                                  AND d.heartbeat_at >= now() - make_interval(secs => $1::float8))
            """, [String(staleAfter)])
        return result.affectedRows
    }

    /// Seconds until the next job becomes due (nil when none is waiting), so an idle
    /// promoter can sleep exactly until then instead of polling.
    public func secondsUntilNextDue() async throws -> Double? {
        // One min() per priority, so each is the first entry of jobs_due_idx
        // (priority, run_at, id) instead of a scan of every waiting job.
        let result = try await connection.queryPrepared("""
            SELECT (extract(epoch FROM least(
                (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'high'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'high')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')),
                (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'normal'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'normal')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')),
                (SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'low'
                    AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'low')
                    AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind'))
            )) - extract(epoch FROM now()))::float8
            """)
        return result.rows.first?.first.flatMap { $0.flatMap(Double.init) }
    }

    // MARK: Workers

    /// Claims promoted jobs for this daemon: one attempt each, leased for `lease`
    /// seconds under `token`. Ids that are no longer `promoted` (a stale Redis entry, a
    /// job another daemon took) are skipped. A payload longer than `maxPayloadBytes` is
    /// not sent back; its job comes with `payload == nil` and is dead-lettered by the
    /// caller.
    ///
    /// Commits without waiting for the WAL flush (`synchronous_commit = off` for its
    /// transaction only): a claim lost in a server crash leaves its jobs to be claimed
    /// again under another token, so the lost attempt's completion, heartbeat and solo
    /// mark are refused; the attempt's durable completion flushes the claim's record
    /// before its own.
    ///
    /// - Parameter token: the lease token every fenced statement of these attempts
    ///   checks; a fresh random one per claim, so that a claim lost in a server crash
    ///   and the claim that follows it never share a fence (migration 0011).
    public func claim(
        ids: [JobID], daemon: String, lease: Double, maxPayloadBytes: Int,
        token: Int64 = .random(in: 1 ... .max)
    ) async throws -> [(job: ClaimedJob, payloadBytes: Int, payloadPresent: Bool)] {
        guard !ids.isEmpty else { return [] }
        let result = try await connection.queryPrepared(Self.claimSQL, [
            PostgresArray.integers(ids), daemon, String(lease), String(maxPayloadBytes), String(token),
        ])
        return result.rows.compactMap { row in
            guard let id = row[0].flatMap({ JobID($0) }),
                  let kind = row[1],
                  let priority = row[3].flatMap({ JobPriority(rawValue: $0) }),
                  let attempt = row[4].flatMap({ Int($0) }),
                  let maxAttempts = row[5].flatMap({ Int($0) })
            else { return nil }
            let job = ClaimedJob(
                id: id, kind: kind, payload: row[2] ?? "", priority: priority, attempt: attempt,
                maxAttempts: maxAttempts,
                queueWaitSeconds: TotalConversion.seconds(row[6].flatMap(Double.init), in: 0...1e12),
                rescues: row[7].flatMap({ Int($0) }) ?? 0, leaseToken: token
            )
            return (job, row[8].flatMap({ Int($0) }) ?? 0, row[2] != nil)
        }
    }

    public static let claimSQL = """
        WITH claimed AS (
            UPDATE queue.jobs
               SET state = 'running', attempt = attempt + 1, leased_by = $2, lease_token = $5::bigint,
                   lease_expires_at = now() + make_interval(secs => $3::float8),
                   started_at = now()
             WHERE id = ANY($1::bigint[]) AND state = 'promoted'
               -- Commit without waiting for the WAL flush (this transaction only). A
               -- claim lost in a server crash leaves its jobs `promoted` (or
               -- `available`) to be claimed again, under another lease token: the lost
               -- attempt's completion, heartbeat and solo mark are refused by the token.
               -- The attempt's durable completion flushes this record before its own.
               -- Saves a disk flush (1–10 ms here) between a pop and the handler start.
               AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
            RETURNING id, kind, payload, priority, attempt, max_attempts, run_at, rescues
        ), ledger AS (
            -- The attempts ledger's start row, in the claim itself: no extra round trip.
            INSERT INTO queue.attempts (job_id, attempt, event, daemon)
            SELECT id, attempt, 'start', $2 FROM claimed
        )
        SELECT c.id, c.kind,
               CASE WHEN octet_length(t.text) <= $4::int THEN t.text END,
               c.priority, c.attempt, c.max_attempts,
               -- Epoch differences, not now() - run_at: that interval overflows for
               -- an infinite run_at. Clamped to 0…10^12 s (the Swift side clamps too).
               least(greatest(0, extract(epoch FROM now()) - extract(epoch FROM c.run_at)), 1e12)::float8,
               c.rescues, octet_length(t.text)
          FROM claimed c, LATERAL (SELECT c.payload::text AS text) t
        """

    /// Applies a batch of completions, each fenced by `(id, attempt, token)` and
    /// `state = 'running'`. Returns the fences that were applied; the others were
    /// stale (the lease was taken over) and changed nothing.
    public func complete(_ batch: [AttemptCompletion]) async throws -> Set<AttemptFence> {
        guard !batch.isEmpty else { return [] }
        // Written by hand: JSONSerialization's bridging cost a third of the daemon's CPU
        // at full load (perf, docs/performance.md). Keys: id, attempt, outcome, delay,
        // run, code, error — the columns completeSQL reads.
        let json = CompletionJSON.encode(batch)
        let result = try await connection.queryPrepared(Self.completeSQL, [json])
        var applied = Set<AttemptFence>()
        for row in result.rows {
            if let fence = Self.fence(row) { applied.insert(fence) }
        }
        return applied
    }

    public static let completeSQL = """
        WITH input AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb)
                AS i(id bigint, attempt int, token bigint, outcome text, delay float8, code text, error text, run float8)
        ), done AS (
            UPDATE queue.jobs j
               -- An operator cancelled the job while this attempt ran (migration
               -- 0040): it ends here, unless the attempt completed it.
               SET state = CASE WHEN j.cancel_requested_at IS NOT NULL AND i.outcome <> 'completed'
                                THEN 'cancelled'
                                ELSE CASE i.outcome
                                         WHEN 'completed' THEN 'completed'
                                         WHEN 'dead' THEN 'dead'
                                         WHEN 'release' THEN 'available'
                                         ELSE 'retryable' END END,
                   run_at = CASE WHEN i.outcome IN ('retry', 'snooze')
                                 THEN now() + make_interval(secs => i.delay)
                                 WHEN i.outcome = 'release' THEN now()
                                 ELSE j.run_at END,
                   attempt = CASE WHEN i.outcome = 'snooze' THEN j.attempt - 1 ELSE j.attempt END,
                   finished_at = CASE WHEN i.outcome IN ('completed', 'dead') OR j.cancel_requested_at IS NOT NULL
                                      THEN now() END,
                   leased_by = NULL, lease_token = NULL, lease_expires_at = NULL, promoted_at = NULL,
                   last_error = coalesce(i.error, j.last_error),
                   errors = CASE WHEN i.error IS NULL OR i.outcome = 'snooze' THEN j.errors
                                 ELSE j.errors || jsonb_build_array(jsonb_build_object(
                                     'attempt', j.attempt, 'at', now(), 'code', i.code, 'error', i.error))
                            END
              FROM input i
             -- The ids again as an array, so the rows are found by probing the primary
             -- key: joined on the record set alone (estimated at 100 rows), the planner
             -- scans a small queue.jobs whole for every batch (11,000 rows: a seq scan).
             WHERE j.id = ANY (ARRAY(SELECT input.id FROM input))
               AND j.id = i.id AND j.attempt = i.attempt AND j.lease_token = i.token AND j.state = 'running'
            RETURNING j.id, i.attempt AS fenced_attempt, i.token AS fenced_token, i.outcome, i.code, i.run, j.kind, j.payload,
                      j.priority, j.attempt, j.last_error, j.errors, j.state AS new_state
        ), ledger AS (
            -- The attempt's end row, only for completions the fence accepted.
            INSERT INTO queue.attempts (job_id, attempt, event, outcome, error_code, run_seconds)
            SELECT id, fenced_attempt, 'end', outcome, code, run FROM done
        ), dead AS (
            INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error, errors)
            SELECT id, kind, payload, priority, attempt, coalesce(code, 'failed'), last_error, errors
              FROM done WHERE outcome = 'dead' AND new_state = 'dead'
            ON CONFLICT (job_id) DO UPDATE
               SET kind = EXCLUDED.kind, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
                   attempts = EXCLUDED.attempts, reason = EXCLUDED.reason,
                   last_error = EXCLUDED.last_error, errors = EXCLUDED.errors, dead_at = now()
        )
        SELECT id, fenced_attempt, fenced_token FROM done
        """

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
    public func extendLeases(_ fences: [AttemptFence], lease: Double, chunk: Int = 500) async throws -> Set<AttemptFence> {
        guard !fences.isEmpty else { return [] }
        var kept = Set<AttemptFence>()
        var start = 0
        while start < fences.count {
            let part = fences[start..<min(start + max(1, chunk), fences.count)]
            start = part.endIndex
            let result = try await connection.queryPrepared(Self.extendLeasesSQL, [
                PostgresArray.integers(part.map(\.id)), PostgresArray.integers(part.map(\.attempt)), String(lease),
                PostgresArray.integers(part.map(\.token)),
            ])
            for row in result.rows {
                if let fence = Self.fence(row) { kept.insert(fence) }
            }
        }
        return Set(fences).subtracting(kept)
    }

    public static let extendLeasesSQL = """
        UPDATE queue.jobs j
           SET lease_expires_at = now() + make_interval(secs => $3::float8)
          FROM unnest($1::bigint[], $2::int[], $4::bigint[]) AS f(id, attempt, token)
         WHERE j.id = ANY ($1::bigint[])  -- probe the primary key, whatever the table's size
           AND j.id = f.id AND j.attempt = f.attempt AND j.lease_token = f.token
        RETURNING j.id, j.attempt, j.lease_token
        """

    /// A fence from a row's first three columns: id, attempt, lease token.
    private static func fence(_ row: [String?]) -> AttemptFence? {
        guard let id = row[0].flatMap({ JobID($0) }), let attempt = row[1].flatMap({ Int($0) }),
              let token = row[2].flatMap({ Int64($0) }) else { return nil }
        return AttemptFence(id: id, attempt: attempt, token: token)
    }

    // MARK: Maintenance (rescuer, reconciler)

    /// One rescuer pass: attempts whose lease expired go back to `available`, or to
    /// the dead letters when their attempts are spent or they were rescued
    /// `maxRescues` times (a job that keeps killing its daemon is a poison pill).
    ///
    /// A job rescued `max(1, maxRescues - 1)` times is a suspect and runs alone
    /// (WorkerPool); its further rescues count only for attempts that did run alone
    /// (a `solo` ledger row), so a job is dead-lettered as poison only if the process
    /// died while it was the one job running.
    public func rescueExpiredLeases(maxRescues: Int, limit: Int = 1_000) async throws -> [RescuedJob] {
        let result = try await connection.query(Self.rescueSQL, [String(limit), String(maxRescues)])
        return result.rows.compactMap { row in
            guard let id = row[0].flatMap({ JobID($0) }), let kind = row[1],
                  let state = row[2].flatMap({ JobState(rawValue: $0) }) else { return nil }
            return RescuedJob(
                id: id, kind: kind, state: state, attempt: row[3].flatMap { Int($0) } ?? 0,
                rescues: row[4].flatMap { Int($0) } ?? 0, previousOwner: row[5] ?? ""
            )
        }
    }

    static let rescueSQL = """
        WITH expired AS (
            -- Rescues below max(1, max_rescues - 1) always count; from there on the
            -- job is a suspect that runs alone, and a rescue counts only when the lost
            -- attempt ran alone: a suspect that merely waited for its turn cannot be
            -- told apart from a bystander of whatever killed its daemon.
            SELECT j.id, j.leased_by,
                   j.rescues + CASE WHEN j.rescues < greatest(1, $2::int - 1) OR EXISTS (
                                   SELECT 1 FROM queue.attempts a
                                    WHERE a.job_id = j.id AND a.attempt = j.attempt AND a.event = 'solo')
                               THEN 1 ELSE 0 END AS rescues
              FROM queue.jobs j
             WHERE j.state = 'running' AND j.lease_expires_at < now()
             ORDER BY j.lease_expires_at LIMIT $1::int FOR UPDATE OF j SKIP LOCKED
        ), moved AS (
            UPDATE queue.jobs j
               SET rescues = e.rescues,
                   -- A job cancelled while this attempt ran ends here (migration 0040).
                   state = CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'cancelled'
                                WHEN j.attempt >= j.max_attempts OR e.rescues >= $2::int
                                THEN 'dead' ELSE 'available' END,
                   finished_at = CASE WHEN j.attempt >= j.max_attempts OR e.rescues >= $2::int
                                      OR j.cancel_requested_at IS NOT NULL
                                      THEN now() END,
                   run_at = now(), leased_by = NULL, lease_token = NULL, lease_expires_at = NULL, promoted_at = NULL,
                   last_error = 'lease expired: ' || coalesce(e.leased_by, 'a daemon')
                                || ' stopped heartbeating during attempt ' || j.attempt,
                   errors = j.errors || jsonb_build_array(jsonb_build_object(
                       'attempt', j.attempt, 'at', now(), 'code', 'lease_expired',
                       'error', 'lease expired: ' || coalesce(e.leased_by, 'a daemon')
                                || ' stopped heartbeating'))
              FROM expired e
             WHERE j.id = e.id
            RETURNING j.id, j.kind, j.state, j.attempt, j.rescues, e.leased_by, j.payload, j.priority,
                      j.last_error, j.errors,
                      CASE WHEN j.rescues >= $2::int THEN 'poison' ELSE 'max_attempts' END AS reason
        ), dead AS (
            INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error, errors)
            SELECT id, kind, payload, priority, attempt, reason, last_error, errors FROM moved WHERE state = 'dead'
            ON CONFLICT (job_id) DO UPDATE
               SET reason = EXCLUDED.reason, last_error = EXCLUDED.last_error,
                   errors = EXCLUDED.errors, attempts = EXCLUDED.attempts, dead_at = now()
        ), ledger AS (
            INSERT INTO queue.attempts (job_id, attempt, event, daemon, outcome, error_code)
            SELECT id, attempt, 'end', leased_by, 'lease_expired',
                   CASE WHEN state = 'dead' THEN reason ELSE 'lease_expired' END
              FROM moved
        )
        SELECT id, kind, state, attempt, rescues, leased_by FROM moved
        """

    /// Records that a suspect (a job rescued before) now runs alone in its daemon, so
    /// that if this attempt is lost too, the rescue counts towards the poison-pill
    /// limit. False when the attempt is no longer this one's to run (lease lost).
    /// One statement per suspect; suspects exist only after a daemon died mid-job.
    public func markSolo(_ fence: AttemptFence, daemon: String) async throws -> Bool {
        let result = try await connection.query("""
            INSERT INTO queue.attempts (job_id, attempt, event, daemon)
            SELECT id, attempt, 'solo', $3 FROM queue.jobs
             WHERE id = $1::bigint AND attempt = $2::int AND lease_token = $4::bigint AND state = 'running'
            """, [String(fence.id), String(fence.attempt), daemon, String(fence.token)])
        return result.affectedRows == 1
    }

    /// Jobs `promoted` for longer than `olderThan` seconds without a claim: Redis lost
    /// them (a flush, a failover, a crash between commit and push). Back to `available`.
    public func reclaimStalePromotions(olderThan: Double, limit: Int = 10_000) async throws -> Int {
        let result = try await connection.query("""
            WITH stale AS (
                SELECT id FROM queue.jobs
                 WHERE state = 'promoted' AND promoted_at < now() - make_interval(secs => $1::float8)
                 ORDER BY promoted_at LIMIT $2::int FOR UPDATE SKIP LOCKED
            )
            UPDATE queue.jobs j SET state = 'available', promoted_at = NULL
              FROM stale s WHERE j.id = s.id
            """, [String(olderThan), String(limit)])
        return result.affectedRows
    }

    /// Hands promotions back when the push to Redis failed after the commit.
    @discardableResult
    public func unpromote(ids: [JobID]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let result = try await connection.query("""
            UPDATE queue.jobs SET state = 'available', promoted_at = NULL
             WHERE id = ANY($1::bigint[]) AND state = 'promoted'
            """, [PostgresArray.integers(ids)])
        return result.affectedRows
    }

    /// After Redis lost its data, every promotion is void: all go back to `available`
    /// and the promoter pushes them again. A duplicate in Redis is harmless, because
    /// only one claim of a `promoted` row can succeed.
    public func resetAllPromotions() async throws -> Int {
        // `promoted_at IS NOT NULL`: through jobs_promoted_idx, not a scan of the table.
        let result = try await connection.query("""
            UPDATE queue.jobs SET state = 'available', promoted_at = NULL
             WHERE promoted_at IS NOT NULL AND state = 'promoted'
            """)
        return result.affectedRows
    }

    /// Due jobs not yet promoted, and dead letters: for the status line. Both counts
    /// use partial indexes, so they stay cheap however large the table grows.
    public func backlogSummary() async throws -> (due: Int, deadLetters: Int) {
        let result = try await connection.query("""
            SELECT (SELECT count(*) FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND run_at <= now()),
                   (SELECT count(*) FROM queue.dead_letters)
            """)
        let row = result.rows.first
        return (row?[0].flatMap { Int($0) } ?? 0, row?[1].flatMap { Int($0) } ?? 0)
    }

    /// Unfinished jobs by state and priority, for the metrics gauges; available jobs
    /// whose `run_at` is still ahead are reported as `scheduled`. Each branch reads
    /// one partial index, so finished rows (most of the table) are never scanned
    /// (promoted and running rows are found by the column their index is on,
    /// migration 0012).
    public func backlogByState() async throws -> [(state: String, priority: String, count: Int)] {
        let result = try await connection.query("""
            SELECT CASE WHEN run_at > now() THEN 'scheduled' ELSE state::text END, priority::text, count(*)
              FROM queue.jobs WHERE state IN ('available', 'retryable') GROUP BY 1, 2
            UNION ALL
            SELECT state::text, priority::text, count(*) FROM queue.jobs
             WHERE promoted_at IS NOT NULL AND state = 'promoted' GROUP BY 1, 2
            UNION ALL
            SELECT state::text, priority::text, count(*) FROM queue.jobs
             WHERE lease_expires_at IS NOT NULL AND state = 'running' GROUP BY 1, 2
            """)
        return result.rows.compactMap { row in
            guard let state = row[0], let priority = row[1], let count = row[2].flatMap({ Int($0) }) else { return nil }
            return (state, priority, count)
        }
    }

    // MARK: Daemon registry

    public func registerDaemon(id: String, hostname: String, pid: Int32, version: String, workers: Int) async throws {
        try await connection.query("""
            INSERT INTO queue.daemons (id, hostname, pid, version, workers)
            VALUES ($1, $2, $3::int, $4, $5::int)
            ON CONFLICT (id) DO UPDATE
               SET heartbeat_at = now(), workers = EXCLUDED.workers, version = EXCLUDED.version
            """, [id, hostname, String(pid), version, String(workers)])
    }

    public func heartbeatDaemon(id: String) async throws {
        try await connection.query("UPDATE queue.daemons SET heartbeat_at = now() WHERE id = $1", [id])
    }

    public func unregisterDaemon(id: String) async throws {
        try await connection.query("DELETE FROM queue.daemons WHERE id = $1", [id])
    }

    /// Forgets daemons silent for a day: their rows only clutter `jobd status`.
    public func pruneSilentDaemons() async throws {
        try await connection.query("DELETE FROM queue.daemons WHERE heartbeat_at < now() - interval '1 day'")
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
