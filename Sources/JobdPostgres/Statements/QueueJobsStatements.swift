import JobdCore

/// The statements on `queue.jobs` that move jobs through the dispatch protocol:
/// the promoter's read, claim, complete, extend leases, rescue, and the status
/// line's reads. Each writes to its neighbours (ledger rows, dead letters,
/// the listener's busy mark) in the same statement, so a batch stays one round trip.
enum QueueJobsStatements {
    // MARK: Shared fragments

    // A lane's waiting jobs that are not paused (`queue.pauses`, migration 0021): the
    // promoter pushes these to Redis once due (ids pushed before a pause began are
    // still claimed and run: the claim does not read the pauses), and the due-time reads take the minimum run_at
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
    /// when none waits; negative when one is overdue), leaving out the ids in the
    /// bigint[] parameters `high`, `normal`, `low` (the promoter's pushed ids, whose
    /// jobs wait in Redis and are not its to find again). One min() per priority, so
    /// each reads jobs_due_idx (priority, run_at, id) from its start, passing over only
    /// the left-out ids, instead of a scan of every waiting job. The ids are left out
    /// through `NOT IN (SELECT unnest(…))`, as in `Promote`: a hashed subplan in a
    /// generic plan too, so the statements that use this may be prepared once per
    /// session. The arrays never hold NULL, so NOT IN means "not among them".
    static func secondsUntilNextDue(high: SQL, normal: SQL, low: SQL) -> SQL {
        """
        (extract(epoch FROM least(
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingHigh + " AND id NOT IN (SELECT unnest(" + high + "))" + """
        ),
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingNormal + " AND id NOT IN (SELECT unnest(" + normal + "))" + """
        ),
            (SELECT min(run_at) FROM queue.jobs WHERE
        """ + waitingLow + " AND id NOT IN (SELECT unnest(" + low + "))" + """
        )
        )) - extract(epoch FROM now()))::float8
        """
    }

    // MARK: Promoter

    /// The promoter's pass, read-only on `queue.jobs`: up to `high`/`normal`/`low` due,
    /// unpaused waiting jobs of each lane, oldest first, leaving out the ids the
    /// promoter still holds in that lane's Redis list (`exclude…`). Only the elected
    /// promoter reads jobs: the statement first makes sure this session holds the
    /// promoter lock (a session-level advisory lock, `(1785684580, 2)`), taking it if
    /// it is free. The first row always comes, with `elected` (this session holds the
    /// lock) and `newly` (it did not before this statement: a new session, so whatever
    /// the caller remembers of its pushes is to be forgotten); job columns are NULL in
    /// it when no job is due. Sets `busyDaemon`'s listener row busy when elected.
    struct Promote: PostgresStatement {
        var high: Int
        var normal: Int
        var low: Int
        var excludeHigh: [JobID]
        var excludeNormal: [JobID]
        var excludeLow: [JobID]
        var busyDaemon: String?
        /// Each lane is read after this key (`DueKey.start`: from its start).
        var startHigh = DueKey.start
        var startNormal = DueKey.start
        var startLow = DueKey.start

        /// Prepared once per session (the default planning): it runs on every promoter
        /// pass, and planning it each time cost about 0.5 ms, half the statement on an
        /// idle queue. The pushed-id lists are left out through `NOT IN (SELECT
        /// unnest(…))`, a hashed subplan in the generic plan too, so a row passed over
        /// is one hash probe however long the lists are (`<> ALL` of a bound array is
        /// hashed only when the array is a constant, i.e. planned per execution).
        /// Neither list holds NULL, so NOT IN means "not among them". A lane read
        /// after a key (`PushedIDs.readStart`) has that key in its index condition, a
        /// row comparison on the index's (run_at, id): the scan begins there.
        static let planning = PostgresPlanning.perSession

        struct Row: Sendable {
            var elected: Bool
            var newly: Bool
            var id: JobID?
            var priority: JobPriority?
            /// run_at in microseconds: the dispatch order within a lane.
            var dispatchOrder: Int64?
        }

        var bindings: PostgresBindings {
            [.int(high), .int(normal), .int(low), .text(busyDaemon),
             .int8Array(excludeHigh), .int8Array(excludeNormal), .int8Array(excludeLow),
             .int(Int(startHigh.runAtMicros)), .int(Int(startHigh.id)), .int(Int(startNormal.runAtMicros)),
             .int(Int(startNormal.id)), .int(Int(startLow.runAtMicros)), .int(Int(startLow.id))]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(elected: try row.decode("elected"), newly: try row.decode("newly"),
                id: try row.decode("id", as: JobID?.self), priority: try row.decode("priority", as: JobPriority?.self),
                dispatchOrder: try row.decode("dispatch_order", as: Int64?.self))
        }

        static let sql: SQL = """
            WITH held AS MATERIALIZED (
                -- The session setting is set with the lock and vanishes with the session
                -- (and so with the lock): no scan of pg_locks.
                SELECT coalesce(current_setting('jobd.promoter', true), '') = 'elected' AS held
            ), leader AS MATERIALIZED (
                SELECT CASE WHEN held THEN true
                            WHEN pg_try_advisory_lock(1785684580, 2)
                            THEN set_config('jobd.promoter', 'elected', false) IS NOT NULL
                            ELSE false END AS elected,
                       NOT held AS newly
                  FROM held
            ), busy AS (
                -- The wake-up protocol's busy mark, in the statement the promoter runs
                -- anyway: no extra round trip. Writes only when the row says idle.
                UPDATE queue.listeners SET idle = false, updated_at = now()
                 WHERE daemon_id = $4 AND idle AND (SELECT elected FROM leader)
            ), h AS (
                SELECT id, priority, run_at FROM queue.jobs
                 WHERE
            """ + waitingHigh + """
             AND run_at <= now() AND id NOT IN (SELECT unnest($5::bigint[])) AND (SELECT elected FROM leader)
                   AND (run_at, id) > (timestamptz '1970-01-01 00:00:00+00' + $8::bigint * interval '1 microsecond', $9::bigint)
                 ORDER BY run_at, id LIMIT $1::int
            ), n AS (
                SELECT id, priority, run_at FROM queue.jobs
                 WHERE
            """ + waitingNormal + """
             AND run_at <= now() AND id NOT IN (SELECT unnest($6::bigint[])) AND (SELECT elected FROM leader)
                   AND (run_at, id) > (timestamptz '1970-01-01 00:00:00+00' + $10::bigint * interval '1 microsecond', $11::bigint)
                 ORDER BY run_at, id LIMIT $2::int
            ), l AS (
                SELECT id, priority, run_at FROM queue.jobs
                 WHERE
            """ + waitingLow + """
             AND run_at <= now() AND id NOT IN (SELECT unnest($7::bigint[])) AND (SELECT elected FROM leader)
                   AND (run_at, id) > (timestamptz '1970-01-01 00:00:00+00' + $12::bigint * interval '1 microsecond', $13::bigint)
                 ORDER BY run_at, id LIMIT $3::int
            )
            -- The dispatch order: run_at in microseconds, clamped so that no run_at a row
            -- may hold (infinite, or older than the CHECK of 0013 allows) fails the cast.
            SELECT leader.elected, leader.newly, j.id, j.priority,
                   (least(greatest(extract(epoch FROM j.run_at), -9e12), 9e12) * 1000000)::bigint AS dispatch_order
              FROM leader
              LEFT JOIN (SELECT * FROM h UNION ALL SELECT * FROM n UNION ALL SELECT * FROM l) j ON true
             -- The busy mark commits without waiting for the flush (listeners is unlogged).
             WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
            """
    }

    /// Ends the session holding the promoter lock when it has been idle for longer than
    /// `staleSeconds`: an elected promoter runs a statement at least once per poll
    /// interval, so one silent that long belongs to a frozen or cut-off daemon whose
    /// connection the server still keeps (its lists would otherwise never be refilled).
    /// Returns how many sessions were ended (0 or 1).
    struct DeposeStalePromoter: PostgresStatement {
        var staleSeconds: Double

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.double(staleSeconds)] }

        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("ended") }

        static let sql: SQL = """
            SELECT count(*) FILTER (WHERE pg_terminate_backend(l.pid))::int AS ended
              FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid = 1785684580 AND l.objid = 2 AND l.objsubid = 2 AND l.granted
               AND l.pid <> pg_backend_pid()
               AND a.state = 'idle' AND a.state_change < now() - make_interval(secs => $1::float8)
            """
    }

    /// Seconds until the next job becomes due (NULL when none is waiting), leaving out
    /// the ids the promoter holds in each lane's list.
    struct SecondsUntilNextDue: PostgresStatement {
        var excludeHigh: [JobID] = []
        var excludeNormal: [JobID] = []
        var excludeLow: [JobID] = []

        /// Prepared once per session: it runs at every idle transition of the
        /// promoter, where planning it each time cost more than running it (the
        /// left-out ids are a hashed subplan in the generic plan, see
        /// `secondsUntilNextDue(high:normal:low:)`).
        static let planning = PostgresPlanning.perSession

        var bindings: PostgresBindings { [.int8Array(excludeHigh), .int8Array(excludeNormal), .int8Array(excludeLow)] }

        static func decode(_ row: PostgresRow) throws -> Double? {
            try row.decode("seconds", as: Double?.self)
        }

        static let sql: SQL = "SELECT " + secondsUntilNextDue(high: "$1::bigint[]", normal: "$2::bigint[]", low: "$3::bigint[]") + " AS seconds"
    }

    // MARK: Workers

    /// Claims popped jobs for a daemon, straight from `available` or `retryable` (and
    /// due): one attempt each, leased under `token`. Payloads longer than
    /// `maxPayloadBytes` come back NULL. The ledger gets nothing here: while the attempt
    /// runs the job row shows it (state, leased_by, started_at, attempt), and the
    /// statement that ends it writes its one row.
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
            [.int8Array(ids), .text(daemon), .double(leaseSeconds), .int(maxPayloadBytes), .int(token)]
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
                 -- Waiting and due: an id popped twice (Redis may hold it more than once
                 -- after a fault, a promoter's restart or a lane it forgot) is claimed once,
                 -- since the first claim moved the row to `running`; an id whose job was
                 -- cancelled, rescheduled or finished meanwhile is skipped. A lane or kind
                 -- paused after its ids were pushed does not stop them (see `waitingHigh`).
                 -- The state is tested in a CASE, which proves no partial index's
                 -- predicate: the primary key is the only index this statement can use
                 -- (see `QueueStore.claim`).
                 WHERE id = ANY($1::bigint[])
                   AND CASE state WHEN 'available' THEN true WHEN 'retryable' THEN true ELSE false END
                   AND run_at <= now()
                   -- Commit without waiting for the WAL flush (this transaction only). A
                   -- claim lost in a server crash leaves its jobs waiting to be pushed and
                   -- claimed again, under another lease token: the lost
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

    /// Claims due jobs straight from `queue.jobs`, without a Redis pop: up to `limit`
    /// waiting, unpaused jobs due for at least `dueForSeconds`, lane by lane in `lanes` order (the pool's priority
    /// order for this fetch), oldest first within a lane, each row locked with
    /// `SKIP LOCKED` so that concurrent direct claims take disjoint jobs and never wait
    /// on a popped-id claim. The same transition, lease token and result as `Claim`:
    /// a job the promoter also pushed is claimed once, since whichever claim comes
    /// second finds it `running`.
    struct ClaimDue: PostgresStatement {
        var lanes: [JobPriority]
        var daemon: String
        var leaseSeconds: Double
        var maxPayloadBytes: Int
        var token: Int64
        var limit: Int
        /// Only jobs due for at least this long (seconds).
        var dueForSeconds: Double

        typealias Row = Claim.Row

        var bindings: PostgresBindings {
            [.textArray(lanes.map { $0.rawValue as String? }), .text(daemon), .double(leaseSeconds), .int(maxPayloadBytes), .int(token),
             .int(limit), .double(dueForSeconds)]
        }

        static func decode(_ row: PostgresRow) throws -> Row { try Claim.decode(row) }

        static let sql: SQL = """
            WITH picked AS (
                -- A nested loop over the lanes in the given order: the outer LIMIT stops it
                -- once enough rows came, so a later lane is not even read (or locked) when
                -- an earlier one has enough. The pause filters are those of `waitingHigh`.
                SELECT j.id
                  FROM unnest($1::text[]) WITH ORDINALITY AS lane(name, ord)
                 CROSS JOIN LATERAL (
                    SELECT id FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND priority = lane.name
                       AND run_at <= now() - make_interval(secs => $7::float8)
                       AND NOT EXISTS (SELECT 1 FROM queue.pauses WHERE scope = 'priority' AND name = lane.name)
                       AND kind NOT IN (SELECT name FROM queue.pauses WHERE scope = 'kind')
                     ORDER BY run_at, id
                     LIMIT $6::int
                     FOR UPDATE SKIP LOCKED
                 ) j
                 LIMIT $6::int
            ), claimed AS (
                UPDATE queue.jobs
                   SET state = 'running', attempt = attempt + 1, leased_by = $2, lease_token = $5::bigint,
                       lease_expires_at = now() + make_interval(secs => $3::float8),
                       started_at = now()
                 -- Through the primary key, as `Claim`; the rows are locked, so the state
                 -- check only repeats what the pick saw.
                 WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND state IN ('available', 'retryable') AND run_at <= now()
                   -- Commits without waiting for the WAL flush, as `Claim` (same fence).
                   AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
                RETURNING id, kind, payload, priority, attempt, max_attempts, run_at, rescues
            )
            SELECT c.id, c.kind,
                   CASE WHEN octet_length(t.text) <= $4::int THEN t.text END AS payload,
                   c.priority, c.attempt, c.max_attempts,
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

    /// Applies a batch of completions (`CompletionColumns`), each fenced by
    /// `(id, attempt, token)` and `state = 'running'`; returns the fences applied.
    /// Through `queue.complete_batch` (the schema owner's function, migration
    /// `…_queue_completion_arrays`), which holds the statement: a completed attempt
    /// deletes its job row (`jobd_daemon` holds no DELETE on `queue.jobs`) and its one
    /// ledger row carries the job's columns, so the completed job is read from the
    /// ledger from then on; other outcomes update the row. Each applied one writes the
    /// attempt's single ledger row: its end, with what its start was (the daemon that
    /// held the lease, the job row's `started_at`). The batch travels as ten binary
    /// arrays, one per field, in the batch's order.
    struct Complete: PostgresStatement {
        var columns: CompletionColumns
        /// The daemon whose attempts these are (every fence was leased to it); nil
        /// leaves the ledger rows' daemon empty.
        var daemon: String?

        var bindings: PostgresBindings {
            [.int8Array(columns.ids), .int4Array(columns.attempts), .int8Array(columns.tokens),
             .textArrayBinary(columns.outcomes.map(Optional.some)), .float8Array(columns.delays),
             .textArrayBinary(columns.codes), .textArrayBinary(columns.errors), .float8Array(columns.runs),
             .float8Array(columns.waits), .boolArray(columns.places), .text(daemon)]
        }

        static func decode(_ row: PostgresRow) throws -> AttemptFence { try fence(row) }

        static let sql: SQL = """
            SELECT id, attempt, token
              FROM queue.complete_batch($1::bigint[], $2::int[], $3::bigint[], $4::text[], $5::float8[],
                                        $6::text[], $7::text[], $8::float8[], $9::float8[], $10::boolean[],
                                        $11::text)
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

    // MARK: Maintenance (rescuer)

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

    // MARK: Status

    /// A count of jobs in one state and priority: the row of `BacklogByState` and
    /// `CountByState` (columns `state`, `priority`, `count`).
    struct StateCount: Sendable {
        var state: String
        var priority: String
        var count: Int

        init(_ row: PostgresRow) throws {
            state = try row.decode("state")
            priority = try row.decode("priority")
            count = try row.decode("count")
        }
    }

    /// Due waiting jobs, dead letters (partial indexes: cheap at any size), and paused
    /// lanes and kinds (a handful of rows).
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
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> StateCount { try StateCount(row) }

        static let sql: SQL = """
            SELECT CASE WHEN run_at > now() THEN 'scheduled' ELSE state::text END AS state,
                   priority::text AS priority, count(*) AS count
              FROM queue.jobs WHERE state IN ('available', 'retryable') GROUP BY 1, 2
            UNION ALL
            SELECT state::text, priority::text, count(*) FROM queue.jobs
             WHERE lease_expires_at IS NOT NULL AND state = 'running' GROUP BY 1, 2
            """
    }
}
