/// `queue.daemons`: the registry of running daemons and their heartbeats.
enum QueueDaemonsStatements {
    struct Register: PostgresStatement {
        var id: String
        var hostname: String
        var pid: Int32
        var version: String
        var workers: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(id), .text(hostname), .int(pid), .text(version), .int(workers)] }

        static let sql: SQL = """
            INSERT INTO queue.daemons (id, hostname, pid, version, workers)
            VALUES ($1, $2, $3::int, $4, $5::int)
            ON CONFLICT (id) DO UPDATE
               SET heartbeat_at = now(), workers = EXCLUDED.workers, version = EXCLUDED.version
            """
    }

    struct Heartbeat: PostgresStatement {
        var id: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(id)] }

        static let sql: SQL = "UPDATE queue.daemons SET heartbeat_at = now() WHERE id = $1"
    }

    struct Unregister: PostgresStatement {
        var id: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(id)] }

        static let sql: SQL = "DELETE FROM queue.daemons WHERE id = $1"
    }

    /// Forgets daemons silent for a day.
    struct PruneSilent: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static let sql: SQL = "DELETE FROM queue.daemons WHERE heartbeat_at < now() - interval '1 day'"
    }

    /// Daemons that heartbeated within `liveWithinSeconds`, oldest first.
    struct Live: PostgresStatement {
        var liveWithinSeconds: Double

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.double(liveWithinSeconds)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.Status.Daemon {
            QueueAdmin.Status.Daemon(
                id: try row.decode("id"), hostname: try row.decode("hostname"), pid: try row.decode("pid"),
                workers: try row.decode("workers"), version: try row.decode("version"),
                startedAt: try row.decode("started_at"),
                secondsSinceHeartbeat: try row.decode("seconds_since_heartbeat"))
        }

        static let sql: SQL = """
            SELECT id, hostname, pid, workers, version, started_at::text AS started_at,
                   extract(epoch FROM now() - heartbeat_at)::float8 AS seconds_since_heartbeat
              FROM queue.daemons
             WHERE heartbeat_at > now() - make_interval(secs => $1::float8)
             ORDER BY started_at
            """
    }
}
