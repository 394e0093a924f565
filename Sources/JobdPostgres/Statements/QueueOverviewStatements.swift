/// The web console's overview: counts over `queue.jobs`, `queue.dead_letters`,
/// `queue.daemons` and `queue.attempts`, each through an index or the planner's
/// statistics so a snapshot stays cheap on a large queue.
enum QueueOverviewStatements {
    /// The server's version (`server_version`), for the overview's health line.
    struct ServerVersion: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> String { try row.decode("version") }

        static let sql: SQL = "SELECT current_setting('server_version') AS version"
    }

    /// Unfinished jobs by state and priority. Waiting jobs (available, retryable) are
    /// counted per priority over at most `cap + 1` rows, the first due, through the
    /// promoter's partial index (jobs_due_idx), so a snapshot reads a bounded number of
    /// rows however long the backlog: a priority whose counts add up to more than `cap`
    /// has more waiting than that (its counts are lower bounds). Running jobs through
    /// the rescuer's index (at most the workers' slots).
    struct Unfinished: PostgresStatement {
        var cap: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(cap)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.UnfinishedCount {
            QueueAdmin.UnfinishedCount(
                state: try row.decode("state"), priority: try row.decode("priority"), count: try row.decode("count"))
        }

        static let sql: SQL = """
            SELECT w.state, p.priority, count(*) AS count
              FROM (VALUES ('high'), ('normal'), ('low')) AS p (priority)
              CROSS JOIN LATERAL (
                SELECT state FROM queue.jobs
                 WHERE state IN ('available', 'retryable') AND priority = p.priority
                 ORDER BY run_at LIMIT $1::int + 1) w
             GROUP BY 1, 2
            UNION ALL
            SELECT state, priority, count(*) AS count FROM queue.jobs
             WHERE lease_expires_at IS NOT NULL AND state = 'running' GROUP BY 1, 2
            """
    }

    /// One row: the database's clock, the finished-jobs estimate (statistics of
    /// `jobs_finished_idx` and of the ledger), dead letters, the age of the oldest due job (the first
    /// entry of each priority in jobs_due_idx, not a scan of the backlog), and the
    /// current minute since 1970.
    struct Summary: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.OverviewSummary {
            QueueAdmin.OverviewSummary(
                generatedAt: try row.decode("generated_at"), finishedEstimate: try row.decode("finished_estimate"),
                deadLetters: try row.decode("dead_letters"), oldestDueSeconds: try row.decode("oldest_due_seconds", as: Double?.self),
                currentMinute: try row.decode("current_minute"))
        }

        static let sql: SQL = """
            SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS generated_at,
                   -- Completed jobs are ledger rows: the ledger's size stands for them (an
                   -- upper bound: it holds every ended attempt, retries too).
                   coalesce((SELECT greatest(reltuples, 0)::bigint FROM pg_class
                              WHERE oid = 'queue.jobs_finished_idx'::regclass), 0)
                   + coalesce((SELECT greatest(reltuples, 0)::bigint FROM pg_class
                                WHERE oid = 'queue.attempts'::regclass), 0) AS finished_estimate,
                   (SELECT count(*) FROM queue.dead_letters) AS dead_letters,
                   (SELECT extract(epoch FROM now() - min(f.run_at))::float8
                      FROM (VALUES ('high'), ('normal'), ('low')) AS p (priority)
                      CROSS JOIN LATERAL (
                        SELECT run_at FROM queue.jobs
                         WHERE state IN ('available', 'retryable') AND priority = p.priority AND run_at <= now()
                         ORDER BY run_at LIMIT 1) f) AS oldest_due_seconds,
                   floor(extract(epoch FROM now()) / 60)::bigint AS current_minute
            """
    }

    /// Daemons whose heartbeat is under 30 seconds old, oldest start first.
    struct LiveDaemons: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.LiveDaemon {
            QueueAdmin.LiveDaemon(
                id: try row.decode("id"), hostname: try row.decode("hostname"), workers: try row.decode("workers"),
                version: try row.decode("version"), heartbeatAgeSeconds: try row.decode("heartbeat_age_seconds"))
        }

        static let sql: SQL = """
            SELECT id, hostname, workers, version, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds
              FROM queue.daemons WHERE heartbeat_at > now() - interval '30 seconds' ORDER BY started_at
            """
    }

    /// Ended attempts per minute since minute `fromMinute` (minutes since 1970):
    /// `retry`, `dead` and `lease_expired` count as failures.
    struct EndedAttemptsPerMinute: PostgresStatement {
        var fromMinute: Int64

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(fromMinute)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.MinuteOutcomes {
            QueueAdmin.MinuteOutcomes(
                minute: try row.decode("minute"), completed: try row.decode("completed"), failed: try row.decode("failed"))
        }

        static let sql: SQL = """
            SELECT floor(extract(epoch FROM at) / 60)::bigint AS minute,
                   count(*) FILTER (WHERE outcome = 'completed') AS completed,
                   count(*) FILTER (WHERE outcome IN ('retry', 'dead', 'lease_expired')) AS failed
              FROM queue.attempts
             WHERE event = 'end' AND at >= to_timestamp($1::bigint * 60)
             GROUP BY 1
            """
    }
}
