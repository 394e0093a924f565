import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestRandom
import JobdTestSupport
import Synchronization
import Testing

/// A clock on which every measured piece of work takes `tick`: each reading is `tick`
/// after the one before (a measurement reads the clock before and after).
private final class TickingClock: MonotonicClock {
    private let start = ContinuousClock.now
    private let tick: Swift.Duration
    private let readings = Mutex(0)

    init(tick: Swift.Duration) { self.tick = tick }

    var now: ContinuousClock.Instant {
        let count = readings.withLock { value in
            value += 1
            return value
        }
        return start + tick * count
    }
}

/// A bulk action's steps: sized by the time they take, stopped by a cancelled job.
extension WebConsoleTests {
    /// `count` dead jobs of `priority`, last due `dueAgo` ago, with their dead letters,
    /// and a retry of all of them confirmed (batch = the most rows a step may take).
    /// Returns the action's id and its job's.
    private static func deadRetry(
        _ world: QueueWorld, count: Int, batch: Int, priority: String = "normal", dueAgo: Duration = .zero
    ) async throws -> (action: String, job: JobID) {
        try await world.exec("""
            INSERT INTO queue.jobs (kind, priority, state, run_at, attempt, finished_at)
            SELECT 'export', $2, 'dead', now() - make_interval(secs => $3::float8), 3, now() FROM generate_series(1, $1::int) g
            """, [String(count), priority, String(dueAgo.seconds)])
        try await world.exec("""
            INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
            SELECT id, kind, payload, priority, 3, 'failed' FROM queue.jobs WHERE state = 'dead'
            """)
        let upper = try await world.int("SELECT max(id) + 1 FROM queue.jobs")
        let row = try await world.sql.query(
            "SELECT id, job_id FROM queue.bulk_action_start('dead_letters', 'retry', '{}', 'alice', $1::bigint, $2::int)",
            [String(upper), String(batch)]).rows.first ?? []
        let action = try #require(row.first.flatMap { $0 })
        let job = try #require(row.last.flatMap { $0 }.flatMap { JobID($0) })
        return (action, job)
    }

