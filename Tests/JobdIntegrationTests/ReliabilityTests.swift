import Foundation
import JobdAnalytics
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdRedis
import JobdTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The mechanisms behind the reliability promise (issue 5), each against the real
/// servers: the attempts ledger, input limits, the poison-pill isolation, the
/// reconciler's and rescuer's independence, and dead-connection bounds. The fault
/// suite (scripts/faults) exercises the same mechanisms on a real `jobd run`.
@Suite("Reliability", .serialized)
struct ReliabilityTests {
    @Test("the attempts ledger gets one row per attempt, written when it ends by the completion or the rescuer")
    func attemptsLedger() async throws {
        try await withWorld { world in
            try await world.exec(#"""
                INSERT INTO queue.jobs (kind, payload, max_attempts) VALUES
                    ('noop', '{}', 20),
                    ('noop', '{"fail_attempts": 1}', 20),
                    ('noop', '{"fail": true}', 2)
                """#)
            // A job whose daemon vanished mid-attempt, for the rescuer.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, attempt, leased_by, lease_expires_at, run_at, started_at)
                VALUES ('noop', 'running', 1, 'vanished', now() - interval '1 second', '2026-01-02 03:04:00+00',
                        '2026-01-02 03:04:05+00')
                """)
            try await world.running([world.makeDaemon(world.configuration(), id: "ledger-daemon")]) {
                try await waitUntil(timeout: 20, "all four finished") {
                    try await world.int("SELECT (SELECT count(*) FROM queue.jobs WHERE state = 'dead') + (SELECT count(*) FROM queue.completed_jobs)") == 4
                }
            }
            // Each row names the daemon that held the lease and when the attempt started;
            // a completion's start is the job row's started_at at the time (the last
            // attempt's still is).
            let rows = try await world.sql.query("""
                WITH jobs AS (  -- completed ones are the ledger's (the completion deletes the row)
                    SELECT id, attempt, started_at FROM queue.jobs
                    UNION ALL SELECT id, attempt, started_at FROM queue.completed_jobs
                )
                SELECT a.job_id - (SELECT min(id) FROM jobs), a.attempt, a.event, coalesce(a.outcome, ''),
                       coalesce(a.error_code, ''), coalesce(a.daemon, ''), a.run_seconds IS NOT NULL,
                       CASE WHEN a.started_at IS NULL THEN 'none'
                            WHEN a.started_at = '2026-01-02 03:04:05+00' THEN 'vanished start'
                            WHEN a.started_at > a.at OR a.started_at < now() - interval '1 minute' THEN 'wrong'
                            WHEN a.attempt = j.attempt AND a.started_at <> j.started_at THEN 'not the job row''s'
                            ELSE 'ok' END,
                       coalesce(a.kind, ''),
                       CASE WHEN a.queue_wait_seconds = 5 THEN '5 s' WHEN a.queue_wait_seconds >= 0 THEN 'ok' ELSE 'none' END
                  FROM queue.attempts a JOIN jobs j ON j.id = a.job_id
                 ORDER BY a.job_id, a.at, a.attempt, a.event DESC
                """)
            let ledger = rows.rows.map { $0.map { $0 ?? "" } }
            #expect(ledger == [
                ["0", "1", "end", "completed", "", "ledger-daemon", "t", "ok", "noop", "ok"],
                ["1", "1", "end", "retry", "noop_fail", "ledger-daemon", "t", "ok", "noop", "ok"],
                ["1", "2", "end", "completed", "", "ledger-daemon", "t", "ok", "noop", "ok"],
                ["2", "1", "end", "retry", "noop_fail", "ledger-daemon", "t", "ok", "noop", "ok"],
                ["2", "2", "end", "dead", "noop_fail", "ledger-daemon", "t", "ok", "noop", "ok"],
                // The rescuer ends the vanished attempt 1, naming its daemon and start;
                // attempt 2 runs here.
                ["3", "1", "end", "lease_expired", "lease_expired", "vanished", "f", "vanished start", "noop", "5 s"],
                ["3", "2", "end", "completed", "", "ledger-daemon", "t", "ok", "noop", "ok"],
            ])
        }
    }

    @Test("a drain of N jobs leaves exactly N ledger rows; a running attempt is on the job row, not in the ledger")
    func ledgerRowPerDrainedJob() async throws {
        try await withWorld { world in
            let jobs = 300
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, \(jobs))")
            try await world.running([world.makeDaemon(world.configuration(), id: "drainer")]) {
                try await waitUntil(timeout: 30, "all completed") {
                    try await world.count(state: "completed") == jobs
                }
            }
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == jobs)
            #expect(try await world.int("""
                SELECT count(*) FROM queue.attempts a
                 WHERE a.event = 'end' AND a.outcome = 'completed' AND a.daemon = 'drainer'
                   AND a.attempt = 1 AND a.started_at <= a.at AND a.kind = 'noop' AND a.queue_wait_seconds >= 0
                   AND a.enqueued_at IS NOT NULL  -- the completed job's row (its queue.jobs row is deleted)
                """) == jobs)

            // Claimed and not yet ended: nothing in the ledger; the job page's timeline
            // shows the attempt from the job row, then start and end once it ended.
            let store = QueueStore(connection: world.sql)
            let admin = QueueAdmin(connection: world.sql)
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            let id = try #require(JobID(try await world.scalar("SELECT max(id) FROM queue.jobs") ?? ""))
            let claimed = try #require(try await store.claim(ids: [id], daemon: "holder", lease: .seconds(30), maxPayloadBytes: 1000).first)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE job_id = \(id)") == 0)
            let running = try await admin.attempts(of: id)
            #expect(running.map { [String($0.attempt), $0.event, $0.daemon ?? ""] } == [["1", "start", "holder"]])
            let startedAt = try await world.scalar("SELECT started_at::text FROM queue.jobs WHERE id = \(id)")
            #expect(running.first?.at == startedAt)
            #expect(try await store.complete([AttemptCompletion(fence: claimed.job.fence, outcome: .completed)], daemon: "holder")
                    == [claimed.job.fence])
            let ended = try await admin.attempts(of: id)
            #expect(ended.map { [String($0.attempt), $0.event, $0.daemon ?? "", $0.outcome ?? ""] }
                    == [["1", "start", "holder", ""], ["1", "end", "holder", "completed"]])
            #expect(ended.first?.at == startedAt)
        }
    }

    @Test("a refused (stale) completion writes nothing to the ledger")
    func staleCompletionLeavesNoLedgerRow() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            let id = try #require(JobID(try await world.scalar("SELECT id FROM queue.jobs") ?? ""))
            let first = try await store.claim(ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000)
            try await world.exec("UPDATE queue.jobs SET lease_expires_at = now() - interval '1 second'")
            _ = try await store.rescueExpiredLeases(maxRescues: 3)
            _ = try await store.claim(ids: [id], daemon: "b", lease: .seconds(30), maxPayloadBytes: 1000)
            let stale = try #require(first.first?.job.fence)
            let refused = try await store.complete([AttemptCompletion(fence: stale, outcome: .completed)])
            #expect(refused.isEmpty)
            let events = try await world.sql.query(
                "SELECT attempt, event, coalesce(outcome, ''), daemon FROM queue.attempts ORDER BY at, attempt, event DESC")
            #expect(events.rows == [["1", "end", "lease_expired", "a"]])
        }
    }

    @Test("the enqueue-time payload limit refuses oversized INSERTs, UPDATEs and queue.enqueue calls")
    func enqueuePayloadLimit() async throws {
        try await withWorld { world in
            #expect(try await world.int("SELECT max_payload_bytes FROM queue.limits") == 1_048_576)
            let refused = [
                "INSERT INTO queue.jobs (kind, payload) VALUES ('noop', jsonb_build_object('x', repeat('a', 1048576)))",
                // One oversized row refuses the whole statement.
                """
                INSERT INTO queue.jobs (kind, payload)
                SELECT 'noop', CASE WHEN g = 500 THEN jsonb_build_object('x', repeat('a', 2000000)) ELSE '{}' END
                  FROM generate_series(1, 1000) g
                """,
                "SELECT queue.enqueue('noop', jsonb_build_object('x', repeat('a', 1048576)))",
            ]
            for statement in refused {
                try await expectPayloadLimit(world, statement)
            }
            #expect(try await world.int("SELECT count(*) FROM queue.jobs") == 0)
            // The operator's knob.
            try await world.exec("UPDATE queue.limits SET max_payload_bytes = 100")
            try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', jsonb_build_object('x', repeat('a', 80)))")
            try await expectPayloadLimit(world, "INSERT INTO queue.jobs (kind, payload) VALUES ('noop', jsonb_build_object('x', repeat('a', 100)))")
            try await expectPayloadLimit(world, "UPDATE queue.jobs SET payload = jsonb_build_object('x', repeat('a', 100))")
            // The refused UPDATE is rolled back: the stored payload is the 80-byte one.
            #expect(try await world.int("SELECT octet_length(payload::text) FROM queue.jobs") == 89)
            // Below the stored payload's size, the limit binds only statements that assign
            // payload (even to itself); the daemon's own updates never do, so the row
            // trigger stays out of their way.
            try await world.exec("UPDATE queue.limits SET max_payload_bytes = 50")
            try await expectPayloadLimit(world, "UPDATE queue.jobs SET payload = payload")
            try await world.exec("UPDATE queue.jobs SET state = 'cancelled'")
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled'") == 1)
        }
    }

    @Test("the UPDATE payload check locks no row: an UPDATE that does not assign payload writes one WAL record a row")
    func payloadCheckWritesNoLock() async throws {
        try await withWorld { world in
            // Ten rows on one page with room to spare: each update of an unindexed column
            // is a heap-only update, one WAL record. A BEFORE ROW UPDATE trigger, even one
            // whose column list excludes the statement, would lock each row first (a
            // Heap/LOCK record, about 55 bytes): twenty records.
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, 10)")
            let plan = try await world.plan(
                "EXPLAIN (ANALYZE, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF) UPDATE queue.jobs SET last_error = 'x'")
            #expect(walRecords(plan) == 10, "\(plan)")
        }
    }

    @Test("a dead letter follows its job by one trigger call a statement: deleted, completed or truncated jobs take theirs; none is written for a missing job")
    func deadLettersFollowJobs() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, 6)")
            let ids = try await world.sql.query("SELECT id FROM queue.jobs ORDER BY id").rows.compactMap { JobID($0[0] ?? "") }
            try #require(ids.count == 6)
            let list = ids.map(\.description).joined(separator: ",")
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'test' FROM queue.jobs WHERE id IN (\(list))
                """)
            // Two jobs deleted, with the dead letter of a third between them kept: one call
            // of the statement trigger, no per-row referential trigger.
            let plan = try await world.plan(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM queue.jobs WHERE id IN (\(ids[0]), \(ids[2]))")
            #expect(plan.contains("Trigger jobs_delete_dead_letters: calls=1"), "\(plan)")
            #expect(!plan.contains("Trigger for constraint"), "\(plan)")
            let left = try await world.sql.query("SELECT job_id FROM queue.dead_letters ORDER BY job_id").rows.compactMap { JobID($0[0] ?? "") }
            #expect(left == [ids[1], ids[3], ids[4], ids[5]])

            // The completion deletes a completed job's row, and its dead letter with it.
            let claimed = try await store.claim(ids: [ids[3]], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000)
            let fence = try #require(claimed.first?.job.fence)
            #expect(try await store.complete([AttemptCompletion(fence: fence, outcome: .completed)]).count == 1)
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters WHERE job_id = \(ids[3])") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 3)

            // No dead letter for a job that is not there, and none moved to another job.
            for statement in [
                "INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason) VALUES (\(ids[0]), 'noop', '{}', 'normal', 1, 'x')",
                "UPDATE queue.dead_letters SET job_id = \(ids[2]) WHERE job_id = \(ids[4])",
            ] {
                do {
                    try await world.exec(statement)
                    Issue.record("allowed: \(statement)")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "23503" && error.message.contains("dead letter"), "\(error)")
                }
            }

            try await world.exec("TRUNCATE queue.jobs")
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
            // Both tables in one TRUNCATE, as `jobd bench` and scripts empty them.
            let last = try #require(JobID(try await world.scalar("INSERT INTO queue.jobs (kind) VALUES ('noop') RETURNING id") ?? ""))
            try await world.exec("INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason) VALUES (\(last), 'noop', '{}', 'normal', 1, 'x')")
            try await world.exec("TRUNCATE queue.jobs, queue.dead_letters")
            #expect(try await world.int("SELECT count(*) FROM queue.jobs") + (try await world.int("SELECT count(*) FROM queue.dead_letters")) == 0)
        }
    }

    @Test("hostile payloads are refused at enqueue or dead-lettered on the first attempt with a reason code")
    func hostilePayloads() async throws {
        try await withWorld { world in
            // What PostgreSQL itself refuses to store: NUL, broken surrogates, invalid UTF-8.
            for literal in [#"{"a": "\u0000"}"#, #"{"a": "\ud800"}"#] {
                await #expect(throws: PostgresError.self) {
                    try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)", [literal])
                }
            }
            await #expect(throws: PostgresError.self) {
                try await world.exec(#"INSERT INTO queue.jobs (kind, payload) VALUES ('noop', convert_from('\x7b2261223a22ff227d', 'UTF8')::jsonb)"#)
            }
            let deep = "{\"a\": " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "}"
            let wide = "{" + (0..<5_000).map { "\"k\($0)\": \($0)" }.joined(separator: ", ") + "}"
            let hostile: [(kind: String, payload: String, reason: String)] = [
                ("noop", deep, "payload_too_deep"),
                ("noop", wide, "payload_invalid"),
                ("noop", #"{"sleep_ms": "1; DROP TABLE queue.jobs; --"}"#, "payload_invalid"),
                ("noop", #"{"'; DELETE FROM queue.jobs; --": true}"#, "payload_invalid"),
                ("noop'); DROP TABLE queue.jobs; --", "{}", "unknown_kind"),
                ("noop", #"{"sleep_ms": 1e308}"#, "payload_invalid"),
                ("noop", #"{"abort": true}"#, "payload_invalid"),  // only JOBD_TEST_FAULTS=1 knows it
                ("noop", #"{"blob": "\#(String(repeating: "x", count: 300_000))"}"#, "payload_too_large"),
            ]
            for job in hostile {
                try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ($1, $2::jsonb)", [job.kind, job.payload])
            }
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 50)")
            let config = world.configuration { $0.maxPayloadBytes = 200_000 }
            try await world.running([world.makeDaemon(config)]) {
                try await world.waitForState("dead", count: hostile.count)
                try await world.waitForState("completed", count: 50)
            }
            let reasons = try await world.sql.query("SELECT reason, attempts FROM queue.dead_letters ORDER BY job_id")
            #expect(reasons.rows.map { $0[0] ?? "" } == hostile.map(\.reason))
            #expect(reasons.rows.allSatisfy { $0[1] == "1" })
            #expect(try await world.scalar("SELECT to_regclass('queue.jobs')::text") == "queue.jobs")
        }
    }

    @Test("a rescued job (a poison-pill suspect) runs alone: nothing else is in flight beside it")
    func suspectsRunAlone() async throws {
        try await withWorld { world in
            let probe = ConcurrencyProbe()
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'probe' FROM generate_series(1, 40)")
            // Rescued twice: suspects under the default JOBD_MAX_RESCUES = 3.
            try await world.exec("INSERT INTO queue.jobs (kind, rescues) SELECT 'probe', 2 FROM generate_series(1, 4)")
            // Rescued once: not yet suspects; they run beside the others.
            try await world.exec("INSERT INTO queue.jobs (kind, rescues) SELECT 'probe', 1 FROM generate_series(1, 4)")
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'probe' FROM generate_series(1, 40)")
            let config = world.configuration { $0.workers = .shared(8) }
            try await world.running([world.makeDaemon(config, handlers: [probe])]) {
                try await world.waitForState("completed", count: 88, timeout: 60)
            }
            let runs = probe.runs
            #expect(runs.count == 88)
            let suspects = runs.filter { $0.rescues >= 2 }
            #expect(suspects.count == 4)
            for suspect in suspects {
                let overlapping = runs.filter { $0.id != suspect.id && $0.start < suspect.end && suspect.start < $0.end }
                #expect(overlapping.map(\.id) == [], "suspect \(suspect.id) ran beside other jobs")
            }
            // Bystanders did run concurrently with each other (the pool was not serialised).
            #expect(probe.maxConcurrent > 1)
            #expect(world.logs.messages("running a rescued job alone").count == 4)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE event = 'solo'") == 4)
            let onceRescued = runs.filter { $0.rescues == 1 }
            #expect(onceRescued.contains { once in
                runs.contains { $0.id != once.id && $0.start < once.end && once.start < $0.end }
            }, "a job rescued once is not isolated")
        }
    }

    @Test("rescues count up to max_rescues - 1; beyond, only when the lost attempt ran alone")
    func poisonCountsSoloRescues() async throws {
        try await withWorld { world in
            // Attempts lost with their daemon. With max_rescues 3, jobs rescued twice are
            // suspects: of those, one was waiting for its turn (no solo row), one ran alone.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, attempt, rescues, leased_by, lease_expires_at) VALUES
                    ('noop', 'running', 1, 0, 'crashed', now() - interval '1 second'),
                    ('noop', 'running', 2, 1, 'crashed', now() - interval '1 second'),
                    ('noop', 'running', 3, 2, 'crashed', now() - interval '1 second'),
                    ('noop', 'running', 3, 2, 'crashed', now() - interval '1 second')
                """)
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, daemon)
                SELECT id, attempt, 'solo', 'crashed' FROM queue.jobs WHERE id = (SELECT max(id) FROM queue.jobs)
                """)
            let rescued = try await QueueStore(connection: world.sql).rescueExpiredLeases(maxRescues: 3)
            #expect(rescued.count == 4)
            let rows = try await world.sql.query("SELECT state, rescues FROM queue.jobs ORDER BY id")
            #expect(rows.rows == [["available", "1"], ["available", "2"], ["available", "2"], ["dead", "3"]])
            #expect(try await world.scalar("SELECT reason FROM queue.dead_letters") == "poison")
            // With max_rescues 2 a job rescued once is already a suspect: its next rescue
            // needs a solo run to count. Jobs already at the (lowered) limit are dead.
            try await world.exec("""
                UPDATE queue.jobs SET state = 'running', lease_expires_at = now() - interval '1 second'
                 WHERE state = 'available'
                """)
            _ = try await QueueStore(connection: world.sql).rescueExpiredLeases(maxRescues: 2)
            let again = try await world.sql.query("SELECT state, rescues FROM queue.jobs ORDER BY id LIMIT 3")
            #expect(again.rows == [["available", "1"], ["dead", "2"], ["dead", "2"]])
        }
    }

    @Test("the first maintenance pass reports a Redis without an epoch (flushed while no daemon ran), and changes nothing in Postgres")
    func epochMissingOnFirstPass() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 5)")
            let daemon = world.makeDaemon(world.configuration())
            try await daemon.maintenance.runOnce(epochs: EpochTracker())
            #expect(try await world.count(state: "available") == 5)
            #expect(world.logs.messages("redis lost its data; dispatch rebuilt from postgres").count == 1)
            // With the epoch in place, a second daemon's first pass reports nothing.
            try await world.makeDaemon(world.configuration(), id: "second").maintenance.runOnce(epochs: EpochTracker())
            #expect(world.logs.messages("redis lost its data; dispatch rebuilt from postgres").count == 1)
        }
    }

    @Test("with Redis unreachable, maintenance still rescues expired leases (and reports the Redis error)")
    func rescuerRunsWithoutRedis() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, attempt, leased_by, lease_expires_at)
                VALUES ('noop', 'running', 1, 'vanished', now() - interval '1 second')
                """)
            let deadPort = try closedLoopbackPort()
            let config = world.configuration { $0.redisURL = RedisURL(host: "127.0.0.1", port: deadPort) }
            let daemon = world.makeDaemon(config)
            await #expect(throws: RedisError.self) { try await daemon.maintenance.runOnce() }
            #expect(try await world.count(state: "available") == 1)
            #expect(daemon.stats.snapshot.postgresHealthy && !daemon.stats.snapshot.redisHealthy)
        }
    }

    @Test("a server that accepts but never answers is given up on within the command timeout")
    func blackholedServersTimeOut() async throws {
        let hole = try Blackhole()
        defer { hole.close() }
        let pg = PostgresConnection(
            conninfo: "host=127.0.0.1 port=\(hole.port) dbname=x user=x connect_timeout=60",
            name: "blackhole", commandTimeout: 1, logger: .silent)
        var started = ContinuousClock.now
        await #expect(throws: PostgresError.self) { try await pg.query("SELECT 1") }
        // Given up on by the 1 s command timeout, not libpq's 60 s connect_timeout; generous
        // between the two so a loaded host cannot break it.
        #expect(started.duration(to: .now) < .seconds(20))
        let redis = RedisConnection(
            url: RedisURL(host: "127.0.0.1", port: hole.port), name: "blackhole", commandTimeout: .seconds(1), logger: .silent)
        started = .now
        await #expect(throws: RedisError.self) { _ = try await redis.command(["PING"]) }
        #expect(started.duration(to: .now) < .seconds(20))
    }
}

// MARK: - Least privilege

@Suite("Roles", .serialized)
struct RoleTests {
    @Test("the migration's roles exist as NOLOGIN groups, and re-running it is harmless")
    func rolesExist() async throws {
        try await withWorld { world in
            let roles = try await world.sql.query("""
                SELECT rolname, rolcanlogin FROM pg_roles
                 WHERE rolname IN ('jobd_enqueuer', 'jobd_daemon', 'jobd_reporting') ORDER BY rolname
                """)
            #expect(roles.rows == [["jobd_daemon", "f"], ["jobd_enqueuer", "f"], ["jobd_reporting", "f"]])
            let sql = try #require(Migration.embedded.first { $0.version == 3 }).sql
            try await world.sql.executeScript("BEGIN; \(sql); COMMIT;")
        }
    }

    @Test("the enqueuer may insert and call queue.enqueue, and read nothing: no payloads, dead letters or history")
    func enqueuer() async throws {
        try await withRole("jobd_enqueuer") { world, sql, _ in
            try await sql.query("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{\"secret\": 1}')")
            let id = try await sql.query("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'k-1')").rows.first?.first ?? nil
            let again = try await sql.query("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'k-1')").rows.first?.first ?? nil
            #expect(id != nil && id == again)
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'test' FROM queue.jobs LIMIT 1
                """)
            for statement in [
                "SELECT payload FROM queue.jobs",
                "SELECT count(*) FROM queue.jobs",
                "INSERT INTO queue.jobs (kind) VALUES ('noop') RETURNING payload",
                "SELECT * FROM queue.dead_letters",
                "SELECT * FROM queue.attempts",
                "SELECT * FROM queue.daemons",
                "INSERT INTO queue.jobs (kind, state) VALUES ('noop', 'completed')",
                "INSERT INTO queue.jobs (kind, attempt) VALUES ('noop', 5)",
                "UPDATE queue.jobs SET state = 'dead'",
                "DELETE FROM queue.jobs",
                "UPDATE queue.limits SET max_payload_bytes = 268435456",
                "CREATE TABLE queue.mine (x int)",
            ] {
                try await expectDenied(sql, statement)
            }
            // The payload limit applies to the enqueuer too (the trigger reads the limit as it).
            await #expect(throws: PostgresError.self) {
                try await sql.query("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', jsonb_build_object('x', repeat('a', 1048576)))")
            }
        }
    }

    @Test("a daemon running as jobd_daemon does its whole job: claims, retries, dead letters, rescues, registry, ledger")
    func daemonRole() async throws {
        try await withRole("jobd_daemon") { world, sql, login in
            try await world.sql.executeScript(#"""
                INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, 30);
                INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{"fail_attempts": 1}'), ('noop', '{"permanent": true}');
                INSERT INTO queue.jobs (kind, state, attempt, max_attempts, rescues, leased_by, lease_expires_at) VALUES
                    ('noop', 'running', 1, 20, 0, 'vanished', now() - interval '1 second'),
                    ('noop', 'running', 2, 20, 2, 'vanished', now() - interval '1 second'),
                    ('noop', 'running', 2, 2, 0, 'vanished', now() - interval '1 second');
                """#)
            #expect(try await Migrator(connection: sql, logger: .silent).pending(tiers: ["queue"]).isEmpty)
            var config = world.configuration()
            config.databaseURL = world.database.url + "?user=\(login)"
            try await world.running([world.makeDaemon(config)]) {
                try await waitUntil(timeout: 30, "all finished") {
                    try await world.int("SELECT (SELECT count(*) FROM queue.jobs WHERE state = 'dead') + (SELECT count(*) FROM queue.completed_jobs)") == 35
                }
                #expect(try await world.int("SELECT count(*) FROM queue.daemons") == 1)
            }
            #expect(try await world.count(state: "completed") == 33)
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 2)
            // The suspect ran alone, which the daemon role recorded in the ledger.
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE event = 'solo'") == 1)
            // One row per attempt: 30 completed, a retry and its completion, a permanent
            // failure, three lost attempts (lease_expired) and the two of them run again.
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE event = 'end'") == 38)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 39)
            let failures = world.logs.all.filter { $0.level >= .warning && ($0.metadata[LogKey.error] ?? "").contains("permission denied") }
            #expect(failures.isEmpty, "\(failures.map(\.message))")
            for statement in [
                "INSERT INTO queue.jobs (kind) VALUES ('noop')",
                "DELETE FROM queue.jobs",
                "UPDATE queue.jobs SET payload = '{}'",
                "UPDATE queue.jobs SET kind = 'other'",
                "DELETE FROM queue.attempts",
                "UPDATE queue.attempts SET outcome = 'completed'",
                "DELETE FROM queue.dead_letters",
                "INSERT INTO jobd.migrations (version, name, checksum) VALUES (999, 'x', 'x')",
                "CREATE TABLE queue.mine (x int)",
                "TRUNCATE queue.jobs",
            ] {
                try await expectDenied(sql, statement)
            }
        }
    }

    @Test("the reporting role reads every queue table but no payload, and writes none")
    func reporting() async throws {
        try await withRole("jobd_reporting") { world, sql, _ in
            try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{}')")
            for table in ["queue.attempts", "queue.daemons", "queue.limits", "queue.internal_kinds"] {
                _ = try await sql.query("SELECT * FROM \(table) LIMIT 1")
            }
            _ = try await sql.query("SELECT id, kind, state, priority, run_at, attempt, last_error, errors FROM queue.jobs LIMIT 1")
            _ = try await sql.query("SELECT job_id, kind, reason, attempts, dead_at FROM queue.dead_letters LIMIT 1")
            for statement in [
                "SELECT payload FROM queue.jobs",
                "SELECT * FROM queue.jobs",
                "SELECT payload FROM queue.dead_letters",
                "INSERT INTO queue.jobs (kind) VALUES ('noop')",
                "UPDATE queue.jobs SET state = 'dead'",
                "DELETE FROM queue.jobs",
                "INSERT INTO queue.attempts (job_id, attempt, event) VALUES (1, 1, 'start')",
                "SELECT queue.enqueue('noop')",
            ] {
                try await expectDenied(sql, statement)
            }
        }
    }
}

/// `statement` must fail with SQLSTATE 42501 (insufficient_privilege).
private func expectDenied(_ sql: PostgresConnection, _ statement: String) async throws {
    do {
        try await sql.query(statement)
        Issue.record("allowed, but must be denied: \(statement)")
    } catch let error as PostgresError {
        #expect(error.sqlState == "42501", "\(statement): \(error)")
    }
}

/// The WAL records of an `EXPLAIN (ANALYZE, WAL)` plan's top node: the first
/// `WAL: records=N` line; nil when the plan has none (the statement wrote no WAL).
func walRecords(_ plan: String) -> Int? {
    guard let range = plan.firstRange(of: "WAL: records=") else { return nil }
    return Int(plan[range.upperBound...].prefix(while: \.isNumber))
}

/// `statement` must be refused by the payload-size trigger (SQLSTATE 54000).
private func expectPayloadLimit(_ world: QueueWorld, _ statement: String) async throws {
    do {
        try await world.exec(statement)
        Issue.record("allowed, but over the payload limit: \(statement.prefix(80))")
    } catch let error as PostgresError {
        #expect(error.sqlState == "54000" && error.message.contains("over the limit of"), "\(error)")
    }
}

/// Runs `body` with a fresh world and a connection as a new login role that is a
/// member of `group` (and nothing else); the role is dropped afterwards.
private func withRole(_ group: String, _ body: (QueueWorld, PostgresConnection, String) async throws -> Void) async throws {
    try await withWorld { world in
        let login = "jobd_test_login_\(UInt32.random(in: 0...UInt32.max))"
        try await world.sql.executeScript("CREATE ROLE \(login) LOGIN IN ROLE \(group)")
        let sql = PostgresConnection(conninfo: world.database.url + "?user=\(login)", name: "as-role", commandTimeout: 10, logger: .silent)
        do {
            try await body(world, sql, login)
        } catch {
            await sql.close()
            _ = try? await world.sql.executeScript("DROP ROLE \(login)")
            throw error
        }
        await sql.close()
        try await world.sql.executeScript("DROP ROLE \(login)")
    }
}

// MARK: - Helpers

/// Records when each job ran, to prove which ran beside which.
final class ConcurrencyProbe: JobHandler {
    struct Run: Sendable {
        var id: JobID
        var rescues: Int
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }

    let kind = "probe"
    private let state = Mutex<(runs: [Run], running: Int, maxRunning: Int)>(([], 0, 0))

    var runs: [Run] { state.withLock { $0.runs } }
    var maxConcurrent: Int { state.withLock { $0.maxRunning } }

    func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let start = ContinuousClock.now
        state.withLock {
            $0.running += 1
            $0.maxRunning = max($0.maxRunning, $0.running)
        }
        try await Task.sleep(for: .milliseconds(30))
        state.withLock {
            $0.running -= 1
            $0.runs.append(Run(id: job.id, rescues: job.rescues, start: start, end: .now))
        }
    }
}

/// A loopback port nothing listens on (bound, then closed).
func closedLoopbackPort() throws -> Int {
    let hole = try Blackhole(listen: false)
    let port = hole.port
    hole.close()
    return port
}

/// A loopback TCP socket that listens but never accepts nor answers: the kernel
/// completes the handshake, then nothing — a server behind a silent network.
final class Blackhole: Sendable {
    let fd: Int32
    let port: Int

    struct Failure: Error {}

    init(listen shouldListen: Bool = true) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, !shouldListen || listen(fd, 16) == 0 else {
            Glibc.close(fd)
            throw Failure()
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(fd) }
}

// MARK: - Queue table health and SQL hygiene

@Suite("Queue table health", .serialized)
struct QueueHealthTests {
    /// Plans of the hot statements' shapes (their WHERE and ORDER BY as in
    /// QueueStore) on a table of realistic size: each must use its index.
    @Test("the hot statements use their indexes, not a scan of queue.jobs")
    func hotStatementsUseIndexes() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority, state, finished_at)
                SELECT 'noop', (ARRAY['high','normal','low'])[1 + g % 3], 'completed', now() FROM generate_series(1, 60000) g
                """)
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority, run_at)
                SELECT 'noop', (ARRAY['high','normal','low'])[1 + g % 3], now() + g * interval '1 second'
                  FROM generate_series(1, 20000) g
                """)
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, daemon)
                SELECT id, 1, 'start', 'd' FROM queue.jobs WHERE state = 'completed'
                """)
            try await world.exec("ANALYZE queue.jobs")
            try await world.exec("ANALYZE queue.attempts")
            let shapes: [(what: String, sql: String, index: [String])] = [
                ("promoter's read", """
                    SELECT id FROM queue.jobs
                     WHERE state IN ('available', 'retryable') AND priority = 'high' AND run_at <= now()
                       AND id NOT IN (SELECT unnest('{1,2,3,4,5,6,7,8,9,10}'::bigint[]))
                     ORDER BY run_at, id LIMIT 1000
                    """, ["jobs_due_idx"]),
                ("next due", """
                    SELECT min(run_at) FROM queue.jobs WHERE state IN ('available', 'retryable') AND priority = 'normal'
                    """, ["jobs_due_idx"]),
                // Either partial index over the waiting rows serves it (jobs_waiting_kind_idx holds
                // the same rows as jobs_due_idx; the planner may pick either).
                ("backlog", """
                    SELECT count(*) FROM queue.jobs WHERE state IN ('available', 'retryable') AND run_at <= now()
                    """, ["jobs_due_idx", "jobs_waiting_kind_idx"]),
                ("claim", """
                    UPDATE queue.jobs SET state = 'running'
                     WHERE id = ANY('{1,2,3}'::bigint[])
                       AND CASE state WHEN 'available' THEN true WHEN 'retryable' THEN true ELSE false END
                       AND run_at <= now()
                    """, ["jobs_pkey"]),
                ("rescue", """
                    SELECT id FROM queue.jobs WHERE state = 'running' AND lease_expires_at < now()
                     ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED
                    """, ["jobs_lease_idx"]),
                ("solo lookup", """
                    SELECT 1 FROM queue.attempts WHERE job_id = 42 AND attempt = 1 AND event = 'solo'
                    """, ["attempts_job_idx"]),
            ]
            for shape in shapes {
                let plan = try await world.plan("EXPLAIN \(shape.sql)")
                #expect(shape.index.contains { plan.contains($0) }, "\(shape.what) does not use \(shape.index):\n\(plan)")
                #expect(!plan.contains("Seq Scan"), "\(shape.what) scans a table:\n\(plan)")
            }
            // The promoter's read itself, as its prepared statement keeps it (generic
            // plan): each lane through jobs_due_idx, the pushed ids a hashed subplan, not
            // an array walked for every row passed over, and the key a lane is read after
            // in the index condition (the scan starts there, whatever lies before it).
            try await world.exec("SET plan_cache_mode = force_generic_plan")
            try await world.exec(
                "PREPARE promote(int, int, int, text, bigint[], bigint[], bigint[], bigint, bigint, bigint, bigint, bigint, bigint) AS \(QueueStore.promoteSQL)")
            let pushed = "{" + (1...2_000).map(String.init).joined(separator: ",") + "}"
            let promote = try await world.plan(
                "EXPLAIN EXECUTE promote(1000, 1000, 1000, 'd', '{}', '\(pushed)', '{}', 0, 0, 1767225600000000, 42, 0, 0)")
            #expect(promote.components(separatedBy: "jobs_due_idx").count - 1 == 3, "promoter's read plan:\n\(promote)")
            #expect(promote.contains("hashed SubPlan") && !promote.contains("<> ALL") && !promote.contains("Seq Scan on jobs"),
                    "promoter's read plan:\n\(promote)")
            #expect(promote.split(separator: "\n").filter { $0.contains("Index Cond: ") && $0.contains("ROW(run_at, id) >") }.count == 3,
                    "promoter's read plan:\n\(promote)")
            // The idle transition's due-time reads, prepared the same way: each lane's
            // min(run_at) from the start of jobs_due_idx, the pushed ids hashed.
            try await world.exec("PREPARE next_due(bigint[], bigint[], bigint[]) AS \(QueueStore.secondsUntilNextDueSQL)")
            try await world.exec("PREPARE announce(text, bigint[], bigint[], bigint[]) AS \(QueueStore.announceIdleSQL)")
            for (what, explain) in [
                ("next due", "EXPLAIN EXECUTE next_due('{}', '\(pushed)', '{}')"),
                ("announce idle", "EXPLAIN EXECUTE announce('d', '{}', '\(pushed)', '{}')"),
            ] {
                let plan = try await world.plan(explain)
                #expect(plan.components(separatedBy: "jobs_due_idx").count - 1 == 3, "\(what) plan:\n\(plan)")
                #expect(plan.contains("hashed SubPlan") && !plan.contains("<> ALL") && !plan.contains("Seq Scan on jobs"),
                        "\(what) plan:\n\(plan)")
            }
        }
    }

    /// (finished, waiting, promoted and running each) rows in queue.jobs.
    static let tableShapes = [(60_000, 20_000, 5_000), (0, 11_000, 500)]

    @Test(
        "the claim and the completion probe the primary key when the statistics say nothing is running",
        arguments: tableShapes)
    func claimAndCompletionUsePrimaryKey(finished: Int, waiting: Int, inFlight: Int) async throws {
        try await withWorld { world in
            // Analyzed while the queue was quiet: every promoted or running estimate is
            // one row. Before 0012 the planner then chose the partial index on that state
            // and scanned every promoted (running) row for each claim (completion). And
            // in a small table (the second shape) a completion joined on its record set
            // alone was planned as a scan of the whole table.
            try await Self.fillAnalyzedWhileQuiet(world, finished: finished, waiting: waiting, inFlight: inFlight)
            // The generic plan is what a prepared statement keeps once it has run a few times.
            try await world.exec("SET plan_cache_mode = force_generic_plan")
            try await world.exec("PREPARE claim(bigint[], text, float8, int, bigint) AS \(QueueStore.claimSQL)")
            // The completion's statement runs inside queue.complete (an EXPLAIN of the call
            // cannot see into it): plan the function's statement itself, its arguments as parameters.
            try await Self.prepareCompletionStatement(world)
            try await world.exec("PREPARE heartbeat(bigint[], int[], float8, bigint[]) AS \(QueueStore.extendLeasesSQL)")
            let promoted = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'available' ORDER BY id LIMIT 20").rows.compactMap { $0[0] ?? nil }
            let running = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'running' ORDER BY id LIMIT 20").rows.compactMap { $0[0] ?? nil }
            let completions = Self.completionArguments(running.map { (id: $0, outcome: "completed", failed: false) })
            let ones = running.map { _ in "1" }.joined(separator: ","), sevens = running.map { _ in "7" }.joined(separator: ",")
            let plans = [
                ("claim", "EXPLAIN EXECUTE claim('{\(promoted.joined(separator: ","))}', 'd', 30, 1000, 9)"),
                ("completion", "EXPLAIN EXECUTE complete(\(completions))"),
                ("heartbeat", "EXPLAIN EXECUTE heartbeat('{\(running.joined(separator: ","))}', '{\(ones)}', 30, '{\(sevens)}')"),
            ]
            for (what, explain) in plans {
                let plan = try await world.plan(explain)
                #expect(plan.contains("jobs_pkey"), "\(what) plan:\n\(plan)")
                #expect(!plan.contains("jobs_due_idx") && !plan.contains("jobs_lease_idx") && !plan.contains("Seq Scan"),
                        "\(what) plan:\n\(plan)")
            }
            // Linear in the batch: no job row rescans the batch's record set (a nested
            // loop with the record set inside costs batch² comparisons).
            let completionJSON = try await world.plan("EXPLAIN (FORMAT JSON) EXECUTE complete(\(completions))")
            #expect(Self.rescannedRecordSets(completionJSON) == [], "completion plan:\n\(completionJSON)")
            // And they do what they are for.
            let store = QueueStore(connection: world.sql)
            let claimed = try await store.claim(
                ids: promoted.compactMap { JobID($0) }, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(claimed.count == 20)
            let applied = try await store.complete(running.compactMap { JobID($0) }.map {
                AttemptCompletion(fence: AttemptFence(id: $0, attempt: 1, token: 7), outcome: .completed)
            })
            #expect(applied.count == 20)
        }
    }

    /// How `queue.jobs` was last analyzed before a backlog arrived.
    enum StaleStatistics: String, CaseIterable, Sendable {
        /// While every row was running: the statistics say nothing waits, and a scan
        /// of a partial index over the waiting (or not running) rows looks cheapest.
        case whileAllRan
        /// While it held a few rows: a generic plan made then scans the table whole.
        case whileNearlyEmpty
    }

    @Test("the claim probes the primary key whatever the statistics say of the backlog", arguments: StaleStatistics.allCases)
    func claimProbesPrimaryKeyUnderABacklog(statistics: StaleStatistics) async throws {
        try await withWorld { world in
            switch statistics {
            case .whileAllRan:
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, state, attempt, lease_token, lease_expires_at)
                    SELECT 'noop', 'running', 1, 7, now() + interval '1 hour' FROM generate_series(1, 50000)
                    """)
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 10)")
                try await world.exec("ANALYZE queue.jobs")
                try await world.exec("TRUNCATE queue.jobs")
            case .whileNearlyEmpty:
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
                try await world.exec("ANALYZE queue.jobs")
            }
            // A connection as the daemon opens for its claims.
            let claims = PostgresConnection(
                conninfo: world.database.url, name: "claim-test", commandTimeout: .seconds(10), scans: .indexed,
                logger: .silent)
            defer { Task { await claims.close() } }
            #expect(try await claims.query("SHOW enable_seqscan").rows.first?.first == "off")
            try await claims.query("SET plan_cache_mode = force_generic_plan")
            try await claims.query("PREPARE claim(bigint[], text, float8, int, bigint) AS \(QueueStore.claimSQL)")
            // Planned now, as a prepared statement keeps it: with the table as analyzed.
            _ = try await claims.query("EXPLAIN EXECUTE claim('{1,2,3}', 'd', 30, 1000, 9)")
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 50000)")
            let popped = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'available' ORDER BY id DESC LIMIT 64").rows.compactMap { $0[0] ?? nil }
            let explain = "EXPLAIN EXECUTE claim('{\(popped.joined(separator: ","))}', 'd', 30, 1000, 9)"
            for mode in ["force_generic_plan", "force_custom_plan"] {
                try await claims.query("SET plan_cache_mode = \(mode)")
                let plan = try await claims.query(explain).rows.compactMap { $0.first ?? nil }.joined(separator: "\n")
                #expect(plan.contains("Index Cond: (id = ANY"), "\(mode) claim plan:\n\(plan)")
                #expect(!plan.contains("Seq Scan") && !plan.contains("Bitmap Heap Scan on jobs")
                        && !plan.contains("_idle_idx") && !plan.contains("jobs_waiting_kind_idx") && !plan.contains("jobs_due_idx"),
                        "\(mode) claim plan:\n\(plan)")
            }
            // And it claims what it was given.
            let claimed = try await QueueStore(connection: claims).claim(
                ids: popped.compactMap { JobID($0) }, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(claimed.count == 64)
        }
    }

    @Test("the promoter's read keeps to jobs_due_idx when it was prepared on a nearly empty queue")
    func promoterReadKeepsToItsIndexUnderABacklog() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
            try await world.exec("ANALYZE queue.jobs")
            // A connection as the daemon opens for its promoter.
            let promoter = PostgresConnection(
                conninfo: world.database.url, name: "promoter-test", commandTimeout: .seconds(10), scans: .indexed,
                logger: .silent)
            defer { Task { await promoter.close() } }
            try await promoter.query("SET plan_cache_mode = force_generic_plan")
            try await promoter.query(
                "PREPARE promote(int, int, int, text, bigint[], bigint[], bigint[], bigint, bigint, bigint, bigint, bigint, bigint) AS \(QueueStore.promoteSQL)")
            let execute = "EXECUTE promote(1000, 1000, 1000, 'd', '{}', '{1,2}', '{}', 0, 0, 0, 0, 0, 0)"
            // Planned now, as the prepared statement keeps it: for 20 rows.
            _ = try await promoter.query(execute)
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 50000)")
            let plan = try await promoter.query("EXPLAIN " + execute).rows.compactMap { $0.first ?? nil }.joined(separator: "\n")
            #expect(plan.components(separatedBy: "Index Scan using jobs_due_idx").count - 1 == 3, "promoter's read plan:\n\(plan)")
            #expect(!plan.contains("Seq Scan on jobs") && !plan.contains("Sort"), "promoter's read plan:\n\(plan)")
            let read = try await QueueStore(connection: promoter).dueJobs(limits: [.normal: 1000])
            #expect(read.jobs.count == 1000)
        }
    }

    @Test(
        "the completion's retry, snooze, release and dead branch probes the primary key once per entry, the batch outside",
        arguments: tableShapes)
    func failedCompletionProbesPrimaryKeyPerEntry(finished: Int, waiting: Int, inFlight: Int) async throws {
        try await withWorld { world in
            // Analyzed while the queue was quiet, as above: the running jobs are estimated
            // at one row, which makes a nested loop scanning the batch once per job look
            // as cheap as any join (quadratic in the batch).
            try await Self.fillAnalyzedWhileQuiet(world, finished: finished, waiting: waiting, inFlight: inFlight)
            try await world.exec("SET plan_cache_mode = force_generic_plan")
            try await Self.prepareCompletionStatement(world)
            let running = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'running' ORDER BY id LIMIT 20").rows.compactMap { $0[0] ?? nil }
            let outcomes: [CompletionOutcome] = [.retry, .snooze, .release, .dead]
            let completions = Self.completionArguments(running.enumerated().map { index, id in
                (id: id, outcome: outcomes[index % 4].rawValue, failed: true)
            })
            let json = try await world.plan("EXPLAIN (FORMAT JSON) EXECUTE complete(\(completions))")
            #expect(Self.rescannedRecordSets(json) == [], "completion plan:\n\(json)")
            // Both statements on queue.jobs (the DELETE and the UPDATE): a nested loop,
            // the batch outside, a primary-key probe per entry inside.
            #expect(Self.jobStatementsNotProbingPerEntry(json) == [], "completion plan:\n\(json)")
            // And the branch does what it is for: each outcome applied, fenced.
            let store = QueueStore(connection: world.sql)
            let applied = try await store.complete(running.compactMap { JobID($0) }.enumerated().map { index, id in
                AttemptCompletion(
                    fence: AttemptFence(id: id, attempt: 1, token: 7), outcome: outcomes[index % 4], delay: .seconds(60),
                    errorCode: "boom", errorMessage: "failed")
            })
            #expect(applied.count == 20)
            let ids = "{\(running.joined(separator: ","))}"
            #expect(try await world.int(
                "SELECT count(*) FROM queue.jobs WHERE id = ANY($1::bigint[]) AND state = 'retryable' AND run_at > now()",
                [ids]) == 10)
            #expect(try await world.int(
                "SELECT count(*) FROM queue.jobs WHERE id = ANY($1::bigint[]) AND state = 'available'", [ids]) == 5)
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters WHERE job_id = ANY($1::bigint[])", [ids]) == 5)
            #expect(try await world.int(
                "SELECT count(*) FROM queue.attempts WHERE job_id = ANY($1::bigint[]) AND event = 'end'", [ids]) == 20)
            // Fenced: the same batch again applies nothing (no job is running any more).
            let again = try await store.complete(running.compactMap { JobID($0) }.map {
                AttemptCompletion(fence: AttemptFence(id: $0, attempt: 1, token: 7), outcome: .retry, delay: .seconds(1))
            })
            #expect(again.isEmpty)
        }
    }

    /// The statements on queue.jobs (ModifyTable nodes) in a JSON plan whose rows are
    /// not found by a nested loop with the batch's record set outside and a probe of
    /// jobs_pkey inside. Their operations ("Update", "Delete").
    /// Fills `queue.jobs` with `finished` completed and `waiting` available rows, analyzes it
    /// while nothing runs (every running estimate is then one row), then leases `inFlight` of
    /// the waiting jobs as running with attempt 1 and lease token 7.
    static func fillAnalyzedWhileQuiet(_ world: QueueWorld, finished: Int, waiting: Int, inFlight: Int) async throws {
        try await world.exec("""
            INSERT INTO queue.jobs (kind, state, finished_at)
            SELECT 'noop', 'completed', now() FROM generate_series(1, $1::int) g
            """, [String(finished)])
        try await world.exec(
            "INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, $1::int) g", [String(waiting)])
        try await world.exec("ANALYZE queue.jobs")
        try await world.exec("""
            UPDATE queue.jobs SET state = 'running', attempt = 1, lease_token = 7,
                   lease_expires_at = now() + interval '30 seconds'
             WHERE id IN (SELECT id FROM queue.jobs WHERE state = 'available' ORDER BY id LIMIT $1::int)
            """, [String(inFlight)])
    }

    /// Prepares `complete(...)` as the statement inside `queue.complete_batch`, its
    /// arguments as parameters (`completionArguments`): an EXPLAIN of the function call
    /// cannot see into it.
    static func prepareCompletionStatement(_ world: QueueWorld) async throws {
        let parameters = [
            ("p_ids", "$1::bigint[]"), ("p_attempts", "$2::int[]"), ("p_tokens", "$3::bigint[]"),
            ("p_outcomes", "$4::text[]"), ("p_delays", "$5::float8[]"), ("p_codes", "$6::text[]"),
            ("p_errors", "$7::text[]"), ("p_runs", "$8::float8[]"), ("p_waits", "$9::float8[]"),
            ("p_places", "$10::boolean[]"), ("p_daemon", "$11::text"),
        ]
        var completeBody = try #require(try await world.scalar("""
            SELECT regexp_replace(prosrc, '^.*RETURN QUERY(.*);[[:space:]]*END;[[:space:]]*$', '\\1')
              FROM pg_proc WHERE proname = 'complete_batch' AND pronamespace = 'queue'::regnamespace
            """))
        for (name, parameter) in parameters {
            #expect(completeBody.contains(name), "queue.complete_batch no longer reads \(name)")
            completeBody = completeBody.replacingOccurrences(of: name, with: parameter)
        }
        try await world.exec("""
            PREPARE complete(bigint[], int[], bigint[], text[], float8[], text[], text[], float8[], float8[], boolean[], text)
                AS \(completeBody)
            """)
    }

    /// `EXECUTE complete(...)`'s arguments for these entries (attempt 1, token 7, run
    /// 0.001 s; a failed one with delay 5 s, code `boom` and error `failed`), as the
    /// daemon binds them: one array per field.
    static func completionArguments(_ entries: [(id: String, outcome: String, failed: Bool)]) -> String {
        func array(_ element: (String, String, Bool) -> String) -> String {
            "'{" + entries.map { element($0.id, $0.outcome, $0.failed) }.joined(separator: ",") + "}'"
        }
        return [
            array { id, _, _ in id }, array { _, _, _ in "1" }, array { _, _, _ in "7" },
            array { _, outcome, _ in outcome }, array { _, _, failed in failed ? "5" : "0" },
            array { _, _, failed in failed ? "boom" : "NULL" }, array { _, _, failed in failed ? "failed" : "NULL" },
            array { _, _, _ in "0.001" }, array { _, _, _ in "0" }, array { _, _, _ in "f" }, "'d'",
        ].joined(separator: ", ")
    }

    static func jobStatementsNotProbingPerEntry(_ json: String) -> [String] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]],
              let top = root.first?["Plan"] as? [String: Any]
        else { return ["(not a JSON plan)"] }
        let recordScans: Set<String> = ["CTE Scan", "Function Scan"]
        var found: [String] = []
        func walk(_ node: [String: Any]) {
            let children = node["Plans"] as? [[String: Any]] ?? []
            if node["Node Type"] as? String == "ModifyTable", node["Relation Name"] as? String == "jobs" {
                let operation = node["Operation"] as? String ?? "ModifyTable"
                let join = children.first { $0["Parent Relationship"] as? String == "Outer" }
                let sides = join?["Plans"] as? [[String: Any]] ?? []
                let outer = sides.first { $0["Parent Relationship"] as? String == "Outer" }
                let inner = sides.first { $0["Parent Relationship"] as? String == "Inner" }
                let probes = join?["Node Type"] as? String == "Nested Loop"
                    && recordScans.contains(outer?["Node Type"] as? String ?? "")
                    && inner?["Node Type"] as? String == "Index Scan" && inner?["Index Name"] as? String == "jobs_pkey"
                if !probes { found.append(operation) }
            }
            children.forEach(walk)
        }
        walk(top)
        return found
    }

    /// The record sets (CTE or function scans, materialized or not) that a JSON plan
    /// scans whole once per outer row: the inner side of a nested loop. Their aliases.
    static func rescannedRecordSets(_ json: String) -> [String] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]],
              let top = root.first?["Plan"] as? [String: Any]
        else { return ["(not a JSON plan)"] }
        let wholeScans: Set<String> = ["CTE Scan", "Function Scan"]
        var found: [String] = []
        func walk(_ node: [String: Any]) {
            let children = node["Plans"] as? [[String: Any]] ?? []
            if node["Node Type"] as? String == "Nested Loop" {
                for inner in children where inner["Parent Relationship"] as? String == "Inner" {
                    var scan = inner
                    if scan["Node Type"] as? String == "Materialize", let below = (scan["Plans"] as? [[String: Any]])?.first {
                        scan = below
                    }
                    if let type = scan["Node Type"] as? String, wholeScans.contains(type) {
                        found.append(scan["Alias"] as? String ?? type)
                    }
                }
            }
            children.forEach(walk)
        }
        walk(top)
        return found
    }

    @Test(
        "the notification finish probes the primary key when the statistics say nothing is sending, in a large and a small table",
        arguments: [100_000, 5_000])
    func notificationFinishUsesPrimaryKey(sent: Int) async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO notifications.notifications (idempotency_key, channel, recipient, body, status, sent_at)
                SELECT 'k' || g, 'webhook', 'http://sink', 'b', 'sent', now() FROM generate_series(1, $1::int) g
                """, [String(sent)])
            try await world.exec("ANALYZE notifications.notifications")
            try await world.exec("""
                INSERT INTO notifications.notifications
                    (idempotency_key, channel, recipient, body, status, tries, claim_token, sending_until)
                SELECT 's' || g, 'webhook', 'http://sink', 'b', 'sending', 1, 't' || g, now() + interval '1 minute'
                  FROM generate_series(1, 500) g
                """)
            let rows = try await world.sql.query(
                "SELECT id, claim_token FROM notifications.notifications WHERE status = 'sending' ORDER BY id LIMIT 20").rows
            let tries = rows.compactMap { row -> String? in
                guard let id = row[0] ?? nil, let token = row[1] ?? nil else { return nil }
                return #"{"notification_id": \#(id), "try": 1, "job_id": 1, "job_attempt": 1, "destination": "http://sink", "started_at": 0, "duration_ms": 1, "outcome": "sent", "new_status": "sent", "claim_token": "\#(token)"}"#
            }
            try await world.exec("SET plan_cache_mode = force_generic_plan")
            try await world.exec("PREPARE finish(jsonb) AS \(NotificationStatements.finish)")
            let plan = try await world.plan("EXPLAIN EXECUTE finish('[\(tries.joined(separator: ","))]')")
            #expect(plan.contains("notifications_pkey"), "finish plan:\n\(plan)")
            #expect(!plan.contains("notifications_open_idx") && !plan.contains("Seq Scan"), "finish plan:\n\(plan)")
            // And it does what it is for: 20 notifications sent, 20 audit rows.
            try await world.exec("EXECUTE finish('[\(tries.joined(separator: ","))]')")
            #expect(try await world.int("SELECT count(*) FROM notifications.notifications WHERE status = 'sent' AND sent_at > now() - interval '1 minute' AND claim_token IS NULL AND idempotency_key LIKE 's%'") == 20)
            #expect(try await world.int("SELECT count(*) FROM notifications.attempts") == 20)
        }
    }

    @Test("the lease heartbeat finds its rows through the primary key, however many jobs run")
    func leaseHeartbeatUsesPrimaryKey() async throws {
        try await withWorld { world in
            // Many running rows make the partial jobs_lease_idx look cheap; a heartbeat
            // that tested state = 'running' scanned it for all of them (through every
            // dead version under a long snapshot) and timed out in the soak.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, attempt, lease_token, lease_expires_at)
                SELECT 'noop', CASE WHEN g % 10 = 0 THEN 'running' ELSE 'completed' END, 1, 7, now()
                  FROM generate_series(1, 200000) g
                """)
            try await world.exec("ANALYZE queue.jobs")
            let ids = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'running' ORDER BY id LIMIT 500").rows.compactMap { $0[0] ?? nil }
            try await world.exec("PREPARE heartbeat(bigint[], int[], float8, bigint[]) AS \(QueueStore.extendLeasesSQL)")
            let arrays = ("{" + ids.joined(separator: ",") + "}",
                          "{" + ids.map { _ in "1" }.joined(separator: ",") + "}",
                          "{" + ids.map { _ in "7" }.joined(separator: ",") + "}")
            let plan = try await world.plan("EXPLAIN EXECUTE heartbeat('\(arrays.0)', '\(arrays.1)', 30, '\(arrays.2)')")
            #expect(plan.contains("jobs_pkey"), "heartbeat plan:\n\(plan)")
            #expect(!plan.contains("jobs_lease_idx") && !plan.contains("Seq Scan"), "heartbeat plan:\n\(plan)")
            // And it does what it is for: 500 leases extended, none reported lost.
            let store = QueueStore(connection: world.sql)
            let fences = ids.compactMap { JobID($0) }.map { AttemptFence(id: $0, attempt: 1, token: 7) }
            #expect(try await store.extendLeases(fences, lease: .seconds(30), chunk: 200).isEmpty)
            #expect(try await world.scalar(
                "SELECT count(*) FROM queue.jobs WHERE lease_expires_at > now() + interval '20 seconds'") == "500")
        }
    }

    @Test("churned tables carry their fillfactor and autovacuum settings; sessions bound idle transactions")
    func storageSettingsAndSessionLimits() async throws {
        try await withWorld { world in
            let options = try await world.sql.query("""
                SELECT relname, array_to_string(reloptions, ',') FROM pg_class
                 WHERE oid IN ('queue.jobs'::regclass, 'queue.daemons'::regclass, 'queue.attempts'::regclass)
                 ORDER BY relname
                """).rows.map { ($0[0] ?? "", $0[1] ?? "") }
            let byTable = Dictionary(uniqueKeysWithValues: options)
            #expect(byTable["jobs"]?.contains("fillfactor=80") == true)
            #expect(byTable["jobs"]?.contains("autovacuum_vacuum_scale_factor=0.01") == true)
            #expect(byTable["daemons"]?.contains("fillfactor=50") == true)
            #expect(byTable["attempts"]?.contains("autovacuum_vacuum_insert_scale_factor=0.02") == true)
            // Every daemon session (this one is built the same way) bounds idle transactions
            // and statements, so the daemon can never hold back vacuum for long.
            let connection = world.database.connection("settings", timeout: 7)
            let settings = try await connection.query("""
                SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('statement_timeout'),
                       current_setting('lock_timeout')
                """)
            #expect(settings.rows == [["1min", "7s", "7s"]])
            await connection.close()
        }
    }

    @Test("no daemon target can turn text into SQL: only JobdTestSupport imports the Testing SPI, and only tests link it")
    func sqlTextOnlyInTests() throws {
        // Statements are `SQL`, which daemon code can only build from literals (see
        // SQL.swift); the one initializer from `String` is behind `@_spi(Testing)`.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" } ?? []
        #expect(files.count > 20)
        var importers: [String] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            if text.contains("@_spi(Testing) import") { importers.append(file.deletingLastPathComponent().lastPathComponent) }
        }
        #expect(importers == ["JobdTestSupport"])
        // In Package.swift, every target that names JobdTestSupport (besides its own
        // declaration) is a test target.
        let package = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let starts = package.matches(of: /\.(target|executableTarget|testTarget)\(/)
        #expect(starts.count > 10)
        var dependents: [String] = []
        for (index, start) in starts.enumerated() {
            let end = index + 1 < starts.count ? starts[index + 1].range.lowerBound : package.endIndex
            let declaration = package[start.range.lowerBound..<end]
            guard declaration.contains("\"JobdTestSupport\""), !declaration.contains("name: \"JobdTestSupport\""),
                  !declaration.hasPrefix(".testTarget(") else { continue }
            dependents.append(String(declaration.prefix(60)))
        }
        #expect(dependents == [], "a daemon target depends on JobdTestSupport")
    }
}
