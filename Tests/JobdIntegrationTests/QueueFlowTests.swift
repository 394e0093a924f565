import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
import Testing

/// End-to-end behaviour of the queue against real PostgreSQL and Redis.
/// Serialized: one test flushes Redis, and the machine has two cores anyway.
@Suite("Queue flow", .serialized)
struct QueueFlowTests {
    @Test("a plain SQL INSERT with defaults is run to completion")
    func plainInsert() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{}')")
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            let row = try await world.sql.query("SELECT priority, state, max_attempts, attempt FROM queue.jobs ORDER BY id LIMIT 1")
            #expect(row.rows.first == ["normal", "available", "20", "0"])
            try await world.running([world.makeDaemon(world.configuration())]) {
                try await world.waitForState("completed", count: 2)
            }
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE attempt = 1 AND finished_at IS NOT NULL") == 2)
        }
    }

    @Test("2,000 jobs at mixed priorities all complete, each exactly once")
    func mixedPriorities() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload, priority)
                SELECT 'noop', '{}', (ARRAY['high','normal','low'])[1 + g % 3] FROM generate_series(1, 2000) g
                """)
            try await world.running([world.makeDaemon(world.configuration { $0.workers = .shared(32) })]) {
                try await world.waitForState("completed", count: 2000, timeout: 60)
            }
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE attempt <> 1") == 0)
            #expect(try await world.int("SELECT count(DISTINCT priority) FROM queue.completed_jobs") == 3)
        }
    }

    @Test("bad priorities are rejected by the CHECK constraint with a clear error")
    func priorityCheck() async throws {
        try await withWorld { world in
            await #expect {
                try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('noop', 'urgent')")
            } throws: { error in
                let pg = error as? PostgresError
                return pg?.sqlState == "23514" && pg?.constraint == "jobs_priority_check"
            }
        }
    }

    @Test("a scheduled job waits for run_at, then runs")
    func scheduled() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', now() + interval '1.5 seconds')")
            try await world.running([world.makeDaemon(world.configuration())]) {
                try await Task.sleep(for: .milliseconds(700))
                #expect(try await world.count(state: "available") == 1)
                try await world.waitForState("completed", count: 1, timeout: 10)
            }
            // It started no earlier than it was due.
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE started_at >= run_at") == 1)
        }
    }

    @Test("strict priority: with one worker, high runs before normal before low")
    func priorityOrder() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority) SELECT 'noop', 'low' FROM generate_series(1, 5);
                """)
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'noop', 'normal' FROM generate_series(1, 5)")
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'noop', 'high' FROM generate_series(1, 5)")
            let config = world.configuration {
                $0.workers = .shared(1)
                $0.priorityMode = .strict
            }
            try await world.running([world.makeDaemon(config)]) {
                try await world.waitForState("completed", count: 15)
            }
            let order = try await world.sql.query("SELECT priority FROM queue.completed_jobs ORDER BY started_at, id")
            #expect(order.rows.map { $0[0] ?? "" } == Array(repeating: "high", count: 5) + Array(repeating: "normal", count: 5) + Array(repeating: "low", count: 5))
        }
    }

    @Test("transient failures retry with backoff, then succeed; the error history is kept")
    func retriesWithBackoff() async throws {
        try await withWorld { world in
            try await world.exec(#"INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{"fail_attempts": 2}')"#)
            let config = world.configuration { $0.backoff = RetryBackoff(base: .milliseconds(300), maximum: .milliseconds(600), jitter: 0) }
            try await world.running([world.makeDaemon(config)]) {
                try await world.waitForState("completed", count: 1, timeout: 15)
            }
            #expect(try await world.int("SELECT attempt FROM queue.completed_jobs") == 3)
            #expect(try await world.int("SELECT jsonb_array_length(errors) FROM queue.completed_jobs") == 2)
            // Backoff without jitter: 0.3 s after attempt 1, 0.6 s after attempt 2.
            let gap = try await world.scalar("""
                SELECT extract(epoch FROM (errors->1->>'at')::timestamptz - (errors->0->>'at')::timestamptz) FROM queue.completed_jobs
                """)
            #expect((Double(gap ?? "") ?? 0) >= 0.3)
        }
    }

    @Test("spent jobs are dead-lettered with their history, then re-driven")
    func deadLetterAndRedrive() async throws {
        try await withWorld { world in
            try await world.exec(#"""
                INSERT INTO queue.jobs (kind, payload, max_attempts) SELECT 'noop', '{"fail": true}', 2 FROM generate_series(1, 3)
                """#)
            let daemon = world.makeDaemon(world.configuration())
            try await world.running([daemon]) {
                try await world.waitForState("dead", count: 3)
            }
            let letter = try await world.sql.query("""
                SELECT attempts, reason, jsonb_array_length(errors), errors->0->>'error', errors->1->>'attempt' FROM queue.dead_letters LIMIT 1
                """)
            #expect(letter.rows.first == ["2", "noop_fail", "2", "noop asked to fail (attempt 1)", "2"])
            #expect(world.logs.messages("job dead-lettered").count == 3)

            // Re-drive after fixing the payload: attempts reset, the job completes.
            try await world.exec("UPDATE queue.jobs SET payload = '{}'")
            let admin = QueueAdmin(connection: world.sql)
            let ids = try await admin.retryDeadLetters(ids: nil)
            #expect(ids.count == 3)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'available' AND attempt = 0") == 3)
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
            try await world.running([world.makeDaemon(world.configuration())]) {
                try await world.waitForState("completed", count: 3)
            }
        }
    }

    @Test("permanent failures, unknown kinds, bad and oversized payloads are dead-lettered on the first attempt")
    func poisonedInput() async throws {
        try await withWorld { world in
            try await world.exec(#"""
                INSERT INTO queue.jobs (kind, payload) VALUES
                    ('noop', '{"permanent": true}'),
                    ('no.such.kind', '{}'),
                    ('noop', '{"sleep_ms": "soon"}'),
                    ('noop', '{"typo": 1}'),
                    ('noop', jsonb_build_object('blob', repeat('x', 5000)))
                """#)
            let config = world.configuration { $0.maxPayloadBytes = 1000 }
            try await world.running([world.makeDaemon(config)]) {
                try await world.waitForState("dead", count: 5)
            }
            let reasons = try await world.sql.query("SELECT reason, attempts FROM queue.dead_letters ORDER BY job_id")
            #expect(reasons.rows.map { $0[0] ?? "" } == [
                "noop_permanent", "unknown_kind", "payload_invalid", "payload_invalid", "payload_too_large",
            ])
            #expect(reasons.rows.allSatisfy { $0[1] == "1" })
            let unknown = try await world.scalar("SELECT last_error FROM queue.dead_letters WHERE kind = 'no.such.kind'")
            #expect(unknown?.contains("no handler for kind \"no.such.kind\"") == true)
        }
    }

    @Test("QueueAdmin.enqueue puts a delayed job's run_at its delay after now(), to the microsecond; no delay is due at once")
    func enqueueDelay() async throws {
        try await withWorld { world in
            let admin = QueueAdmin(connection: world.sql)
            var request = QueueAdmin.EnqueueRequest(kind: "noop")
            request.delay = .milliseconds(90_500) + .microseconds(250)
            let delayed = try await admin.enqueue(request)
            request.delay = .zero
            let due = try await admin.enqueue(request)
            // created_at is the same transaction's now() that the delay is added to.
            let offsets = try await world.sql.query(
                "SELECT id, extract(epoch FROM run_at - created_at)::text FROM queue.jobs WHERE id = ANY($1::bigint[]) ORDER BY id",
                ["{\(delayed),\(due)}"]).rows
            #expect(offsets == [["\(delayed)", "90.500250"], ["\(due)", "0.000000"]])
        }
    }

    @Test("unique keys: a second plain INSERT is rejected, queue.enqueue returns the holder, a finished job frees the key")
    func uniqueKeys() async throws {
        try await withWorld { world in
            let first = try await world.scalar("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'order-42')")
            await #expect {
                try await world.exec("INSERT INTO queue.jobs (kind, unique_key) VALUES ('noop', 'order-42')")
            } throws: { error in
                (error as? PostgresError)?.sqlState == "23505"
            }
            let again = try await world.scalar("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'order-42')")
            #expect(first != nil && first == again)
            // The same key on another kind is independent.
            try await world.exec("INSERT INTO queue.jobs (kind, unique_key) VALUES ('other', 'order-42')")
            try await world.exec("UPDATE queue.jobs SET state = 'completed' WHERE id = $1::bigint", [first])
            let third = try await world.scalar("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'order-42')")
            #expect(third != first)
        }
    }

    @Test("an idle daemon picks up a new job by NOTIFY, long before its poll interval")
    func notifyWakesPromoter() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.pollInterval = .seconds(30) }
            try await world.running([world.makeDaemon(config)]) {
                try await Task.sleep(for: .milliseconds(500))  // let it go idle
                try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                try await world.waitForState("completed", count: 1, timeout: 20)
            }
            let latency = try await world.scalar("SELECT extract(epoch FROM started_at - created_at) FROM queue.completed_jobs")
            // A third of the 30 s poll interval: only NOTIFY explains it (generous, so a
            // loaded host cannot break it).
            #expect((Double(latency ?? "") ?? 99) < 10)
        }
    }
}
