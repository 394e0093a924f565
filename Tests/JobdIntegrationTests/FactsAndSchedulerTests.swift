import Foundation
import JobdAnalytics
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import ServiceLifecycle
import Testing

extension QueueWorld {
    /// The rollup as the daemon builds it, over this world's one database (the queue
    /// and every tier in it), for the duration of `body`.
    func withRollup(_ body: (AnalyticsRollup) async throws -> Void) async throws {
        let databases = TierDatabases([
            TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in database.connection("rollup-a") },
            TierDatabase(tier: .content, size: 1, logger: .silent) { _ in database.connection("rollup-c") },
            TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in database.connection("rollup-n") },
        ])
        let queue = TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in database.connection("rollup-q") }
        do {
            try await body(AnalyticsRollup(databases: databases, queue: queue, logger: .silent))
        } catch {
            await databases.close()
            await queue.close()
            throw error
        }
        await databases.close()
        await queue.close()
    }

    /// The UTC day of each instant, an SQL expression over the temporary table `t`
    /// of `trimmedDaysNotRecounted`.
    func days(_ expressions: [String]) async throws -> [AnalyticsDay] {
        var days: [AnalyticsDay] = []
        for expression in expressions {
            let text = try await scalar("SELECT ((\(expression)) AT TIME ZONE 'UTC')::date::text FROM t")
            days.append(try #require(AnalyticsDay(text ?? "")))
        }
        return days
    }
}

