import JobdCore
import JobdPostgres

/// `oltp.outbox` and its relay into the queue (`queue.enqueue_relayed`): what
/// `OutboxRelay` runs.
enum CampaignOutboxStatements {
    /// The relay's session advisory lock on the OLTP database; `locked` is true when taken.
    struct TryLock: PostgresStatement {
        var key: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT pg_try_advisory_lock($1::bigint) AS locked"
        var bindings: PostgresBindings { [.int(key)] }
        static func decode(_ row: PostgresRow) throws -> Bool { try row.decode("locked") }
    }

    /// The oldest `$1` outbox rows. A delivery job's unique key is the row's key as
    /// written (`campaign:<id>:deliver:<batch>`: one unfinished job per batch, which
    /// the sweep relies on); any other job's is the row's key plus `#id`.
    struct Pending: PostgresStatement {
        struct Row: Sendable {
            var id: Int64
            var kind: String
            var payload: String
            var uniqueKey: String
            /// As the session prints a timestamptz; read back by `$4::timestamptz[]`.
            var runAt: String
        }

        var limit: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT id, kind, payload::text AS payload,
                   CASE WHEN kind = 'campaign.deliver' THEN unique_key ELSE unique_key || '#' || id END AS unique_key, run_at
              FROM oltp.outbox ORDER BY id LIMIT $1
            """
        var bindings: PostgresBindings { [.int(limit)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                id: try row.decode("id"), kind: try row.decode("kind"), payload: try row.decode("payload"),
                uniqueKey: try row.decode("unique_key"), runAt: try row.decode("run_at"))
        }
    }

    /// Into `queue.jobs`, through the owner's function (jobd_daemon may not INSERT
    /// into queue.jobs). Runs on the queue database.
    struct EnqueueRelayed: PostgresStatement {
        var rows: [Pending.Row]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT queue.enqueue_relayed($1::text[], $2::jsonb[], $3::text[], $4::timestamptz[])
            """
        var bindings: PostgresBindings {
            [
                .textArray(rows.map { Optional($0.kind) }), .textArray(rows.map { Optional($0.payload) }),
                .textArray(rows.map { Optional($0.uniqueKey) }), .textArray(rows.map { Optional($0.runAt) }),
            ]
        }
    }

    /// Relayed rows.
    struct Delete: PostgresStatement {
        var ids: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "DELETE FROM oltp.outbox WHERE id = ANY($1::bigint[])"
        var bindings: PostgresBindings { [.intArray(ids)] }
    }
}
