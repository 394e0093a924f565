import JobdCore
import JobdPostgres

/// `analytics.events`: `metrics.emit`'s insert, the rollup's `events` section and
/// the trim of `analytics.trim`.
enum AnalyticsEventsStatements {
    /// The events of one job, numbered 1…n (`seq`); an event already stored for
    /// (job, seq) is left as it is, so a job that runs again stores nothing twice.
    struct Insert: PostgresStatement {
        var jobID: JobID
        var names: [String]
        var values: [Double]
        /// Each event's tags, a JSON object.
        var tags: [String]
        /// Milliseconds since 1970.
        var times: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            INSERT INTO analytics.events (job_id, seq, name, value, tags, occurred_at)
            SELECT $1::bigint, s, n, v, t, timestamptz 'epoch' + ms * interval '1 millisecond'
              FROM unnest($2::int[], $3::text[], $4::float8[], $5::jsonb[], $6::bigint[]) AS u(s, n, v, t, ms)
            ON CONFLICT (job_id, seq) DO NOTHING
            """
        var bindings: PostgresBindings {
            [
                .int(jobID), .intArray(names.indices.map { $0 + 1 }), .textArray(names.map { Optional($0) }),
                .textArray(values.map { Optional(String($0)) }), .textArray(tags.map { Optional($0) }), .intArray(times),
            ]
        }
    }

    /// The rollup's `events` section: per name, count, sum, min, max and average
    /// of the values in `[$1, $2)`.
    struct Daily: PostgresStatement {
        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT name, count(*) AS events, sum(value) AS total, min(value) AS min, max(value) AS max, avg(value) AS avg
              FROM analytics.events
             WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz
             GROUP BY name ORDER BY name
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> DailyReport.Events {
            DailyReport.Events(
                name: try row.decode("name"), events: try row.decode("events"), total: try row.decode("total"),
                min: try row.decode("min", as: Double?.self), max: try row.decode("max", as: Double?.self),
                avg: try row.decode("avg", as: Double?.self))
        }
    }

    /// At most `$2` events from before the start (UTC) of the day `$1` seconds ago
    /// whose own UTC day is marked trimmed.
    struct Trim: PostgresStatement {
        var olderThan: Duration
        var batch: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH doomed AS (
                SELECT e.job_id, e.seq FROM analytics.events e
                 WHERE e.occurred_at < date_trunc('day', now() - make_interval(secs => $1::float8), 'UTC')
                   AND EXISTS (
                       SELECT 1 FROM analytics.daily_rollups r
                        WHERE r.section = 'events' AND r.source_trimmed_at IS NOT NULL
                          AND r.day = (e.occurred_at AT TIME ZONE 'UTC')::date)
                 LIMIT $2::int
            )
            DELETE FROM analytics.events e USING doomed d WHERE e.job_id = d.job_id AND e.seq = d.seq
            """
        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }
    }
}