@Suite("Attempt facts from the ledger", .serialized)
struct AttemptFactsTests {
    @Test("a drained set of jobs with mixed outcomes: the rollup counts exactly the ledger's end rows; no facts table, no spool")
    func rollupEqualsLedger() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, payload, priority) SELECT 'noop', '{}', 'high' FROM generate_series(1, 300)")
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"fail_attempts\": 1}' FROM generate_series(1, 20)")
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"permanent\": true}' FROM generate_series(1, 5)")
            // The daemon as `jobd run` assembles it (every tier's components).
            let daemon = world.makeDaemon(world.configuration())
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: 320)
                try await world.waitForState("dead", count: 5)
            }
            // A lost attempt, as the rescuer ends it: no run time.
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, daemon, outcome, error_code, started_at, kind, queue_wait_seconds)
                VALUES (999999, 1, 'end', 'gone', 'lease_expired', 'lease_expired', now() - interval '10 seconds', 'noop', 0.5)
                """)
            let ledger = try await world.sql.lines("""
                SELECT kind, outcome, count(*) FROM queue.attempts WHERE event = 'end' GROUP BY 1, 2 ORDER BY 1, 2
                """)
            #expect(ledger == ["noop\tcompleted\t320", "noop\tdead\t5", "noop\tlease_expired\t1", "noop\tretry\t20"])
            // Every day the attempts ended on (one, unless the test crossed midnight UTC).
            let days = try await world.sql.lines("""
                SELECT DISTINCT (at AT TIME ZONE 'UTC')::date::text FROM queue.attempts WHERE event = 'end' ORDER BY 1
                """).compactMap(AnalyticsDay.init)
            #expect(!days.isEmpty)
            var text = ""
            try await world.withRollup { rollup in
                for day in days { try await rollup.rollUp(day) }
                text = try await rollup.report(days[0]).text()
            }
            #expect(try await world.sql.lines("""
                SELECT kind, outcome, sum(attempts) FROM analytics.daily_jobs GROUP BY 1, 2 ORDER BY 1, 2
                """) == ledger)
            #expect(try await world.int("""
                SELECT sum(source_rows) FROM analytics.daily_rollups WHERE section = 'jobs' AND status = 'ok'
                """) == 346)
            // Durations come along: wait and run percentiles for every attempt that ran;
            // the lost one has its queue wait and no run time.
            #expect(try await world.int("""
                SELECT count(*) FROM analytics.daily_jobs
                 WHERE outcome <> 'lease_expired'
                   AND (wait_p50_ms IS NULL OR wait_p50_ms < 0 OR run_p50_ms IS NULL OR run_p50_ms < 0)
                """) == 0)
            #expect(try await world.sql.lines("""
                SELECT wait_p50_ms, run_p50_ms FROM analytics.daily_jobs WHERE outcome = 'lease_expired'
                """) == ["500\tNULL"])
            #expect(text.contains("lease_expired"))
            // No second write per attempt: the facts table and its spool are gone.
            #expect(try await world.sql.lines("""
                SELECT to_regclass('analytics.attempt_facts') IS NULL, to_regclass('queue.analytics_spool') IS NULL
                """) == ["t\tt"])
        }
    }

    @Test("queue.trim and the rollup: a day whose ledger rows were trimmed is never recounted or zeroed; a day inside the window is")
    func trimmedDaysNotRecounted() async throws {
        try await withWorld { world in
            // cut = 30 days ago (JOBD_ATTEMPTS_RETENTION's default). Jobs 1…7 do not
            // exist (pruned), so queue.trim may delete their ledger rows.
            try await world.sql.executeScript("""
                CREATE TEMP TABLE t AS SELECT now() - interval '30 days' AS cut;
                INSERT INTO queue.attempts (job_id, attempt, event, at, daemon, outcome, run_seconds, started_at, kind,
                                            queue_wait_seconds)
                SELECT g, 1, 'end', at, 'd', 'completed', 0.01, at, 'noop', 0.002 FROM (VALUES
                    (1, (SELECT cut FROM t) - interval '10 days'),   -- a rolled-up day, all trimmed
                    (2, (SELECT cut FROM t) - interval '10 days'),
                    (3, (SELECT cut FROM t) - interval '1 minute'),  -- just outside the window: trimmed
                    (4, (SELECT cut FROM t) + interval '1 minute'),  -- just inside: kept
                    (5, (SELECT cut FROM t) - interval '5 days'),    -- a day never rolled up, trimmed
                    (6, (SELECT cut FROM t) + interval '10 days')    -- inside: kept
                ) AS v(g, at);
                """)
            let days = try await world.days([
                "cut - interval '10 days'", "cut - interval '1 minute'", "cut + interval '1 minute'",
                "cut - interval '5 days'", "cut + interval '10 days'",
            ])
            let (old, outside, inside, never, recent) = (days[0], days[1], days[2], days[3], days[4])
            func attempts(_ days: [AnalyticsDay]) async throws -> Int {
                try await world.int(
                    "SELECT coalesce(sum(attempts), 0) FROM analytics.daily_jobs WHERE day = ANY($1::date[])",
                    ["{" + days.map(\.description).joined(separator: ",") + "}"])
            }
            try await world.withRollup { rollup in
                for day in Set([old, outside, inside, recent]) { try await rollup.rollUp(day) }
            }
            #expect(try await attempts([old]) == 2)
            #expect(try await attempts(Array(Set([outside, inside]))) == 2)
            #expect(try await attempts([recent]) == 1)

            let trim = world.database.connection("trim")
            try await QueueTrimHandler(connection: trim, settings: .defaults).handle(claimed("queue.trim", "{}"), context: testContext)
            await trim.close()
            #expect(try await world.sql.lines("SELECT job_id FROM queue.attempts ORDER BY job_id") == ["4", "6"])
            #expect(try await world.sql.lines("""
                SELECT trimmed_before BETWEEN (SELECT cut FROM t) AND (SELECT cut FROM t) + interval '1 minute'
                  FROM queue.ledger_trimmed
                """) == ["t"])

            // One more attempt inside the window, then every day again.
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, at, daemon, outcome, run_seconds, started_at, kind)
                SELECT 7, 1, 'end', cut + interval '10 days', 'd', 'retry', 0.01, cut + interval '10 days', 'noop' FROM t
                """)
            var neverReport: DailyReport?
            try await world.withRollup { rollup in
                for day in Set([old, outside, inside, recent, never]) { try await rollup.rollUp(day) }
                neverReport = try await rollup.report(never)
            }
            // Trimmed days keep what they had (the day straddling the cut too: the row
            // inside it is still there, the one outside is not, and nothing changed).
            #expect(try await attempts([old]) == 2)
            #expect(try await attempts(Array(Set([outside, inside]))) == 2)
            // A day inside the window is recounted.
            #expect(try await attempts([recent]) == 2)
            // A day trimmed before it was ever rolled up has no figures and says why.
            #expect(try await attempts([never]) == 0)
            #expect(try await world.sql.lines(
                "SELECT status FROM analytics.daily_rollups WHERE day = $1::date AND section = 'jobs'", [never.description]
            ) == ["source_trimmed"])
            let report = try #require(neverReport)
            #expect(report.jobs.isEmpty)
            #expect(report.text().contains("jobs: source_trimmed"))
        }
    }
}

