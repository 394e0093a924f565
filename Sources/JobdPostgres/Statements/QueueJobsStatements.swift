import JobdCore

/// The statements on `queue.jobs` that move jobs through the dispatch protocol:
/// promote, claim, complete, extend leases, rescue, and the reconciler's and the
/// status line's reads. Each writes to its neighbours (ledger rows, dead letters,
/// the listener's busy mark) in the same statement, so a batch stays one round trip.
enum QueueJobsStatements {
    // MARK: Shared fragments

    // A lane's waiting jobs that are not paused (`queue.pauses`, migration 0021): the
    // promoter promotes these once due, and the due-time reads take the minimum run_at
    // of the same rows, so an idle promoter does not see paused jobs as due and spin
    // on them. A paused lane's uncorrelated NOT EXISTS is a one-time filter, so its
    // index is not even scanned; a paused kind is a filter on the lane's scan, which
    // passes over that kind's due rows. Each begins and ends with a line break, so it
    // composes between lines of a statement.
    static let waitingHigh: SQL = """

        state IN ('available', 'retryable') AND priority = 'high'
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'high')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')

        """
    static let waitingNormal: SQL = """

        state IN ('available', 'retryable') AND priority = 'normal'
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'normal')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')

        """
    static let waitingLow: SQL = """

        state IN ('available', 'retryable') AND priority = 'low'
               AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = 'low')
               AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')

        """

