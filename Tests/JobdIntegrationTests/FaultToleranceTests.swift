import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
import Logging
import ServiceLifecycle
import Testing

/// Leases, fencing, rescue, Redis loss, several daemons, drains.
@Suite("Fault tolerance", .serialized)
struct FaultToleranceTests {
    @Test("a stale attempt's completion is refused once its lease was taken over")
    func fencedCompletion() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            let text = try await world.scalar("SELECT id FROM queue.jobs") ?? ""
            let id: JobID = try #require(JobID(text))
            let first = try await store.claim(ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(first.map(\.job.attempt) == [1])

            // Daemon "a" freezes; its lease runs out; the rescuer hands the job back.
            try await world.exec("UPDATE queue.jobs SET lease_expires_at = now() - interval '1 second'")
            let rescued = try await store.rescueExpiredLeases(maxRescues: 3)
            #expect(rescued.map(\.state) == [.available])
            // The rescue clears the token: a lease heartbeat matches on it alone.
            #expect(try await world.scalar("SELECT lease_token IS NULL FROM queue.jobs") == "t")
            let second = try await store.claim(ids: [id], daemon: "b", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(second.map(\.job.attempt) == [2])

            // "a" wakes up and reports success for attempt 1: refused.
            let staleFence = try #require(first.first?.job.fence)
            let stale = try await store.complete([AttemptCompletion(fence: staleFence, outcome: .completed)])
            #expect(stale.isEmpty)
            #expect(try await world.count(state: "running") == 1)
            // A lease heartbeat for the stale attempt reports it lost.
            let lost = try await store.extendLeases([staleFence], lease: .seconds(30))
            #expect(lost == [staleFence])
            // "b" completes attempt 2: accepted.
            let currentFence = try #require(second.first?.job.fence)
            let current = try await store.complete([AttemptCompletion(fence: currentFence, outcome: .completed)])
            #expect(current == [currentFence])
            #expect(try await world.count(state: "completed") == 1)
        }
    }

