import JobdCore
import JobdPostgres

/// `analytics.daily_rollups` and the daily tables (`daily_jobs`, `daily_events`,
/// `daily_content`, `daily_notifications`): the rollup's store and load, and the
/// trim's marking of rolled-up days.
enum AnalyticsDailyStatements {
    /// The sections of day `$1` whose source rows retention has deleted.
    struct TrimmedSections: PostgresStatement {
        var day: AnalyticsDay
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT section FROM analytics.daily_rollups WHERE day = $1::date AND source_trimmed_at IS NOT NULL
            """
        var bindings: PostgresBindings { [.text(day.description)] }
        static func decode(_ row: PostgresRow) throws -> String { try row.decode("section") }
    }

    /// Marks the rolled-up `events` section of every day that ended more than `$1`
    /// seconds ago (idempotent). The `jobs` section's source is the queue tier's
    /// ledger, whose own trim leaves its mark there (`queue.ledger_trimmed`).
    struct MarkTrimmed: PostgresStatement {
        var olderThan: Duration
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE analytics.daily_rollups SET source_trimmed_at = now()
             WHERE section = 'events' AND status = 'ok' AND source_trimmed_at IS NULL
               AND day < ((now() - make_interval(secs => $1::float8)) AT TIME ZONE 'UTC')::date
            """
        var bindings: PostgresBindings { [.seconds(olderThan)] }
    }

    /// The stored rollup of day `$1` in one round trip: each part a JSON array (Swift
    /// property names); `sections` is `[]` when the day was never rolled up.
    struct Load: PostgresStatement {
        struct Row: Sendable {
            var sections: String
            var jobs: String
            var events: String
            var content: String
            var notifications: String
        }

        var day: AnalyticsDay
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT
              (SELECT coalesce(json_agg(json_build_object('section', section, 'status', status, 'detail', detail,
                                                          'sourceRows', source_rows) ORDER BY section), '[]')
                 FROM analytics.daily_rollups WHERE day = $1::date) AS sections,
              (SELECT coalesce(json_agg(json_build_object('kind', kind, 'outcome', outcome, 'attempts', attempts,
                        'waitP50Ms', wait_p50_ms, 'waitP95Ms', wait_p95_ms, 'waitP99Ms', wait_p99_ms,
                        'runP50Ms', run_p50_ms, 'runP95Ms', run_p95_ms, 'runP99Ms', run_p99_ms) ORDER BY kind, outcome), '[]')
                 FROM analytics.daily_jobs WHERE day = $1::date) AS jobs,
              (SELECT coalesce(json_agg(json_build_object('name', name, 'events', events, 'total', total,
                        'min', min, 'max', max, 'avg', avg) ORDER BY name), '[]')
                 FROM analytics.daily_events WHERE day = $1::date) AS events,
              (SELECT coalesce(json_agg(json_build_object('tenantID', tenant_id, 'messages', messages,
                        'rawBytes', raw_bytes, 'storedBytes', stored_bytes, 'compressionRatio', compression_ratio)
                        ORDER BY tenant_id), '[]')
                 FROM analytics.daily_content WHERE day = $1::date) AS content,
              (SELECT coalesce(json_agg(json_build_object('channel', channel, 'notifications', notifications,
                        'sent', sent, 'failed', failed, 'deliveryRate', delivery_rate, 'attempts', attempts,
                        'failedAttempts', failed_attempts, 'latencyP50Ms', latency_p50_ms,
                        'latencyP95Ms', latency_p95_ms, 'latencyP99Ms', latency_p99_ms) ORDER BY channel), '[]')
                 FROM analytics.daily_notifications WHERE day = $1::date) AS notifications
            """
        var bindings: PostgresBindings { [.text(day.description)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                sections: try row.decode("sections"), jobs: try row.decode("jobs"), events: try row.decode("events"),
                content: try row.decode("content"), notifications: try row.decode("notifications"))
        }
    }

    /// Records a section's status for the day; the middle part of every `Store…`
    /// statement (`$1` day, `$3` section, `$4` status, `$5` detail, `$6` source rows).
    static let recordStatus: SQL = """
         status AS (
            INSERT INTO analytics.daily_rollups (day, section, status, detail, source_rows)
            VALUES ($1::date, $3, $4, $5, $6::bigint)
            ON CONFLICT (day, section) DO UPDATE
               SET status = EXCLUDED.status, detail = EXCLUDED.detail,
                   source_rows = EXCLUDED.source_rows, rolled_up_at = now()
        )

