import Foundation
import JobdCore
import JobdPostgres

/// `analytics.attempt_facts` and its queue-side spool `queue.analytics_spool`: the
/// batch inserts of `FactsWriter`, the spool's move to analytics, the rollup's `jobs`
/// section and the trim of `analytics.trim`.
enum AnalyticsAttemptFactsStatements {
    /// A batch of facts as unnest'ed arrays: `$1` job ids, `$2` attempts, `$3` kinds,
    /// `$4` priorities, `$5` outcomes, `$6` queue waits, `$7` run times (ms; a
    /// non-finite value is written as 0), `$8` finish times (ms since 1970).
    static func bindings(_ facts: [AttemptFact]) -> PostgresBindings {
        func number(_ value: Double) -> String? { value.isFinite ? String(value) : "0" }
        return [
            .intArray(facts.map(\.jobID)),
            .intArray(facts.map(\.attempt)),
            .textArray(facts.map { Optional($0.kind) }),
            .textArray(facts.map { Optional($0.priority.rawValue) }),
            .textArray(facts.map { Optional($0.outcome.rawValue) }),
            .textArray(facts.map { number($0.queueWaitMs) }),
            .textArray(facts.map { number($0.runMs) }),
            .intArray(facts.map { Int64(($0.finishedAt * 1000).rounded()) }),
        ]
    }

    /// The rows of a batch, from the arrays of `bindings(_:)`.
    static let unnestFacts: SQL = """
        SELECT j, a, k, p, o, w, r, timestamptz 'epoch' + f * interval '1 millisecond'
          FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
                      $6::float8[], $7::float8[], $8::bigint[]) AS u(j, a, k, p, o, w, r, f)
        """

    /// One batch into analytics. `ON CONFLICT DO NOTHING`: a re-sent batch changes nothing.
    struct Insert: PostgresStatement {
        var facts: [AttemptFact]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            INSERT INTO analytics.attempt_facts (job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms, finished_at)

            """ + AnalyticsAttemptFactsStatements.unnestFacts + """

            ON CONFLICT DO NOTHING
            """
        var bindings: PostgresBindings { AnalyticsAttemptFactsStatements.bindings(facts) }
    }

    /// One batch into the spool. The spool has no natural key; the move to
    /// analytics de-duplicates.
    struct Spool: PostgresStatement {
        var facts: [AttemptFact]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            INSERT INTO queue.analytics_spool (job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms, finished_at)

            """ + AnalyticsAttemptFactsStatements.unnestFacts
        var bindings: PostgresBindings { AnalyticsAttemptFactsStatements.bindings(facts) }
    }

    /// The oldest `limit` spooled facts.
    struct Spooled: PostgresStatement {
        /// A spooled row; `fact` is nil when the row does not parse (an unknown
        /// priority or outcome): it is deleted with the rest, so it never blocks the spool.
        struct Row: Sendable {
            var id: Int64
            var fact: AttemptFact?
        }

        var limit: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT id, job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms,
                   (extract(epoch FROM finished_at) * 1000)::bigint AS finished_ms
              FROM queue.analytics_spool ORDER BY id LIMIT $1::int
            """
        var bindings: PostgresBindings { [.int(limit)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), fact: try? fact(row))
        }

        private static func fact(_ row: PostgresRow) throws -> AttemptFact? {
            guard let priority = JobPriority(rawValue: try row.decode("priority")),
                  let outcome = CompletionOutcome(rawValue: try row.decode("outcome")) else { return nil }
            return AttemptFact(
                jobID: try row.decode("job_id"), attempt: try row.decode("attempt"), kind: try row.decode("kind"),
                priority: priority, outcome: outcome,
                queueWaitMs: try row.decode("queue_wait_ms"), runMs: try row.decode("run_ms"),
                finishedAt: Double(try row.decode("finished_ms", as: Int64.self)) / 1000)
        }
    }

    /// Spooled rows moved to analytics.
    struct DeleteSpooled: PostgresStatement {
        var ids: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "DELETE FROM queue.analytics_spool WHERE id = ANY($1::bigint[])"
        var bindings: PostgresBindings { [.intArray(ids)] }
    }

    /// The rollup's `jobs` section: per kind and outcome, attempts and the p50, p95
    /// and p99 of queue wait and run time, for `[$1, $2)`.
    struct DailyJobs: PostgresStatement {
        var range: AnalyticsRange
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT kind, outcome, count(*) AS attempts,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY queue_wait_ms) AS wait,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY run_ms) AS run
              FROM analytics.attempt_facts
             WHERE finished_at >= $1::timestamptz AND finished_at < $2::timestamptz
             GROUP BY kind, outcome ORDER BY kind, outcome
            """
        var bindings: PostgresBindings { range.bindings }

        static func decode(_ row: PostgresRow) throws -> DailyReport.Jobs {
            let wait = AnalyticsRange.percentiles(try row.decode("wait", as: String?.self))
            let run = AnalyticsRange.percentiles(try row.decode("run", as: String?.self))
            return DailyReport.Jobs(
                kind: try row.decode("kind"), outcome: try row.decode("outcome"), attempts: try row.decode("attempts"),
                waitP50Ms: wait.p50, waitP95Ms: wait.p95, waitP99Ms: wait.p99,
                runP50Ms: run.p50, runP95Ms: run.p95, runP99Ms: run.p99)
        }
    }

    /// At most `$2` facts finished before the start (UTC) of the day `$1` seconds
    /// ago whose own UTC day is marked trimmed.
    struct Trim: PostgresStatement {
        var olderThan: Double
        var batch: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH doomed AS (
                SELECT f.job_id, f.attempt, f.finished_at FROM analytics.attempt_facts f
                 WHERE f.finished_at < date_trunc('day', now() - make_interval(secs => $1::float8), 'UTC')
                   AND EXISTS (
                       SELECT 1 FROM analytics.daily_rollups r
                        WHERE r.section = 'jobs' AND r.source_trimmed_at IS NOT NULL
                          AND r.day = (f.finished_at AT TIME ZONE 'UTC')::date)
                 LIMIT $2::int
            )
            DELETE FROM analytics.attempt_facts f USING doomed d
             WHERE f.job_id = d.job_id AND f.attempt = d.attempt AND f.finished_at = d.finished_at
            """
        var bindings: PostgresBindings { [.double(olderThan), .int(batch)] }
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
