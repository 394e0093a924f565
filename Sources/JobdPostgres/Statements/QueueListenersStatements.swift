import JobdCore

/// The wake-up protocol's statements on `queue.listeners` and its advisory lock.
///
/// The lock pair is (1785684580, 1): 'jobd' in ASCII and 1 for the wake-up lock, as
/// in Migrations/0010_queue_wakeup.sql (literal in the SQL, so every text is constant).
enum QueueListenersStatements {
    /// Upserts the daemon's row idle, tries the wake-up lock without waiting, and
    /// reads the seconds until the next due job: one statement, committed without
    /// waiting for the flush (the table is unlogged).
    struct AnnounceIdle: PostgresStatement {
        var daemonID: String
        /// The promoter's pushed ids per lane, left out of the next due time.
        var excludeHigh: [JobID] = []
        var excludeNormal: [JobID] = []
        var excludeLow: [JobID] = []

        /// Prepared once per session: it runs at every idle transition of the
        /// promoter, on the promoter's own connection (see `SecondsUntilNextDue`).
        static let planning = PostgresPlanning.perSession

        struct Row: Sendable {
            var locked: Bool
            var secondsUntilNextDue: Double?
        }

        var bindings: PostgresBindings {
            [.text(daemonID), .int8Array(excludeHigh), .int8Array(excludeNormal), .int8Array(excludeLow)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(locked: try row.decode("locked"),
                secondsUntilNextDue: try row.decode("seconds_until_next_due", as: Double?.self))
        }

        static let sql: SQL = """
            WITH idle AS (
                INSERT INTO queue.listeners AS l (daemon_id, idle) VALUES ($1, true)
                ON CONFLICT (daemon_id) DO UPDATE SET idle = true, updated_at = now()
            )
            SELECT pg_try_advisory_xact_lock(1785684580, 1) AS locked,
            """ + QueueJobsStatements.secondsUntilNextDue(high: "$2::bigint[]", normal: "$3::bigint[]", low: "$4::bigint[]") + """
             AS seconds_until_next_due
             WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
            """
    }

    /// Is the wake-up lock free now (every inserter that read "busy" committed)?
    struct TryWakeLock: PostgresStatement {
        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Bool { try row.decode("locked") }

        static let sql: SQL = "SELECT pg_try_advisory_xact_lock(1785684580, 1) AS locked"
    }

    struct Remove: PostgresStatement {
        var daemonID: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(daemonID)] }

        static let sql: SQL = "DELETE FROM queue.listeners WHERE daemon_id = $1"
    }

    /// Deletes the rows of daemons gone for `staleAfterSeconds` (see `QueueStore.reapListeners`).
    struct Reap: PostgresStatement {
        var staleAfterSeconds: Double

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.double(staleAfterSeconds)] }

        static let sql: SQL = """
            DELETE FROM queue.listeners l
             WHERE l.updated_at < now() - make_interval(secs => $1::float8)
               AND NOT EXISTS (SELECT 1 FROM queue.daemons d
                                WHERE d.id = l.daemon_id
                                  AND d.heartbeat_at >= now() - make_interval(secs => $1::float8))
            """
    }
}
