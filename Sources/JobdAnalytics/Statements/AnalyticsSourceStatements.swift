import JobdCore
import JobdPostgres

/// What the rollup reads from the other tiers' databases (`content.messages`,
/// `notifications.notifications`, `notifications.attempts`; see `AnalyticsRollup`
/// for the columns expected), and the session statements around its long
/// aggregates. Those tables belong to other tiers: a group key that is NULL there
/// is counted under "" rather than failing the section.
enum AnalyticsSourceStatements {
    /// Which of `$1` exist in this database (`to_regclass` is not null).
    struct TablesExist: PostgresStatement {
        struct Row: Sendable {
            var table: String
            var exists: Bool
        }

        var tables: [String]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT t, to_regclass(t) IS NOT NULL AS present FROM unnest($1::text[]) AS t"
        var bindings: PostgresBindings { [.textArray(tables.map { Optional($0) })] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(table: try row.decode("t"), exists: try row.decode("present"))
        }
    }

    /// The session's `statement_timeout`, as `current_setting` shows it.
    struct StatementTimeout: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT current_setting('statement_timeout') AS statement_timeout"
        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> String? {
            try row.decode("statement_timeout", as: String?.self)
        }
    }

    /// Sets the session's `statement_timeout` (`$1`: a setting value, e.g. `900000`
    /// milliseconds or what `StatementTimeout` returned).
    struct SetStatementTimeout: PostgresStatement {
        var value: String
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT set_config('statement_timeout', $1, false) AS statement_timeout"
        var bindings: PostgresBindings { [.text(value)] }
    }

    /// The rollup's `content` section: per tenant, messages and their raw and
    /// stored bytes, for `[$1, $2)`.
    struct DailyContent: PostgresStatement {
        struct Row: Sendable {
            var tenantID: String
            var messages: Int
            var rawBytes: Int64
            var storedBytes: Int64
        }

        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT tenant_id::text AS tenant_id, count(*) AS messages,
                   coalesce(sum(raw_bytes), 0)::bigint AS raw_bytes, coalesce(sum(stored_bytes), 0)::bigint AS stored_bytes
              FROM content.messages
             WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
             GROUP BY 1 ORDER BY 1
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                tenantID: try row.decode("tenant_id", as: String?.self) ?? "", messages: try row.decode("messages"),
                rawBytes: try row.decode("raw_bytes"), storedBytes: try row.decode("stored_bytes"))
        }
    }

    /// The rollup's `notifications` section, first half: per channel, notifications
    /// created in `[$1, $2)`, sent (`sent`, `delivered`) and failed (`failed`, `dead`).
    struct DailyNotifications: PostgresStatement {
        struct Row: Sendable {
            var channel: String
            var notifications: Int
            var sent: Int
            var failed: Int
        }

        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT channel::text AS channel, count(*) AS notifications,
                   count(*) FILTER (WHERE status::text IN ('sent', 'delivered')) AS sent,
                   count(*) FILTER (WHERE status::text IN ('failed', 'dead')) AS failed
              FROM notifications.notifications
             WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
             GROUP BY 1 ORDER BY 1
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                channel: try row.decode("channel", as: String?.self) ?? "", notifications: try row.decode("notifications"),
                sent: try row.decode("sent"), failed: try row.decode("failed"))
        }
    }

    /// The rollup's `notifications` section, second half: per channel, attempts
    /// started in `[$1, $2)`, the failed ones, and the p50, p95 and p99 of their duration.
    struct DailyNotificationAttempts: PostgresStatement {
        struct Row: Sendable {
            var channel: String
            var attempts: Int
            var failedAttempts: Int
            /// p50, p95, p99 in milliseconds; nil where missing.
            var latency: (p50: Double?, p95: Double?, p99: Double?)
        }

        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT n.channel::text AS channel, count(*) AS attempts,
                   count(*) FILTER (WHERE a.outcome::text NOT IN ('sent', 'delivered', 'ok', 'success')) AS failed_attempts,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY a.duration_ms::float8) AS latency
              FROM notifications.attempts a JOIN notifications.notifications n ON n.id = a.notification_id
             WHERE a.started_at >= $1::timestamptz AND a.started_at < $2::timestamptz
             GROUP BY 1 ORDER BY 1
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                channel: try row.decode("channel", as: String?.self) ?? "", attempts: try row.decode("attempts"),
                failedAttempts: try row.decode("failed_attempts"),
                latency: AnalyticsRange.percentiles(try row.decode("latency", as: String?.self)))
        }
    }
}