    private static func runHandler(
        _ world: QueueWorld, job: JobID, action: String, clock: any MonotonicClock, budget: Duration
    ) async throws -> JobSnooze? {
        let connection = PostgresConnection(conninfo: world.database.url, name: "bulk-steps", commandTimeout: 30, logger: .silent)
        let handler = BulkActionHandler(connection: connection, timeBudget: budget, clock: clock)
        var snooze: JobSnooze?
        do {
            try await handler.handle(
                ClaimedJob(id: job, kind: handler.kind, payload: "{\"bulk_action_id\": \(action)}", priority: .high,
                           attempt: 1, maxAttempts: 5),
                context: JobContext(logger: .silent))
        } catch let thrown as JobSnooze {
            snooze = thrown
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return snooze
    }

    @Test("a bulk step takes the rows asked for, at most the action's batch; the handler grows fast steps and shrinks slow ones by its clock")
    func bulkStepsSizedByTime() async throws {
        try await withWorld { world in
            let (action, job) = try await Self.deadRetry(world, count: 2_000, batch: 1_000)
            func processed() async throws -> Int {
                try await world.int("SELECT processed FROM queue.bulk_actions WHERE id = $1", [action])
            }
            // The statement: 7 rows asked, 7 taken; 5,000 asked, clamped to the batch.
            let step = try await world.sql.query(
                "SELECT processed, done, cancelled FROM queue.bulk_action_step($1::bigint, 7)", [action]).rows.first
            #expect(step == ["7", "f", "f"])
            _ = try await world.sql.query("SELECT * FROM queue.bulk_action_step($1::bigint, 5000)", [action])
            #expect(try await processed() == 1_007)

            // Every step looks 50 ms long (under the 100-250 ms target): 100, 200, 400
            // rows, then the 150 ms budget is spent and the job snoozes to go on.
            try await world.exec("UPDATE queue.bulk_actions SET processed = 0, affected = 0, below_id = upper_id WHERE id = $1", [action])
            try await world.exec("""
                WITH back AS (UPDATE queue.jobs SET state = 'dead', finished_at = now() WHERE kind = 'export' AND state = 'available' RETURNING id, kind, payload, priority)
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 3, 'failed' FROM back
                """)
            let fast = try await Self.runHandler(world, job: job, action: action, clock: TickingClock(tick: .milliseconds(50)), budget: .milliseconds(150))
            #expect(fast?.code == "bulk_action_continues")
            #expect(try await processed() == 700)
            // Every step looks 400 ms long (over the target): 100, then 43 (the rows
            // 100 rows' rate does in 175 ms), then 18; the 1 s budget is spent.
            let slow = try await Self.runHandler(world, job: job, action: action, clock: TickingClock(tick: .milliseconds(400)), budget: .seconds(1))
            #expect(slow?.code == "bulk_action_continues")
            #expect(try await processed() == 700 + 100 + 43 + 18)
            // Fast to the end: every dead letter retried once.
            let rest = try await Self.runHandler(world, job: job, action: action, clock: TickingClock(tick: .milliseconds(1)), budget: .seconds(60))
            #expect(rest == nil)
            let row = try await world.sql.query(
                "SELECT expected, processed, affected, finished_at IS NOT NULL, cancelled_at IS NULL FROM queue.bulk_actions WHERE id = $1",
                [action]).rows.first
            #expect(row == ["2000", "2000", "2000", "t", "t"])
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'export' AND state = 'available' AND attempt = 0") == 2_000)
        }
    }

    @Test("a bulk action's job that ran out of time goes on ahead of the jobs it re-drove in its lane: claimed before them")
    func bulkContinuesAheadOfRedriven() async throws {
        try await withWorld { world in
            // 500 dead high jobs (the action's job's lane) and a retry of them, 50 rows a step.
            let (action, bulkJob) = try await Self.deadRetry(world, count: 500, batch: 50, priority: "high", dueAgo: .seconds(3_600))
            let store = QueueStore(connection: world.sql)
            let policy = FailurePolicy(backoff: RetryBackoff(base: .seconds(1), maximum: .seconds(60)))
            let connection = PostgresConnection(conninfo: world.database.url, name: "bulk-steps", commandTimeout: 30, logger: .silent)
            let handler = BulkActionHandler(connection: connection, timeBudget: .milliseconds(150),
                                            clock: TickingClock(tick: .milliseconds(50)))
            var generator = SplitMix64(seed: 1)
            for slice in 1...2 {
                // The action's job is the oldest due job of its lane: claimed first, ahead of
                // everything the slices before re-drove.
                let claimed = try await store.claimDue(order: [.high], max: 1, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
                #expect(claimed.map(\.job.id) == [bulkJob], "slice \(slice)")
                let job = try #require(claimed.first?.job)
                let started = ContinuousClock.now
                var result = AttemptResult.succeeded
                do {
                    try await handler.handle(job, context: JobContext(logger: .silent))
                } catch let snooze as JobSnooze {
                    result = .snoozed(snooze)
                }
                // Three steps of 50 rows (each looks 50 ms long), then out of its 150 ms.
                #expect(result == .snoozed(.keepingPlace(code: "bulk_action_continues", message: "bulk action \(action): \(150 * slice) of 500 done; continuing")))
                let completion = policy.completion(for: job, result: result, runSeconds: (ContinuousClock.now - started).seconds, using: &generator)
                #expect(try await store.complete([completion], daemon: "d") == [job.fence])
                // The re-driven jobs are due (high, attempt 0, run_at set by their step) and
                // sort after the action's job, whose run_at went back.
                #expect(try await world.int("""
                    SELECT count(*) FROM queue.jobs WHERE kind = 'export' AND state = 'available' AND priority = 'high'
                       AND run_at <= now() AND run_at > (SELECT run_at FROM queue.jobs WHERE id = $1)
                    """, [String(bulkJob)]) == 150 * slice)
                #expect(try await world.scalar("SELECT state FROM queue.jobs WHERE id = $1", [String(bulkJob)]) == "retryable")
            }
            // The action's job again, then the re-driven jobs, oldest first (the first slice's first).
            let first = try await world.int("SELECT id FROM queue.jobs WHERE kind = 'export' AND state = 'available' ORDER BY run_at, id LIMIT 1")
            let next = try await store.claimDue(order: [.high], max: 2, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(next.map(\.job.id) == [bulkJob, JobID(first)])
            await connection.close()
        }
    }

    @Test("a cancelled bulk action stops between steps: the next step changes nothing, records when, and the job ends cancelled")
    func bulkCancelStops() async throws {
        try await withWorld { world in
            let (action, job) = try await Self.deadRetry(world, count: 50, batch: 10)
            for _ in 0..<2 {
                _ = try await world.sql.query("SELECT * FROM queue.bulk_action_step($1::bigint, 10)", [action])
            }
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 30)
            // `jobd cancel` of the running action job marks it.
            try await world.exec("UPDATE queue.jobs SET state = 'running', cancel_requested_at = now() WHERE id = $1", [String(job)])
            let step = try await world.sql.query(
                "SELECT processed, affected, done, cancelled FROM queue.bulk_action_step($1::bigint, 10)", [action]).rows.first
            #expect(step == ["20", "20", "f", "t"])
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 30)
            #expect(try await world.scalar("SELECT cancelled_at IS NOT NULL AND finished_at IS NULL FROM queue.bulk_actions WHERE id = $1", [action]) == "t")
            // The handler stops at its first step, with the snooze a cancel request turns into `cancelled`.
            let snooze = try await Self.runHandler(world, job: job, action: action, clock: ContinuousClock(), budget: .seconds(20))
            #expect(snooze?.code == "bulk_action_cancelled")
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 30)
            #expect(try await world.int("SELECT processed FROM queue.bulk_actions WHERE id = $1", [action]) == 20)
            // The audit row stays, and the console shows the action cancelled.
            try await withConsole(world, try Self.authSettings()) { console in
                let page = try await console.request("GET", "/bulk/\(action)", auth: Self.basic(Self.bob))
                #expect(page.body.contains("<span id=\"bulk-status\">cancelled</span>"))
                #expect(!page.body.contains("http-equiv=\"refresh\""))
                let api = try console.json(try await console.request("GET", "/api/v1/bulk/\(action)", auth: Self.basic(Self.alice)))
                #expect(api["requested_by"] as? String == "alice")
                #expect(api["cancelled_at"] is String)
                #expect(api["processed"] as? Int == 20)
            }
        }
    }
}