    @Test("a claim lost in a server crash: the next claim has the same attempt number but another token, and the lost attempt is refused")
    func claimLostInCrash() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            let id = try #require(JobID(try await world.scalar("SELECT id FROM queue.jobs") ?? ""))
            let lost = try #require(try await store.claim(
                ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000, token: 1111).first?.job)

            // The claim commits without waiting for the WAL flush, so a server crash may
            // lose it while daemon "a" already runs the handler. Put back what the crash
            // would: the row as it was before the claim, and no ledger row of it.
            try await world.exec("""
                UPDATE queue.jobs SET state = 'available', attempt = attempt - 1, leased_by = NULL,
                       lease_token = NULL, lease_expires_at = NULL, started_at = NULL
                """)
            try await world.exec("DELETE FROM queue.attempts")
            let again = try #require(try await store.claim(
                ids: [id], daemon: "b", lease: .seconds(30), maxPayloadBytes: 1000, token: 2222).first?.job)
            #expect(again.attempt == lost.attempt)
            #expect(again.fence != lost.fence)

            // "a" finishes the attempt the crash lost: its heartbeat, solo mark and
            // completion are all refused, and nothing of it reaches the ledger.
            #expect(try await store.extendLeases([lost.fence], lease: .seconds(30)) == [lost.fence])
            #expect(try await store.markSolo(lost.fence, daemon: "a") == false)
            #expect(try await store.complete([AttemptCompletion(fence: lost.fence, outcome: .completed)]).isEmpty)
            #expect(try await world.count(state: "running") == 1)

            // "b" still holds the job and completes it.
            #expect(try await store.extendLeases([again.fence], lease: .seconds(30)).isEmpty)
            #expect(try await store.complete([AttemptCompletion(fence: again.fence, outcome: .completed)], daemon: "b")
                    == [again.fence])
            let ledger = try await world.sql.query(
                "SELECT attempt, event, coalesce(daemon, ''), coalesce(outcome, '') FROM queue.attempts ORDER BY at, event DESC")
            #expect(ledger.rows == [["1", "end", "b", "completed"]])
            // The completion deleted the job row, lease token and all.
            #expect(try await world.int("SELECT count(*) FROM queue.jobs") == 0)
        }
    }

    @Test("the rescuer takes back only expired leases, and dead-letters poison pills")
    func rescuerCutoff() async throws {
        try await withWorld { world in
            // Rows that look like a crash, on both sides of the cutoff.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, attempt, max_attempts, leased_by, lease_expires_at, rescues) VALUES
                    ('noop', 'running', 1, 20, 'crashed', now() - interval '1 second', 0),
                    ('noop', 'running', 1, 20, 'alive',   now() + interval '60 seconds', 0),
                    ('noop', 'running', 1, 20, 'crashed', now() - interval '1 second', 2),
                    ('noop', 'running', 3, 3,  'crashed', now() - interval '1 second', 0)
                """)
            // The third job's lost attempt ran alone (a suspect): its rescue counts.
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, daemon)
                SELECT id, 1, 'solo', 'crashed' FROM queue.jobs WHERE rescues = 2
                """)
            let store = QueueStore(connection: world.sql)
            let rescued = try await store.rescueExpiredLeases(maxRescues: 3)
            #expect(rescued.count == 3)
            // Each lost attempt's one ledger row names the daemon that lost it; these rows
            // hold no start, so the queue wait is unknown rather than a made-up 0.
            #expect(try await world.sql.lines("""
                SELECT daemon, kind, started_at IS NULL, queue_wait_seconds IS NULL FROM queue.attempts
                 WHERE event = 'end' ORDER BY job_id
                """) == ["crashed\tnoop\tt\tt", "crashed\tnoop\tt\tt", "crashed\tnoop\tt\tt"])
            let states = try await world.sql.query("SELECT leased_by IS NULL, state, rescues FROM queue.jobs ORDER BY id")
            #expect(states.rows == [["t", "available", "1"], ["f", "running", "0"], ["t", "dead", "3"], ["t", "dead", "1"]])
            let reasons = try await world.sql.query("SELECT reason FROM queue.dead_letters ORDER BY job_id")
            #expect(reasons.rows.map { $0[0] ?? "" } == ["poison", "max_attempts"])
            // A second pass finds nothing more.
            #expect(try await store.rescueExpiredLeases(maxRescues: 3).isEmpty)
        }
    }

    @Test("a FLUSHALL mid-run loses nothing: dispatch is rebuilt from Postgres")
    func redisFlushLosesNothing() async throws {
        try await withWorld { world in
            try await world.exec(#"INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{"sleep_ms": 5}' FROM generate_series(1, 600)"#)
            let config = world.configuration {
                $0.workers = .shared(4)
                $0.redisHighWater = 200
            }
            try await world.running([world.makeDaemon(config)]) {
                try await waitUntil(timeout: 20, "some progress") { try await world.count(state: "completed") >= 50 }
                _ = try await world.dispatch("flusher").connection.command(["FLUSHALL"])
                try await world.waitForState("completed", count: 600, timeout: 60)
            }
            #expect(world.logs.messages("redis lost its data; dispatch rebuilt from postgres").count >= 1)
            // Nothing ran twice: the fence let one claim per promotion through.
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
        }
    }

    @Test("two daemons share one queue and no job runs twice")
    func twoDaemons() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 1500)")
            let config = world.configuration { $0.workers = .shared(8) }
            let a = world.makeDaemon(config, id: "daemon-a")
            let b = world.makeDaemon(config, id: "daemon-b")
            try await world.running([a, b]) {
                try await world.waitForState("completed", count: 1500, timeout: 60)
            }
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
            #expect(a.stats.snapshot.completed + b.stats.snapshot.completed == 1500)
            #expect(a.stats.snapshot.completed > 0 && b.stats.snapshot.completed > 0)
            #expect(a.stats.snapshot.staleRefused + b.stats.snapshot.staleRefused == 0)
        }
    }

    @Test("graceful drain: running jobs finish, nothing new starts")
    func gracefulDrain() async throws {
        try await withWorld { world in
            try await world.exec(#"INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{"sleep_ms": 800}' FROM generate_series(1, 10)"#)
            let config = world.configuration { $0.workers = .shared(2) }
            try await world.running([world.makeDaemon(config)]) {
                try await waitUntil(timeout: 10, "two running") { try await world.count(state: "running") == 2 }
            }
            // The two in flight completed during the drain; no third was started.
            #expect(try await world.count(state: "completed") == 2)
            #expect(try await world.count(state: "running") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt = 0") == 8)
            #expect(try await world.int("SELECT count(*) FROM queue.daemons") == 0)
        }
    }

    @Test("an idle daemon stops within seconds of a graceful shutdown, however long its poll interval")
    func gracefulShutdownDoesNotWaitForPoll() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.pollInterval = .seconds(30) }
            let stopping = try await world.running([world.makeDaemon(config)]) {
                try await waitUntil(timeout: 20, "daemon registered") { try await world.int("SELECT count(*) FROM queue.daemons") == 1 }
                return ContinuousClock.now
            }
            // Every service's wait ends on the shutdown or within 0.5 s of it (the
            // listener's and the outbox relay's blocking waits are sliced); a stop
            // that took the 30 s poll interval would mean one waited it out.
            #expect(stopping.duration(to: .now) < .seconds(10))
        }
    }

    @Test("a drain that runs out of time releases unfinished jobs to available")
    func drainTimeout() async throws {
        try await withWorld { world in
            try await world.exec(#"INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{"sleep_ms": 60000}')"#)
            let config = world.configuration { $0.shutdownTimeout = .milliseconds(300) }
            let started = ContinuousClock.now
            try await world.running([world.makeDaemon(config)]) {
                try await world.waitForState("running", count: 1)
            }
            #expect(started.duration(to: .now) < .seconds(20))
            let row = try await world.sql.query("SELECT state, attempt, errors->0->>'code' FROM queue.jobs")
            #expect(row.rows.first == ["available", "1", "interrupted"])
        }
    }

    @Test("a daemon that dies mid-job loses it only until the lease expires")
    func crashedDaemonIsRescued() async throws {
        try await withWorld { world in
            try await world.exec(#"INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{"sleep_ms": 60000}')"#)
            // The first daemon is cancelled outright (like SIGKILL: no drain, no release).
            let doomed = world.makeDaemon(world.configuration { $0.lease = .seconds(1) })
            let group = ServiceGroup(configuration: .init(services: doomed.services, logger: .silent))
            let task = Task { try await group.run() }
            try await world.waitForState("running", count: 1)
            task.cancel()
            _ = await task.result
            // Make the stuck job quick to finish, then let a healthy daemon rescue it.
            try await world.exec("UPDATE queue.jobs SET payload = '{}'")
            #expect(try await world.count(state: "running") == 1)
            try await world.running([world.makeDaemon(world.configuration(), id: "rescuer")]) {
                try await world.waitForState("completed", count: 1, timeout: 15)
            }
            #expect(try await world.int("SELECT attempt FROM queue.completed_jobs") == 2)
            #expect(world.logs.messages("job rescued").count == 1)
        }
    }
}
