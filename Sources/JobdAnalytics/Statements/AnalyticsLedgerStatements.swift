import Foundation
import JobdCore
import JobdPostgres

/// What the rollup's `jobs` section reads from the queue tier's database: the
/// attempts ledger's `end` rows (one per attempt, written by the statement that
/// ended it) and how far back `queue.trim` has deleted them.
enum AnalyticsLedgerStatements {
    /// The rollup's `jobs` section: per kind and outcome, the attempts that ended in
    /// `[$1, $2)` and the p50, p95 and p99 of their queue wait and run time (ms).
    ///
    /// A row written before the ledger carried the kind takes its job row's (`''`
    /// once the job is pruned). A lost attempt (`lease_expired`, ended by the
    /// rescuer) has no run time and, when its job row held no start, no queue wait:
    /// percentiles skip NULLs. Reads the ledger's BRIN index on `at`.
    struct DailyJobs: PostgresStatement {
        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT kind, outcome, count(*) AS attempts,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY wait_ms) AS wait,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY run_ms) AS run
              FROM (SELECT coalesce(a.kind, (SELECT j.kind FROM queue.jobs j WHERE j.id = a.job_id), '') AS kind,
                           a.outcome, a.queue_wait_seconds * 1000 AS wait_ms, a.run_seconds * 1000 AS run_ms
                      FROM queue.attempts a
                     WHERE a.event = 'end' AND a.at >= $1::timestamptz AND a.at < $2::timestamptz) AS ended
             GROUP BY kind, outcome ORDER BY kind, outcome
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> DailyReport.Jobs {
            let wait = AnalyticsRange.percentiles(try row.decode("wait", as: String?.self))
            let run = AnalyticsRange.percentiles(try row.decode("run", as: String?.self))
            return DailyReport.Jobs(
                kind: try row.decode("kind"), outcome: try row.decode("outcome", as: String?.self) ?? "",
                attempts: try row.decode("attempts"),
                waitP50Ms: wait.p50, waitP95Ms: wait.p95, waitP99Ms: wait.p99,
                runP50Ms: run.p50, runP95Ms: run.p95, runP99Ms: run.p99)
        }
    }

    /// Whether `queue.trim` may have deleted ledger rows of the day starting at `$1`:
    /// its mark (`queue.ledger_trimmed`) is past the day's start. False when nothing
    /// was ever trimmed.
    struct Trimmed: PostgresStatement {
        struct Row: Sendable {
            var trimmed: Bool
            /// The mark, ISO 8601 UTC; nil when nothing was ever trimmed.
            var before: String?
        }

        var day: AnalyticsDay
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT EXISTS (SELECT 1 FROM queue.ledger_trimmed WHERE trimmed_before > $1::timestamptz) AS trimmed,
                   (SELECT to_char(trimmed_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                      FROM queue.ledger_trimmed) AS trimmed_before
            """
        var bindings: PostgresBindings { [.text(day.startISO)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(trimmed: try row.decode("trimmed"), before: try row.decode("trimmed_before", as: String?.self))
        }
    }
}

/// A rollup day as `[$1, $2)`: its start and the next day's start, ISO 8601 UTC.
struct AnalyticsRange: Sendable {
    var day: AnalyticsDay
    var bindings: PostgresBindings { [.text(day.startISO), .text(day.endISO)] }

    /// `{1.5,2,3}` (a float8[] of p50, p95, p99) → (1.5, 2, 3); missing values are nil.
    static func percentiles(_ text: String?) -> (p50: Double?, p95: Double?, p99: Double?) {
        var values = (text ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
            .split(separator: ",").map { Double($0) }.makeIterator()
        return (values.next() ?? nil, values.next() ?? nil, values.next() ?? nil)
    }
}
