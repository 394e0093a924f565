import Foundation
import JobdAnalytics
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import ServiceLifecycle
import Testing

@Suite("Attempt facts", .serialized)
struct AttemptFactsTests {
    @Test("every finished attempt records one fact, written in batches")
    func factPerAttempt() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, payload, priority) SELECT 'noop', '{}', 'high' FROM generate_series(1, 300)")
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"fail_attempts\": 1}' FROM generate_series(1, 20)")
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"permanent\": true}' FROM generate_series(1, 5)")
            let writer = FactsWriter(
                analytics: world.database.connection("facts"), spool: world.database.connection("spool"),
                capacity: 10_000, flushInterval: 0.2, logger: .silent)
            let daemon = world.makeDaemon(world.configuration(), observer: writer)
            try await runningServices([writer] + daemon.services) {
                try await world.waitForState("completed", count: 320)
                try await world.waitForState("dead", count: 5)
                try await waitUntil(timeout: 10, "facts written") {
                    try await world.int("SELECT count(*) FROM analytics.attempt_facts") == 345
                }
            }
            let byOutcome = try await world.sql.lines("""
                SELECT outcome, priority, count(*), min(attempt), max(attempt) FROM analytics.attempt_facts
                 GROUP BY 1, 2 ORDER BY 1, 2
                """)
            #expect(byOutcome == [
                "completed\thigh\t300\t1\t1", "completed\tnormal\t20\t2\t2", "dead\tnormal\t5\t1\t1", "retry\tnormal\t20\t1\t1",
            ])
            // Each fact is its job's own attempt, with sane durations and times.
            #expect(try await world.int("""
                SELECT count(*) FROM analytics.attempt_facts f JOIN queue.jobs j ON j.id = f.job_id
                 WHERE f.kind = j.kind AND f.queue_wait_ms >= 0 AND f.run_ms >= 0
                   AND f.finished_at BETWEEN j.created_at AND now()
                """) == 345)
            let counters = writer.counters
            #expect(counters.recorded == 345 && counters.written == 345 && counters.dropped == 0 && counters.spooled == 0)
            // Batched: far fewer statements than facts.
            #expect(counters.batches >= 1 && counters.written / counters.batches >= 5, "\(counters)")
        }
    }

    @Test("analytics down: jobs keep completing, facts park in the queue spool and move over once it is back")
    func analyticsDown() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 200)")
            let down = FactsWriter(
                analytics: PostgresConnection(conninfo: unreachableDatabase, name: "facts", commandTimeout: 2, logger: .silent),
                spool: world.database.connection("spool"), capacity: 10_000, flushInterval: 0.1, logger: world.logs.logger())
            let daemon = world.makeDaemon(world.configuration(), observer: down)
            try await runningServices([down] + daemon.services) {
                try await world.waitForState("completed", count: 200)
                try await waitUntil(timeout: 15, "facts spooled") { down.counters.spooled == 200 }
            }
            #expect(try await world.int("SELECT count(*) FROM queue.analytics_spool") == 200)
            #expect(try await world.int("SELECT count(*) FROM analytics.attempt_facts") == 0)
            #expect(world.logs.messages("attempt facts: analytics unreachable; parking facts in the queue spool").count == 1)

            // A move that was interrupted after its insert and is repeated: the spool
            // holds every fact twice. The insert is idempotent, so each lands once.
            try await world.exec("""
                INSERT INTO queue.analytics_spool (job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms, finished_at)
                SELECT job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms, finished_at FROM queue.analytics_spool
                """)
            let back = FactsWriter(
                analytics: world.database.connection("facts2"), spool: world.database.connection("spool2"),
                capacity: 10_000, flushInterval: 0.1, logger: .silent)
            try await runningServices([back]) {
                try await waitUntil(timeout: 10, "spool moved") {
                    try await world.int("SELECT count(*) FROM queue.analytics_spool") == 0
                }
            }
            #expect(back.counters.unspooled == 400)
            #expect(try await world.int("SELECT count(*) FROM analytics.attempt_facts") == 200)
            #expect(try await world.int("SELECT count(DISTINCT job_id) FROM analytics.attempt_facts") == 200)
        }
    }

    @Test("both databases down: at most `capacity` facts wait in memory; the rest are dropped and counted")
    func boundedBuffer() async throws {
        let logs = LogCapture()
        let writer = FactsWriter(
            analytics: PostgresConnection(conninfo: unreachableDatabase, name: "a", commandTimeout: 1, logger: .silent),
            spool: PostgresConnection(conninfo: unreachableDatabase, name: "s", commandTimeout: 1, logger: .silent),
            capacity: 10, flushInterval: 0.05, drainTimeout: 0.5, logger: logs.logger())
        for index in 1...25 {
            writer.record(AttemptFact(
                jobID: JobID(index), attempt: 1, kind: "noop", priority: .normal, outcome: .completed,
                queueWaitMs: 1, runMs: 1, finishedAt: 1_700_000_000))
        }
        #expect(writer.counters.recorded == 25)
        #expect(writer.counters.dropped == 15)
        #expect(writer.buffered == 10)
        let drops = logs.messages("attempt facts dropped: buffer full")
        #expect(drops.count == 1)
        #expect(drops.first?.metadata[LogKey.count] == "1")
        try await runningServices([writer]) {
            try await waitUntil(timeout: 20, "a failed write") {
                !logs.messages("attempt facts: neither analytics nor the queue spool is writable; keeping them in memory").isEmpty
            }
            #expect(writer.buffered == 10)  // retried, not lost
        }
        let lost = logs.messages("attempt facts lost at shutdown: neither analytics nor the queue database took them")
        #expect(lost.first?.metadata[LogKey.count] == "10")
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