    /// float8 seconds from now until the earliest waiting, unpaused job's run_at (NULL
    /// when none waits; negative when one is overdue). One min() per priority, so each
    /// is the first entry of jobs_due_idx (priority, run_at, id) instead of a scan of
    /// every waiting job.
    static let secondsUntilNextDue: SQL = """
        (extract(epoch FROM least(
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingHigh + """
        ),
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingNormal + """
        ),
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingLow + """
        )
        )) - extract(epoch FROM now()))::float8
        """

    // MARK: Promoter

    /// Moves up to `high`/`normal`/`low` due jobs of each lane to `promoted`, oldest
    /// first, skipping rows another daemon has locked; sets `busyDaemon`'s listener row
    /// busy in the same statement (nil leaves every row as it is).
    struct Promote: PostgresStatement {
        var high: Int
        var normal: Int
        var low: Int
        var busyDaemon: String?

        struct Row: Sendable {
            var id: JobID
            var priority: JobPriority
            /// run_at in microseconds: the dispatch order within a lane.
            var dispatchOrder: Int64
        }

        var bindings: PostgresBindings { [.int(high), .int(normal), .int(low), .text(busyDaemon)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), priority: try row.decode("priority"),
                dispatchOrder: try row.decode("dispatch_order"))
        }

        static let sql: SQL = """
            WITH busy AS (
                -- The wake-up protocol's busy mark, in the statement the promoter runs
                -- anyway: no extra round trip. Writes only when the row says idle.
                UPDATE queue.listeners SET idle = false, updated_at = now()
                 WHERE daemon_id = $4 AND idle
            ), h AS (
                SELECT id FROM queue.jobs
                 WHERE
            """ + waitingHigh + """
             AND run_at <= now()
                 ORDER BY run_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED
            ), n AS (
                SELECT id FROM queue.jobs
                 WHERE
            """ + waitingNormal + """
             AND run_at <= now()
                 ORDER BY run_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED
            ), l AS (
                SELECT id FROM queue.jobs
                 WHERE
            """ + waitingLow + """
             AND run_at <= now()
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
                      (least(greatest(extract(epoch FROM j.run_at), -9e12), 9e12) * 1000000)::bigint AS dispatch_order
            """
    }

    /// Seconds until the next job becomes due (NULL when none is waiting).
    struct SecondsUntilNextDue: PostgresStatement {
        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Double? {
            try row.decode("seconds", as: Double?.self)
        }

        static let sql: SQL = "SELECT " + secondsUntilNextDue + " AS seconds"
    }

    // MARK: Workers

    /// Claims promoted jobs for a daemon: one attempt each, leased under `token`.
    /// Payloads longer than `maxPayloadBytes` come back NULL. The ledger gets nothing
    /// here: while the attempt runs the job row shows it (state, leased_by,
    /// started_at, attempt), and the statement that ends it writes its one row.
    struct Claim: PostgresStatement {
        var ids: [JobID]
        var daemon: String
        var leaseSeconds: Double
        var maxPayloadBytes: Int
        var token: Int64

        struct Row: Sendable {
            var id: JobID
            var kind: String
            /// nil when longer than `maxPayloadBytes`.
            var payload: String?
            var priority: JobPriority
            var attempt: Int
            var maxAttempts: Int
            var queueWaitSeconds: Double?
            var rescues: Int
            var payloadBytes: Int
        }

        var bindings: PostgresBindings {
            [.intArray(ids), .text(daemon), .double(leaseSeconds), .int(maxPayloadBytes), .int(token)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                id: try row.decode("id"), kind: try row.decode("kind"), payload: try row.decode("payload", as: String?.self),
                priority: try row.decode("priority"), attempt: try row.decode("attempt"),
                maxAttempts: try row.decode("max_attempts"),
                queueWaitSeconds: try row.decode("queue_wait_seconds", as: Double?.self),
                rescues: try row.decode("rescues"), payloadBytes: try row.decode("payload_bytes"))
        }

        static let sql: SQL = """
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
            )
            SELECT c.id, c.kind,
                   CASE WHEN octet_length(t.text) <= $4::int THEN t.text END AS payload,
                   c.priority, c.attempt, c.max_attempts,
                   -- Epoch differences, not now() - run_at: that interval overflows for
                   -- an infinite run_at. Clamped to 0…10^12 s (the Swift side clamps too).
                   least(greatest(0, extract(epoch FROM now()) - extract(epoch FROM c.run_at)), 1e12)::float8
                       AS queue_wait_seconds,
                   c.rescues, octet_length(t.text) AS payload_bytes
              FROM claimed c, LATERAL (SELECT c.payload::text AS text) t
            """
    }

    /// An attempt's fence as a statement returns it: columns `id`, `attempt`, `token`.
    static func fence(_ row: PostgresRow) throws -> AttemptFence {
        AttemptFence(id: try row.decode("id"), attempt: try row.decode("attempt"), token: try row.decode("token"))
    }

    /// Applies a batch of completions (`CompletionJSON`), each fenced by
    /// `(id, attempt, token)` and `state = 'running'`; returns the fences applied.
    /// Each applied one writes the attempt's single ledger row: its end, with what its
    /// start was (the daemon that held the lease, the job row's `started_at`).
    struct Complete: PostgresStatement {
        /// `CompletionJSON.encode` of the batch.
        var completionsJSON: String
        /// The daemon whose attempts these are (every fence was leased to it); nil
        /// leaves the ledger rows' daemon empty.
        var daemon: String?

        var bindings: PostgresBindings { [.jsonb(completionsJSON), .text(daemon)] }

        static func decode(_ row: PostgresRow) throws -> AttemptFence { try fence(row) }

        static let sql: SQL = """
            WITH input AS (
                SELECT * FROM jsonb_to_recordset($1::jsonb)
                    AS i(id bigint, attempt int, token bigint, outcome text, delay float8, code text, error text, run float8,
                         wait float8)
            ), done AS (
                UPDATE queue.jobs j
                   -- An operator cancelled the job while this attempt ran (migration
                   -- 0021): it ends here, unless the attempt completed it.
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
                RETURNING j.id, i.attempt AS fenced_attempt, i.token AS fenced_token, i.outcome, i.code, i.run, i.wait,
                          j.kind, j.payload,
                          j.priority, j.attempt, j.last_error, j.errors, j.state AS new_state,
                          -- Not changed by this UPDATE, so still the attempt's start.
                          j.started_at
            ), ledger AS (
                -- The attempt's one ledger row, only for completions the fence accepted.
                INSERT INTO queue.attempts (job_id, attempt, event, daemon, started_at, outcome, error_code, run_seconds,
                                            kind, queue_wait_seconds)
                SELECT id, fenced_attempt, 'end', $2::text, started_at, outcome, code, run,
                       kind, least(greatest(coalesce(wait, 0), 0), 1e12) FROM done
            ), dead AS (
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error, errors)
                SELECT id, kind, payload, priority, attempt, coalesce(code, 'failed'), last_error, errors
                  FROM done WHERE outcome = 'dead' AND new_state = 'dead'
            """ + QueueDeadLettersStatements.upsertOnConflict + """
            )
            SELECT id, fenced_attempt AS attempt, fenced_token AS token FROM done
            """
    }

    /// Extends the leases of running attempts; returns the fences still held. Found
    /// through the primary key; the token stands in for `state = 'running'` (see
    /// `QueueStore.extendLeases`).
    struct ExtendLeases: PostgresStatement {
        var fences: ArraySlice<AttemptFence>
        var leaseSeconds: Double

        var bindings: PostgresBindings {
            [.intArray(fences.map(\.id)), .intArray(fences.map(\.attempt)), .double(leaseSeconds),
             .intArray(fences.map(\.token))]
        }

        static func decode(_ row: PostgresRow) throws -> AttemptFence { try fence(row) }

        static let sql: SQL = """
            UPDATE queue.jobs j
               SET lease_expires_at = now() + make_interval(secs => $3::float8)
              FROM unnest($1::bigint[], $2::int[], $4::bigint[]) AS f(id, attempt, token)
             WHERE j.id = ANY ($1::bigint[])  -- probe the primary key, whatever the table's size
               AND j.id = f.id AND j.attempt = f.attempt AND j.lease_token = f.token
            RETURNING j.id, j.attempt, j.lease_token AS token
            """
    }

    // MARK: Maintenance (rescuer, reconciler)

    /// One rescuer pass over expired leases (see `QueueStore.rescueExpiredLeases`).
    struct Rescue: PostgresStatement {
        var limit: Int
        var maxRescues: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(limit), .int(maxRescues)] }

        static func decode(_ row: PostgresRow) throws -> RescuedJob {
            RescuedJob(
                id: try row.decode("id"), kind: try row.decode("kind"), state: try row.decode("state"),
                attempt: try row.decode("attempt"), rescues: try row.decode("rescues"),
                previousOwner: try row.decode("leased_by", as: String?.self) ?? "")
        }

        static let sql: SQL = """
            WITH expired AS (
                -- Rescues below max(1, max_rescues - 1) always count; from there on the
                -- job is a suspect that runs alone, and a rescue counts only when the lost
                -- attempt ran alone: a suspect that merely waited for its turn cannot be
                -- told apart from a bystander of whatever killed its daemon.
                SELECT j.id, j.leased_by, j.run_at AS due_at,
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
                       -- A job cancelled while this attempt ran ends here (migration 0021).
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
                          j.last_error, j.errors, j.started_at, e.due_at,
                          CASE WHEN j.rescues >= $2::int THEN 'poison' ELSE 'max_attempts' END AS reason
            ), dead AS (
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error, errors)
                SELECT id, kind, payload, priority, attempt, reason, last_error, errors FROM moved WHERE state = 'dead'
            """ + QueueDeadLettersStatements.upsertOnConflict + """
            ), ledger AS (
                -- The lost attempt's one ledger row, naming the daemon that lost it.
                INSERT INTO queue.attempts (job_id, attempt, event, daemon, started_at, outcome, error_code,
                                            kind, queue_wait_seconds)
                SELECT id, attempt, 'end', leased_by, started_at, 'lease_expired',
                       CASE WHEN state = 'dead' THEN reason ELSE 'lease_expired' END,
                       -- Epoch differences, clamped as the claim's queue wait is; unknown
                       -- (NULL) when the row holds no start.
                       kind, CASE WHEN started_at IS NOT NULL THEN least(greatest(0,
                           extract(epoch FROM started_at) - extract(epoch FROM due_at)), 1e12)::float8 END
                  FROM moved
            )
            SELECT id, kind, state, attempt, rescues, leased_by FROM moved
            """
    }

    /// Jobs `promoted` for longer than `olderThanSeconds` without a claim go back to `available`.
    struct ReclaimStalePromotions: PostgresStatement {
        var olderThanSeconds: Double
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.double(olderThanSeconds), .int(limit)] }

        static let sql: SQL = """
            WITH stale AS (
                SELECT id FROM queue.jobs
                 WHERE state = 'promoted' AND promoted_at < now() - make_interval(secs => $1::float8)
                 ORDER BY promoted_at LIMIT $2::int FOR UPDATE SKIP LOCKED
            )
            UPDATE queue.jobs j SET state = 'available', promoted_at = NULL
              FROM stale s WHERE j.id = s.id
            """
    }

    /// Hands promotions back (the push to Redis failed after the commit).
    struct Unpromote: PostgresStatement {
        var ids: [JobID]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.intArray(ids)] }

        static let sql: SQL = """
            UPDATE queue.jobs SET state = 'available', promoted_at = NULL
             WHERE id = ANY($1::bigint[]) AND state = 'promoted'
            """
    }

    /// Every promotion back to `available` (Redis lost its data).
    struct ResetAllPromotions: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        // `promoted_at IS NOT NULL`: through jobs_promoted_idx, not a scan of the table.
        static let sql: SQL = """
            UPDATE queue.jobs SET state = 'available', promoted_at = NULL
             WHERE promoted_at IS NOT NULL AND state = 'promoted'
            """
    }

    // MARK: Status

    /// Due jobs not yet promoted, dead letters (partial indexes: cheap at any size),
    /// and paused lanes and kinds (a handful of rows).
    struct BacklogSummary: PostgresStatement {
        struct Row: Sendable {
            var due: Int
            var deadLetters: Int
            var paused: Int
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(due: try row.decode("due"), deadLetters: try row.decode("dead_letters"), paused: try row.decode("paused"))
        }

        static let sql: SQL = """
            SELECT (SELECT count(*) FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND run_at <= now()) AS due,
                   (SELECT count(*) FROM queue.dead_letters) AS dead_letters,
                   (SELECT count(*) FROM queue.pauses) AS paused
            """
    }

    /// Unfinished jobs by state and priority, waiting ones not yet due as `scheduled`.
    struct BacklogByState: PostgresStatement {
        struct Row: Sendable {
            var state: String
            var priority: String
            var count: Int
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(state: try row.decode("state"), priority: try row.decode("priority"), count: try row.decode("count"))
        }

        static let sql: SQL = """
            SELECT CASE WHEN run_at > now() THEN 'scheduled' ELSE state::text END AS state,
                   priority::text AS priority, count(*) AS count
              FROM queue.jobs WHERE state IN ('available', 'retryable') GROUP BY 1, 2
            UNION ALL
            SELECT state::text, priority::text, count(*) FROM queue.jobs
             WHERE promoted_at IS NOT NULL AND state = 'promoted' GROUP BY 1, 2
            UNION ALL
            SELECT state::text, priority::text, count(*) FROM queue.jobs
             WHERE lease_expires_at IS NOT NULL AND state = 'running' GROUP BY 1, 2
            """
    }
}