@Suite("Scheduler", .serialized)
struct SchedulerTests {
    static let schedules = [
        ScheduledJob(name: "tick", cron: try! CronSchedule("* * * * *"), kind: "noop"),
        ScheduledJob(
            name: "rollup", cron: try! CronSchedule("0 * * * *"), kind: "analytics.rollup",
            payload: #"{"day": "${previous_date}"}"#),
    ]

    @Test("two schedulers racing over the same slots enqueue each slot exactly once")
    func twoSchedulers() async throws {
        let database = try await TestDatabase.create(tiers: [.queue])
        let sql = database.connection("sql")
        let clock = ManualClock(utcDate("2026-01-01T00:58:30Z"))
        let a = Scheduler(schedules: Self.schedules, connection: database.connection("a"), now: clock.now, logger: .silent)
        let b = Scheduler(schedules: Self.schedules, connection: database.connection("b"), now: clock.now, logger: .silent)
        // New schedules start from now: nothing fires retroactively.
        #expect(try await a.runOnce().isEmpty)
        #expect(try await b.runOnce().isEmpty)
        var inserted = 0
        for minute in ["00:59", "01:00", "01:01"] {
            clock.set(utcDate("2026-01-01T\(minute):05Z"))
            async let fromA = a.runOnce()
            async let fromB = b.runOnce()
            inserted += try await fromA.count + fromB.count
        }
        #expect(inserted == 4)
        #expect(try await sql.lines("SELECT kind, unique_key, payload::text, run_at = $1::timestamptz FROM queue.jobs ORDER BY id", [
            "2026-01-01T01:00:00Z",
        ]).sorted() == [
            "analytics.rollup\tcron:rollup:2026-01-01T01:00:00Z\t{\"day\": \"2025-12-31\"}\tt",
            "noop\tcron:tick:2026-01-01T00:59:00Z\t{}\tf",
            "noop\tcron:tick:2026-01-01T01:00:00Z\t{}\tt",
            "noop\tcron:tick:2026-01-01T01:01:00Z\t{}\tf",
        ])

        // The jobs finish (their unique keys are free again); a scheduler that starts
        // afresh still does not repeat a slot, and makes up missed ones once, by the latest.
        try await sql.query("UPDATE queue.jobs SET state = 'completed', finished_at = now()")
        let c = Scheduler(schedules: Self.schedules, connection: database.connection("c"), now: clock.now, logger: .silent)
        #expect(try await c.runOnce().isEmpty)
        clock.set(utcDate("2026-01-01T01:05:10Z"))
        let madeUp = try await c.runOnce()
        #expect(madeUp.map(\.name) == ["tick"])
        #expect(madeUp.map { ScheduledJob.isoTime($0.slot) } == ["2026-01-01T01:05:00Z"])
        #expect(try await a.runOnce().isEmpty)
        #expect(try await sql.int("SELECT count(*) FROM queue.jobs") == 5)
        #expect(try await sql.int("SELECT count(*) FROM queue.schedule_slots") == 5)
        await sql.close()
        await database.drop()
    }

    @Test("two running scheduler services enqueue the next slot once, on time")
    func runningServicesEnqueueOnce() async throws {
        let database = try await TestDatabase.create(tiers: [.queue])
        let sql = database.connection("sql")
        // Shift the clock so the next minute boundary is one real second away.
        let seconds = Date().timeIntervalSince1970
        let offset = (60 - seconds.truncatingRemainder(dividingBy: 60)) - 1
        let shifted: @Sendable () -> Date = { Date().addingTimeInterval(offset) }
        let schedules = [ScheduledJob(name: "tick", cron: try CronSchedule("* * * * *"), kind: "noop")]
        let a = Scheduler(schedules: schedules, connection: database.connection("a"), now: shifted, logger: .silent)
        let b = Scheduler(schedules: schedules, connection: database.connection("b"), now: shifted, logger: .silent)
        try await runningServices([a, b]) {
            try await waitUntil(timeout: 10, "the slot's job") {
                try await sql.int("SELECT count(*) FROM queue.jobs") >= 1
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(try await sql.int("SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'cron:tick:%'") == 1)
        await sql.close()
        await database.drop()
    }
}
