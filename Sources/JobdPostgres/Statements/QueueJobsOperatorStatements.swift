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

    /// The job search (see `QueueAdmin.jobs`).
    struct Search: PostgresStatement {
        var filter: QueueAdmin.JobFilter

        // One text for every filter: planned per execution, so the server plans it with
        // the values bound, and each `$n IS NULL OR …` of an absent filter folds away,
        // leaving only the given conditions for the planner to serve by index.
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.int(filter.id), .text(filter.state?.rawValue), .text(filter.kind), .text(filter.priority?.rawValue),
             .text(filter.uniqueKey), .jsonb(filter.contains), .int(filter.beforeID),
             .int(max(1, min(filter.limit, 500)))]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            SELECT id, kind, state, priority, attempt, max_attempts, run_at::text AS run_at,
                   created_at::text AS created_at, unique_key, left(last_error, 300) AS last_error,
                   cancel_requested_at IS NOT NULL AS cancel_requested
              FROM queue.jobs
             WHERE ($1::bigint IS NULL OR id = $1::bigint)
               AND ($2::text IS NULL OR state = $2::text)
               AND ($2::text IS DISTINCT FROM 'running' OR lease_expires_at IS NOT NULL)
               AND ($3::text IS NULL OR kind = $3::text)
               AND ($4::text IS NULL OR priority = $4::text)
               AND ($5::text IS NULL OR unique_key = $5::text)
               AND ($6::jsonb IS NULL OR payload @> $6::jsonb)
               AND ($7::bigint IS NULL OR id < $7::bigint)
             ORDER BY id DESC
             LIMIT $8::int
            """
    }

    /// One id window of a payload search (see `QueueAdmin.payloadJobs`): the filter's
    /// jobs below `filter.beforeID` and at or above `fromID` (nil: everything below).
    ///
    /// Sorted by `id + 0`, which no index provides, so the planner cannot walk the
    /// primary key down the window checking every row's payload. It plans each window
    /// with its bounds: up to about 50,000 ids at 10M jobs as a BitmapAnd of
    /// `jobs_payload_path_idx` and `jobs_pkey` (only the heap pages of the window's
    /// matches are read, to recheck the lossy `jsonb_path_ops` entries), and from about
    /// 200,000 ids, since the payload index's estimate (about one row in 10,000 for any
    /// value) is often far below the truth, by the payload index alone filtered by id:
    /// every match read, as `Search` reads them (cheap for a rare value, the old cost
    /// for a common one). Bounds written as sub-selects force the BitmapAnd at every
    /// width, but were slower in bulk-retry runs on the 10M load (docs/performance.md,
    /// "Payload search in id windows").
    struct SearchWindow: PostgresStatement {
        var filter: QueueAdmin.JobFilter
        var fromID: JobID?

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.int(filter.id), .text(filter.state?.rawValue), .text(filter.kind), .text(filter.priority?.rawValue),
             .text(filter.uniqueKey), .jsonb(filter.contains), .int(filter.beforeID),
             .int(max(1, min(filter.limit, 500))), .int(fromID)]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            SELECT id, kind, state, priority, attempt, max_attempts, run_at::text AS run_at,
                   created_at::text AS created_at, unique_key, left(last_error, 300) AS last_error,
                   cancel_requested_at IS NOT NULL AS cancel_requested
              FROM queue.jobs
             WHERE ($1::bigint IS NULL OR id = $1::bigint)
               AND ($2::text IS NULL OR state = $2::text)
               AND ($2::text IS DISTINCT FROM 'running' OR lease_expires_at IS NOT NULL)
               AND ($3::text IS NULL OR kind = $3::text)
               AND ($4::text IS NULL OR priority = $4::text)
               AND ($5::text IS NULL OR unique_key = $5::text)
               AND ($6::jsonb IS NULL OR payload @> $6::jsonb)
               AND ($7::bigint IS NULL OR id < $7::bigint)
               AND ($9::bigint IS NULL OR id >= $9::bigint)
             ORDER BY id + 0 DESC
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

    /// The job search's completed jobs, from the ledger: a completed attempt's `end`
    /// row carries the job (migration `…_queue_completion_leaves_jobs`). The filters of
    /// `Search` but the state. Planned with the values bound, so only the given
    /// conditions remain and each is served by an index on those rows alone
    /// (migration `…_queue_ledger_search`): a unique key by `attempts_completed_key_idx`,
    /// a payload by the GIN `attempts_completed_payload_idx`, an id by
    /// `attempts_job_idx`. With none of them (a kind, a priority, or nothing)
    /// `SearchCompletedNewest` is used instead. A filter that matches rarely or never
    /// therefore reads its few matches, never the whole ledger.
    struct SearchCompleted: PostgresStatement {
        var filter: QueueAdmin.JobFilter

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.int(filter.id), .text(filter.kind), .text(filter.priority?.rawValue),
             .text(filter.uniqueKey), .jsonb(filter.contains), .int(filter.beforeID),
             .int(max(1, min(filter.limit, 500)))]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            SELECT a.job_id AS id, a.kind, 'completed' AS state, a.priority, a.attempt, a.max_attempts,
                   a.run_at::text AS run_at, a.enqueued_at::text AS created_at, a.unique_key,
                   left(a.last_error, 300) AS last_error, false AS cancel_requested
              FROM queue.attempts a
             WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
               AND ($1::bigint IS NULL OR a.job_id = $1::bigint)
               AND ($2::text IS NULL OR a.kind = $2::text)
               AND ($3::text IS NULL OR a.priority = $3::text)
               AND ($4::text IS NULL OR a.unique_key = $4::text)
               AND ($5::jsonb IS NULL OR a.payload @> $5::jsonb)
               AND ($6::bigint IS NULL OR a.job_id < $6::bigint)
             ORDER BY a.job_id DESC
             LIMIT $7::int
            """
    }

    /// One id window of a payload search in the ledger, as `SearchWindow` is in
    /// queue.jobs: the window's matches from `attempts_completed_payload_idx` and
    /// `attempts_job_idx`'s range, planned with its bounds the same way.
    struct SearchCompletedWindow: PostgresStatement {
        var filter: QueueAdmin.JobFilter
        var fromID: JobID?

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.int(filter.id), .text(filter.kind), .text(filter.priority?.rawValue),
             .text(filter.uniqueKey), .jsonb(filter.contains), .int(filter.beforeID),
             .int(max(1, min(filter.limit, 500))), .int(fromID)]
        }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.JobSummary { try summary(row) }

        static let sql: SQL = """
            SELECT a.job_id AS id, a.kind, 'completed' AS state, a.priority, a.attempt, a.max_attempts,
                   a.run_at::text AS run_at, a.enqueued_at::text AS created_at, a.unique_key,
                   left(a.last_error, 300) AS last_error, false AS cancel_requested
              FROM queue.attempts a
             WHERE a.enqueued_at IS NOT NULL AND a.event = 'end' AND a.outcome = 'completed'
               AND ($1::bigint IS NULL OR a.job_id = $1::bigint)
               AND ($2::text IS NULL OR a.kind = $2::text)
               AND ($3::text IS NULL OR a.priority = $3::text)
               AND ($4::text IS NULL OR a.unique_key = $4::text)
               AND ($5::jsonb IS NULL OR a.payload @> $5::jsonb)
               AND ($6::bigint IS NULL OR a.job_id < $6::bigint)
               AND ($8::bigint IS NULL OR a.job_id >= $8::bigint)
             ORDER BY a.job_id + 0 DESC
             LIMIT $7::int
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
