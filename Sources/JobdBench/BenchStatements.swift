import JobdCore
import JobdPostgres

/// The bench's producers: its own INSERTs into `queue.jobs`, as any application's.
enum BenchStatements {
    /// `count` jobs of `kind` with an empty payload, in one statement; their ids.
    struct InsertJobs: PostgresStatement {
        var kind: String
        var count: Int

        // Plain, as an application's INSERT would be: the bench does not measure a
        // producer's prepared statements.
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(kind), .int(count)] }

        static func decode(_ row: PostgresRow) throws -> JobID { try row.decode("id") }

        static let sql: SQL = """
            INSERT INTO queue.jobs (kind, payload) SELECT $1, '{}' FROM generate_series(1, $2::int) RETURNING id
            """
    }

    /// A campaign's deliveries counted by outcome, and the span of its sends.
    struct CampaignDeliveryCounts: PostgresStatement {
        var campaign: Int64

        struct Row: Sendable {
            var sent: Int
            var suppressed: Int
            var rows: Int
            /// Seconds from the first send to the last (0 when fewer than two).
            var sendWindowSeconds: Double
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(campaign)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(sent: try row.decode("sent"), suppressed: try row.decode("suppressed"), rows: try row.decode("rows"),
                sendWindowSeconds: try row.decode("send_window"))
        }

        static let sql: SQL = """
            SELECT count(*) FILTER (WHERE state = 'sent') AS sent,
                   count(*) FILTER (WHERE state = 'suppressed') AS suppressed, count(*) AS rows,
                   coalesce(extract(epoch FROM max(sent_at) - min(sent_at)), 0)::float8 AS send_window
              FROM oltp.deliveries WHERE campaign_id = $1
            """
    }
}

/// The writes section's readings of PostgreSQL's cumulative statistics.
enum BenchStatisticsStatements {
    /// Rows written so far to each user table of this database
    /// (`pg_stat_user_tables`: flushed by each backend when it goes idle or exits).
    struct TableWrites: PostgresStatement {
        struct Row: Sendable, Equatable {
            var table: String
            var inserted: Int64
            var updated: Int64
            var hotUpdated: Int64
            var deleted: Int64
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(table: try row.decode("table_name"), inserted: try row.decode("inserted"),
                updated: try row.decode("updated"), hotUpdated: try row.decode("hot_updated"),
                deleted: try row.decode("deleted"))
        }

        static let sql: SQL = """
            SELECT schemaname || '.' || relname AS table_name, n_tup_ins AS inserted, n_tup_upd AS updated,
                   n_tup_hot_upd AS hot_updated, n_tup_del AS deleted
              FROM pg_stat_user_tables ORDER BY 1
            """
    }

    /// The server's WAL position (as text: an LSN) and its WAL counters (`pg_stat_wal`).
    struct WALPosition: PostgresStatement {
        struct Row: Sendable, Equatable {
            var lsn: String
            var records: Int64
            var fullPageImages: Int64
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(lsn: try row.decode("lsn"), records: try row.decode("records"),
                fullPageImages: try row.decode("fpi"))
        }

        static let sql: SQL = """
            SELECT pg_current_wal_lsn()::text AS lsn, wal_records AS records, wal_fpi AS fpi FROM pg_stat_wal
            """
    }

    /// Bytes of WAL between two positions `WALPosition` read.
    struct WALBytes: PostgresStatement {
        var from: String
        var to: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(to), .text(from)] }

        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("bytes") }

        static let sql: SQL = "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint AS bytes"
    }

    /// Makes this session's pending statistics flush at its next idle moment.
    struct ForceFlush: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static let sql: SQL = "SELECT pg_stat_force_next_flush()"
    }

    /// A checkpoint, so that the run starts with no page yet written since one (each
    /// page's first change after a checkpoint carries a full-page image).
    struct Checkpoint: PostgresStatement {
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [] }

        static let sql: SQL = "CHECKPOINT"
    }
}
