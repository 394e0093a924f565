import JobdCore

/// The operator's statements on `queue.jobs`: enqueue, status, cancel, retry and the
/// console's reads. One-shot commands, so planned per execution (no prepare round trip).
extension QueueJobsStatements {
    /// Through `queue.enqueue`: a duplicate unique key returns the holder's id.
    struct Enqueue: PostgresStatement {
        var request: QueueAdmin.EnqueueRequest

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(request.kind), .jsonb(request.payload), .text(request.priority.rawValue), .text(request.runAt),
             .seconds(request.delay), .int(request.maxAttempts), .text(request.uniqueKey)]
        }

        static func decode(_ row: PostgresRow) throws -> JobID? { try row.decode("id", as: JobID?.self) }

        static let sql: SQL = """
            SELECT queue.enqueue($1, $2::jsonb, $3,
                                 coalesce($4::timestamptz, now() + make_interval(secs => $5::float8)),
                                 coalesce($6::int, 20), $7) AS id
            """
    }

    /// Every job counted by state and priority.
    struct CountByState: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> StateCount { try StateCount(row) }

        // Completed jobs are counted in the ledger, where their rows are (rows completed
        // before the ledger carried them are still counted in queue.jobs: the caller adds
        // both). Like the count of queue.jobs, a scan: `jobd status` is run by hand.
        static let sql: SQL = """
            SELECT state, priority, count(*) AS count FROM queue.jobs GROUP BY state, priority
            UNION ALL
            SELECT 'completed', priority, count(*) FROM queue.attempts
             WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed' GROUP BY priority
            """
    }

    /// How long the oldest due job has waited (NULL when none), and the dead letters.
    struct OldestDue: PostgresStatement {
        struct Row: Sendable {
            var oldestDueSeconds: Double?
            var deadLetters: Int
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(oldestDueSeconds: try row.decode("oldest_due_seconds", as: Double?.self),
                deadLetters: try row.decode("dead_letters"))
        }

        static let sql: SQL = """
            SELECT (SELECT extract(epoch FROM now() - min(run_at))::float8 FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND run_at <= now()) AS oldest_due_seconds,
                   (SELECT count(*) FROM queue.dead_letters) AS dead_letters
            """
    }

    /// Cancels waiting jobs and marks running ones; one row per id asked for.
    struct Cancel: PostgresStatement {
        var ids: [JobID]

        struct Row: Sendable {
            var id: JobID
            /// The state before the cancel; nil when no such job.
            var state: String?
            var moved: Bool
            var marked: Bool
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.intArray(ids)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), state: try row.decode("state", as: String?.self),
                moved: try row.decode("moved"), marked: try row.decode("marked"))
        }

        static let sql: SQL = """
            WITH moved AS (
                UPDATE queue.jobs
                   SET state = 'cancelled', finished_at = now(), promoted_at = NULL,
                       cancel_requested_at = now()
                 WHERE id = ANY($1::bigint[]) AND state IN ('available', 'retryable')
                RETURNING id
            ), marked AS (
                UPDATE queue.jobs
                   SET cancel_requested_at = coalesce(cancel_requested_at, now())
                 WHERE id = ANY($1::bigint[]) AND state = 'running'
                RETURNING id
            )
            -- A completed job's row is gone: its ledger row says it completed.
            SELECT i.id, coalesce(j.state, (SELECT 'completed' FROM queue.attempts a
                                               WHERE a.job_id = i.id AND a.enqueued_at IS NOT NULL
                                                 AND a.event = 'end' AND a.outcome = 'completed' LIMIT 1)) AS state,
                   m.id IS NOT NULL AS moved, k.id IS NOT NULL AS marked
              FROM unnest($1::bigint[]) AS i(id)
              LEFT JOIN queue.jobs j ON j.id = i.id
              LEFT JOIN moved m ON m.id = i.id
              LEFT JOIN marked k ON k.id = i.id
            """
    }

    /// A cancelled or waiting job runs again now; affects one row when it did.
    struct RunAgain: PostgresStatement {
        var id: JobID

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id)] }

        static let sql: SQL = """
            UPDATE queue.jobs
               SET state = 'available', run_at = now(),
                   attempt = CASE WHEN state = 'cancelled' THEN 0 ELSE attempt END,
                   rescues = CASE WHEN state = 'cancelled' THEN 0 ELSE rescues END,
                   finished_at = NULL, cancel_requested_at = NULL
             WHERE id = $1::bigint AND state IN ('cancelled', 'available', 'retryable')
            """
    }

    /// A summary row's columns, shared by `Search` and `Detail`.
    static func summary(_ row: PostgresRow) throws -> QueueAdmin.JobSummary {
        QueueAdmin.JobSummary(
            id: try row.decode("id"), kind: try row.decode("kind"), state: try row.decode("state"),
            priority: try row.decode("priority"), attempt: try row.decode("attempt"),
            maxAttempts: try row.decode("max_attempts"), runAt: try row.decode("run_at"),
            createdAt: try row.decode("created_at"), uniqueKey: try row.decode("unique_key", as: String?.self),
            lastError: try row.decode("last_error", as: String?.self),
            cancelRequested: try row.decode("cancel_requested"))
    }

    /// The parameters of every job search statement, `$1…$8`: id, state, kind,
    /// priority, unique key, payload containment, keyset bound (ids below it), page size
    /// (1…500). The filter fragments below and each search statement number them so.
    static func searchBindings(_ filter: QueueAdmin.JobFilter) -> PostgresBindings {
        [.int(filter.id), .text(filter.state?.rawValue), .text(filter.kind), .text(filter.priority?.rawValue),
         .text(filter.uniqueKey), .jsonb(filter.contains), .int(filter.beforeID),
         .int(max(1, min(filter.limit, 500)))]
    }

    /// The summary columns of a `queue.jobs` row, as `summary` decodes them.
    static let jobColumns: SQL = """
        SELECT id, kind, state, priority, attempt, max_attempts, run_at::text AS run_at,
               created_at::text AS created_at, unique_key, left(last_error, 300) AS last_error,
               cancel_requested_at IS NOT NULL AS cancel_requested
          FROM queue.jobs
        """

    /// The filter `$1…$6` of `searchBindings` on `queue.jobs` (no keyset bound: each
    /// statement writes its own). Each `$n IS NULL OR …` of an absent filter folds away
    /// when the statement is planned with its values (`PostgresPlanning.perExecution`),
    /// leaving only the given conditions for the planner to serve by index.
    ///
    /// The kind and payload indexes hold no running row (migration
    /// `…_queue_claim_writes_no_search_entry`, so that a claim writes no entry in them).
    /// A state other than `running` implies their predicate, and running rows are
    /// found through `jobs_lease_idx` (every running row holds a lease); a search of
    /// every state reads the two halves apart (`idleHalf`, `runningHalf`).
    static let jobConditions: SQL = """

         WHERE ($1::bigint IS NULL OR id = $1::bigint)
           AND ($2::text IS NULL OR state = $2::text)
           AND ($2::text IS DISTINCT FROM 'running' OR lease_expires_at IS NOT NULL)
           AND ($3::text IS NULL OR kind = $3::text)
           AND ($4::text IS NULL OR priority = $4::text)
           AND ($5::text IS NULL OR unique_key = $5::text)
           AND ($6::jsonb IS NULL OR payload @> $6::jsonb)
        """

    /// The rows not running, to add to `jobConditions`: the half that the kind and
    /// payload indexes (`WHERE state <> 'running'`) serve. `$2 IS DISTINCT FROM
    /// 'running'` folds to false when the search asks for running jobs, so this half is
    /// then never a walk of the whole table.
    static let idleHalf: SQL = """

           AND state <> 'running' AND $2::text IS DISTINCT FROM 'running'
        """

    /// The running rows, to add to `jobConditions`, through `jobs_lease_idx` (every
    /// running row holds a lease). For a search of any other state the condition on
    /// `$2` folds to false and the planner drops the half, so the other half alone is
    /// read in its index's order.
    static let runningHalf: SQL = """

           AND state = 'running' AND lease_expires_at IS NOT NULL AND ($2::text IS NULL OR $2::text = 'running')
        """

    /// The summary columns of a completed job's ledger row (`queue.attempts a`): a
    /// completed attempt's `end` row carries the job (migration
    /// `…_queue_completion_leaves_jobs`).
    static let ledgerColumns: SQL = """
        SELECT a.job_id AS id, a.kind, 'completed' AS state, a.priority, a.attempt, a.max_attempts,
               a.run_at::text AS run_at, a.enqueued_at::text AS created_at, a.unique_key,
               left(a.last_error, 300) AS last_error, false AS cancel_requested
          FROM queue.attempts a
        """

    /// `jobConditions` for the ledger's completed jobs: the same `$1…$6`, a state other
    /// than `completed` matching none. The completed-rows predicate is the one of the
    /// ledger's search indexes (migration `…_queue_ledger_search`), so each given
    /// condition is served by an index on those rows alone.
    static let ledgerConditions: SQL = """

         WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
           AND ($1::bigint IS NULL OR a.job_id = $1::bigint)
           AND ($2::text IS NULL OR $2::text = 'completed')
           AND ($3::text IS NULL OR a.kind = $3::text)
           AND ($4::text IS NULL OR a.priority = $4::text)
           AND ($5::text IS NULL OR a.unique_key = $5::text)
           AND ($6::jsonb IS NULL OR a.payload @> $6::jsonb)
        """

    /// The job search in `queue.jobs` (see `QueueAdmin.jobs`) for a filter with a
    /// state: `searchBindings`' filter, newest first, below the keyset bound. Without a
    /// state, `SearchEveryState`.
    struct Search: PostgresStatement {
        var filter: QueueAdmin.JobFilter

        // One text for every filter, planned with the values bound (see `jobConditions`).
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { searchBindings(filter) }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = jobColumns + jobConditions + """

               AND ($7::bigint IS NULL OR id < $7::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            """
    }

    /// `Search` for a filter without a state, in two halves: the jobs not running
    /// (where the kind and payload indexes serve) and the running ones (through
    /// `jobs_lease_idx`), each its newest page, merged.
    struct SearchEveryState: PostgresStatement {
        var filter: QueueAdmin.JobFilter

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { searchBindings(filter) }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = "SELECT * FROM ((" + jobColumns + jobConditions + idleHalf + """

               AND ($7::bigint IS NULL OR id < $7::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            ) UNION ALL (
            """ + jobColumns + jobConditions + runningHalf + """

               AND ($7::bigint IS NULL OR id < $7::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            )) j
            ORDER BY id DESC
            LIMIT $8::int
            """
    }

    /// One id window of a payload search (see `QueueAdmin.payloadJobs`) over
    /// `queue.jobs` and, when the state allows completed jobs, the ledger: the filter's
    /// jobs with ids in `[fromID, filter.beforeID)` (`fromID` nil: everything below),
    /// newest first, at most the page. The running jobs, which the payload index does
    /// not hold, are read through `jobs_lease_idx` (`runningHalf`) in every window.
    ///
    /// The planner is told how to read each table by how the bounds are written
    /// (`indexed`, which `payloadJobs` chooses). Bounds written as sub-selects are
    /// estimated at its default range selectivity (0.5 %) whatever the window, so it
    /// plans a `BitmapAnd` of the payload index and an id range, and reads the heap page
    /// of only the window's matches: for a value many jobs share. The range costs its
    /// index's entries: in queue.jobs `jobs_pkey`'s (about 1,000 pages for 100,000 ids),
    /// in the ledger `attempts_job_brin`'s (migration `…_queue_ledger_job_brin`), a few
    /// hundred kB at any width. Bounds written as values let it choose, and since the
    /// payload index's estimate (about one row in 10,000 for any value) is often far
    /// below the truth, from a window of about 50,000 ids at 10M jobs it filters the
    /// payload index's matches by id instead, reading the page of every match in the
    /// table: cheap for a rare value, 10,000 pages for one 10,000 jobs share. `CASE` on
    /// the bound `$10` folds away in planning, leaving one form. Sorted by `id + 0`,
    /// which no index provides, so that neither half walks its id index down the window
    /// checking every row's payload.
    struct SearchPayloadWindow: PostgresStatement {
        var filter: QueueAdmin.JobFilter
        var fromID: JobID?
        /// Each half as a `BitmapAnd` with its id index's range (only with a `fromID`).
        var indexed: Bool

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            var bindings = searchBindings(filter)
            bindings.append(.int(fromID))
            bindings.append(.bool(indexed))
            return bindings
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = "SELECT * FROM ((" + jobColumns + jobConditions + idleHalf + """

               AND CASE WHEN $10::boolean AND $9::bigint IS NOT NULL THEN id < (SELECT $7::bigint) AND id >= (SELECT $9::bigint)
                        ELSE id < $7::bigint AND ($9::bigint IS NULL OR id >= $9::bigint) END
             ORDER BY id + 0 DESC
             LIMIT $8::int
            ) UNION ALL (
            """ + jobColumns + jobConditions + runningHalf + """

               AND id < $7::bigint AND ($9::bigint IS NULL OR id >= $9::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            ) UNION ALL (
            """ + ledgerColumns + ledgerConditions + """

               AND CASE WHEN $10::boolean AND $9::bigint IS NOT NULL THEN a.job_id < (SELECT $7::bigint) AND a.job_id >= (SELECT $9::bigint)
                        ELSE a.job_id < $7::bigint AND ($9::bigint IS NULL OR a.job_id >= $9::bigint) END
             ORDER BY a.job_id + 0 DESC
             LIMIT $8::int
            )) w
            ORDER BY id DESC
            LIMIT $8::int
            """
    }

    /// The newest job id in queue.jobs or the ledger (NULL when both are empty): where a
    /// payload search's first id window ends. Two index endpoint reads.
    struct NewestID: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> JobID? { try row.decode("id", as: JobID?.self) }

        static let sql: SQL = """
            SELECT greatest((SELECT max(id) FROM queue.jobs), (SELECT max(job_id) FROM queue.attempts)) AS id
            """
    }

    /// Waiting jobs of one state (`available` or `retryable`), newest first, with no kind,
    /// id, unique key or payload filter: `Search` would walk the primary key down past
    /// every finished job newer than the backlog. This walks `jobs_waiting_kind_idx`
    /// instead: it finds the waiting kinds one index probe each (a loose index scan),
    /// takes each kind's newest `$4` ids from the index, merges them, and reads only the
    /// page's rows by primary key. Its cost grows with the number of distinct waiting
    /// kinds, not with the table. The ids come from the index alone (no priority filter:
    /// an index-only scan) because while many kinds wait (a bulk retry re-drives jobs of
    /// every kind) reading each kind's `$4` whole rows to keep `$4` of them in all was
    /// most of the statement's time.
    struct SearchWaiting: PostgresStatement {
        var state: JobState
        var priority: JobPriority?
        var beforeID: Int64?
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(state.rawValue), .text(priority?.rawValue), .int(beforeID), .int(max(1, min(limit, 500)))]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            WITH RECURSIVE kinds (kind) AS (
                (SELECT kind FROM queue.jobs WHERE state IN ('available', 'retryable') ORDER BY kind LIMIT 1)
                UNION ALL
                SELECT (SELECT j.kind FROM queue.jobs j
                         WHERE j.state IN ('available', 'retryable') AND j.kind > k.kind ORDER BY j.kind LIMIT 1)
                  FROM kinds k WHERE k.kind IS NOT NULL
            ), newest AS (
                SELECT n.id FROM kinds k CROSS JOIN LATERAL (
                    SELECT w.id FROM queue.jobs w
                     WHERE w.kind = k.kind AND w.state = $1::text AND w.state IN ('available', 'retryable')
                       AND ($2::text IS NULL OR w.priority = $2::text)
                       AND ($3::bigint IS NULL OR w.id < $3::bigint)
                     ORDER BY w.id DESC
                     LIMIT $4::int) n
                 WHERE k.kind IS NOT NULL
                 ORDER BY n.id DESC
                 LIMIT $4::int
            )
            SELECT j.id, j.kind, j.state, j.priority, j.attempt, j.max_attempts, j.run_at::text AS run_at,
                   j.created_at::text AS created_at, j.unique_key, left(j.last_error, 300) AS last_error,
                   j.cancel_requested_at IS NOT NULL AS cancel_requested
              FROM newest n JOIN queue.jobs j ON j.id = n.id
             WHERE j.state = $1::text
             ORDER BY j.id DESC
            """
    }

    /// One job with its dead letter's reason.
    struct Detail: PostgresStatement {
        var id: JobID

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobDetail {
            QueueAdmin.JobDetail(
                summary: try summary(row), payload: try row.decode("payload"), errors: try row.decode("errors"),
                rescues: try row.decode("rescues"), leasedBy: try row.decode("leased_by", as: String?.self),
                startedAt: try row.decode("started_at", as: String?.self),
                finishedAt: try row.decode("finished_at", as: String?.self),
                deadLetterReason: try row.decode("reason", as: String?.self))
        }

        static let sql: SQL = """
            SELECT j.id, j.kind, j.state, j.priority, j.attempt, j.max_attempts, j.run_at::text AS run_at,
                   j.created_at::text AS created_at, j.unique_key, j.last_error,
                   j.cancel_requested_at IS NOT NULL AS cancel_requested,
                   j.payload::text AS payload, j.errors::text AS errors, j.rescues, j.leased_by,
                   j.started_at::text AS started_at, j.finished_at::text AS finished_at, d.reason
              FROM queue.jobs j LEFT JOIN queue.dead_letters d ON d.job_id = j.id
             WHERE j.id = $1::bigint
            """
    }

    /// The job search's completed jobs, from the ledger (`ledgerConditions`), with
    /// `Search`'s bindings. With none of an id, a unique key or a payload (a kind, a
    /// priority, or nothing) `SearchCompletedNewest` is used instead, so a filter that
    /// matches rarely or never reads its few matches, never the whole ledger.
    struct SearchCompleted: PostgresStatement {
        var filter: QueueAdmin.JobFilter

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { searchBindings(filter) }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = ledgerColumns + ledgerConditions + """

               AND ($7::bigint IS NULL OR a.job_id < $7::bigint)
             ORDER BY a.job_id DESC
             LIMIT $8::int
            """
    }

    /// The newest completed jobs in the ledger with no id, unique key or payload filter
    /// (the completed state alone, or no state; maybe a kind, a priority and a keyset
    /// bound). `SearchCompleted` would walk `attempts_job_idx` down past every newer
    /// ledger row of another outcome (after a wave of failures, hundreds of thousands),
    /// or, for a priority, past every completed job of the other priorities. This reads
    /// `attempts_completed_kind_idx` (kind, priority, job_id) instead, as `SearchWaiting`
    /// reads the waiting jobs: the completed kinds one index probe each (a loose index
    /// scan; only `$1` when given), each (kind, priority)'s newest `$4` ids in index
    /// order from the index alone, merged, and only the page's rows read. Its cost grows
    /// with the number of distinct completed kinds (three index descents each, one with
    /// a priority), not with the ledger or its mix.
    struct SearchCompletedNewest: PostgresStatement {
        var kind: String?
        var priority: JobPriority?
        var beforeID: Int64?
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(kind), .text(priority?.rawValue), .int(beforeID), .int(max(1, min(limit, 500)))]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            WITH RECURSIVE kinds (kind) AS (
                (SELECT kind FROM queue.attempts
                  WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed' AND kind IS NOT NULL
                  ORDER BY kind LIMIT 1)
                UNION ALL
                SELECT (SELECT a.kind FROM queue.attempts a
                         WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
                           AND a.kind > k.kind
                         ORDER BY a.kind LIMIT 1)
                  FROM kinds k WHERE k.kind IS NOT NULL
            ), wanted (kind) AS (
                SELECT kind FROM kinds WHERE $1::text IS NULL AND kind IS NOT NULL
                UNION ALL
                SELECT $1::text WHERE $1::text IS NOT NULL
            ), newest (job_id) AS (
                -- Ids only, from the index alone; the rows of the page's few are read below.
                SELECT c.job_id
                  FROM wanted k
                 CROSS JOIN unnest(CASE WHEN $2::text IS NULL THEN ARRAY['high', 'normal', 'low']
                                        ELSE ARRAY[$2::text] END) AS p (priority)
                 CROSS JOIN LATERAL (
                    SELECT i.job_id FROM queue.attempts i
                     WHERE i.kind = k.kind AND i.priority = p.priority
                       AND i.enqueued_at IS NOT NULL AND i.event = 'end' AND i.outcome = 'completed'
                       AND ($3::bigint IS NULL OR i.job_id < $3::bigint)
                     ORDER BY i.job_id DESC
                     LIMIT $4::int) c
                 ORDER BY c.job_id DESC
                 LIMIT $4::int
            )
            SELECT a.job_id AS id, a.kind, 'completed' AS state, a.priority, a.attempt, a.max_attempts,
                   a.run_at::text AS run_at, a.enqueued_at::text AS created_at, a.unique_key,
                   left(a.last_error, 300) AS last_error, false AS cancel_requested
              FROM newest n
              JOIN queue.attempts a ON a.job_id = n.job_id
             WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
             ORDER BY a.job_id DESC
            """
    }

    /// One completed job from its ledger row (see `SearchCompleted`): what `Detail`
    /// shows of it. The lease is over (`leased_by` NULL), it finished when the row was
    /// written, and a completed job has no dead letter.
    struct DetailCompleted: PostgresStatement {
        var id: JobID

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobDetail { try Detail.decode(row) }

        static let sql: SQL = """
            SELECT a.job_id AS id, a.kind, 'completed' AS state, a.priority, a.attempt, a.max_attempts,
                   a.run_at::text AS run_at, a.enqueued_at::text AS created_at, a.unique_key, a.last_error,
                   false AS cancel_requested, a.payload::text AS payload,
                   coalesce(a.errors, '[]'::jsonb)::text AS errors, a.rescues, NULL::text AS leased_by,
                   a.started_at::text AS started_at, a.at::text AS finished_at, NULL::text AS reason
              FROM queue.attempts a
             WHERE a.job_id = $1::bigint AND a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
             LIMIT 1
            """
    }
}