        """

    struct StoreJobs: AnalyticsDailyStore {
        var day: AnalyticsDay
        var rows: String
        var status: DailyReport.Section
        static let sql: SQL = """
            WITH cols AS (
                SELECT (r->>'kind')::text AS kind, (r->>'outcome')::text AS outcome, (r->>'attempts')::bigint AS attempts,
                       (r->>'waitP50Ms')::float8 AS wait_p50_ms, (r->>'waitP95Ms')::float8 AS wait_p95_ms,
                       (r->>'waitP99Ms')::float8 AS wait_p99_ms, (r->>'runP50Ms')::float8 AS run_p50_ms,
                       (r->>'runP95Ms')::float8 AS run_p95_ms, (r->>'runP99Ms')::float8 AS run_p99_ms
                  FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.daily_jobs d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE i.kind = d.kind AND i.outcome = d.outcome)
            ),
            """ + AnalyticsDailyStatements.recordStatus + """
            INSERT INTO analytics.daily_jobs (day, kind, outcome, attempts, wait_p50_ms, wait_p95_ms, wait_p99_ms,
                                              run_p50_ms, run_p95_ms, run_p99_ms)
            SELECT $1::date, kind, outcome, attempts, wait_p50_ms, wait_p95_ms, wait_p99_ms, run_p50_ms, run_p95_ms, run_p99_ms
              FROM cols
            ON CONFLICT (day, kind, outcome) DO UPDATE
               SET attempts = EXCLUDED.attempts, wait_p50_ms = EXCLUDED.wait_p50_ms, wait_p95_ms = EXCLUDED.wait_p95_ms,
                   wait_p99_ms = EXCLUDED.wait_p99_ms, run_p50_ms = EXCLUDED.run_p50_ms, run_p95_ms = EXCLUDED.run_p95_ms,
                   run_p99_ms = EXCLUDED.run_p99_ms
            """
    }

    struct StoreEvents: AnalyticsDailyStore {
        var day: AnalyticsDay
        var rows: String
        var status: DailyReport.Section
        static let sql: SQL = """
            WITH cols AS (
                SELECT (r->>'name')::text AS name, (r->>'events')::bigint AS events, (r->>'total')::float8 AS total,
                       (r->>'min')::float8 AS min, (r->>'max')::float8 AS max, (r->>'avg')::float8 AS avg
                  FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.daily_events d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE i.name = d.name)
            ),
            """ + AnalyticsDailyStatements.recordStatus + """
            INSERT INTO analytics.daily_events (day, name, events, total, min, max, avg)
            SELECT $1::date, name, events, total, min, max, avg FROM cols
            ON CONFLICT (day, name) DO UPDATE
               SET events = EXCLUDED.events, total = EXCLUDED.total, min = EXCLUDED.min, max = EXCLUDED.max,
                   avg = EXCLUDED.avg
            """
    }

    struct StoreContent: AnalyticsDailyStore {
        var day: AnalyticsDay
        var rows: String
        var status: DailyReport.Section
        static let sql: SQL = """
            WITH cols AS (
                SELECT (r->>'tenantID')::text AS tenant_id, (r->>'messages')::bigint AS messages,
                       (r->>'rawBytes')::bigint AS raw_bytes, (r->>'storedBytes')::bigint AS stored_bytes,
                       (r->>'compressionRatio')::float8 AS compression_ratio
                  FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.daily_content d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE i.tenant_id = d.tenant_id)
            ),
            """ + AnalyticsDailyStatements.recordStatus + """
            INSERT INTO analytics.daily_content (day, tenant_id, messages, raw_bytes, stored_bytes, compression_ratio)
            SELECT $1::date, tenant_id, messages, raw_bytes, stored_bytes, compression_ratio FROM cols
            ON CONFLICT (day, tenant_id) DO UPDATE
               SET messages = EXCLUDED.messages, raw_bytes = EXCLUDED.raw_bytes, stored_bytes = EXCLUDED.stored_bytes,
                   compression_ratio = EXCLUDED.compression_ratio
            """
    }

    struct StoreNotifications: AnalyticsDailyStore {
        var day: AnalyticsDay
        var rows: String
        var status: DailyReport.Section
        static let sql: SQL = """
            WITH cols AS (
                SELECT (r->>'channel')::text AS channel, (r->>'notifications')::bigint AS notifications,
                       (r->>'sent')::bigint AS sent, (r->>'failed')::bigint AS failed,
                       (r->>'deliveryRate')::float8 AS delivery_rate, (r->>'attempts')::bigint AS attempts,
                       (r->>'failedAttempts')::bigint AS failed_attempts, (r->>'latencyP50Ms')::float8 AS latency_p50_ms,
                       (r->>'latencyP95Ms')::float8 AS latency_p95_ms, (r->>'latencyP99Ms')::float8 AS latency_p99_ms
                  FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.daily_notifications d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE i.channel = d.channel)
            ),
            """ + AnalyticsDailyStatements.recordStatus + """
            INSERT INTO analytics.daily_notifications (day, channel, notifications, sent, failed, delivery_rate, attempts,
                                                       failed_attempts, latency_p50_ms, latency_p95_ms, latency_p99_ms)
            SELECT $1::date, channel, notifications, sent, failed, delivery_rate, attempts, failed_attempts,
                   latency_p50_ms, latency_p95_ms, latency_p99_ms
              FROM cols
            ON CONFLICT (day, channel) DO UPDATE
               SET notifications = EXCLUDED.notifications, sent = EXCLUDED.sent, failed = EXCLUDED.failed,
                   delivery_rate = EXCLUDED.delivery_rate, attempts = EXCLUDED.attempts,
                   failed_attempts = EXCLUDED.failed_attempts, latency_p50_ms = EXCLUDED.latency_p50_ms,
                   latency_p95_ms = EXCLUDED.latency_p95_ms, latency_p99_ms = EXCLUDED.latency_p99_ms
            """
    }
}

/// Replaces one section's rows of a day in one statement: `$1` day, `$2` the rows
/// as a JSON array (Swift property names), `$3…$6` the section's status. Keys no
/// longer present are deleted (`gone`), the rest upserted, and the status recorded
/// (`AnalyticsDailyStatements.recordStatus`). The DELETE and the upsert touch
/// disjoint keys, so running them in one statement is safe, and the whole
/// replacement is atomic.
protocol AnalyticsDailyStore: PostgresStatement where Row == PostgresNoRow {
    var day: AnalyticsDay { get }
    /// The section's rows, a JSON array.
    var rows: String { get }
    var status: DailyReport.Section { get }
    init(day: AnalyticsDay, rows: String, status: DailyReport.Section)
}

extension AnalyticsDailyStore {
    static var planning: PostgresPlanning { .perExecution }

    var bindings: PostgresBindings {
        [
            .text(day.description), .jsonb(rows), .text(status.section), .text(status.status), .text(status.detail),
            .int(status.sourceRows),
        ]
    }
}
