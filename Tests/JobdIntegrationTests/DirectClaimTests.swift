import JobdCore
import JobdPostgres
import JobdQueue
import JobdRedis
import JobdTestSupport
import Testing

/// A pool whose Redis lists stay empty claims due jobs straight from PostgreSQL
/// (`QueueStore.claimDue`): jobs run with no promoter feeding the lists, in priority
/// order, paused lanes and kinds left waiting, and each job claimed once whichever
/// path sees it.
@Suite("Direct claim", .serialized)
struct DirectClaimTests {
    /// Holds the promoter lock in a session that stays "idle in transaction", so every
    /// daemon's promoter stands by and no standby deposes it (it ends only sessions
    /// that are plain idle). Returns the session; closing it frees the lock.
    private func holdPromoterLock(_ world: QueueWorld) async throws -> PostgresConnection {
        let holder = world.database.connection("promoter-lock-holder")
        _ = try await holder.query("BEGIN")
        _ = try await holder.query("SELECT pg_advisory_lock(1785684580, 2)")
        return holder
    }

    @Test("with the promoter standing by and the lists empty, a pool claims due jobs from PostgreSQL and runs each once")
    func runsWithoutPromoter() async throws {
        try await withWorld { world in
            let holder = try await holdPromoterLock(world)
            let daemon = world.makeDaemon(world.configuration { $0.workers = .shared(4) })
            try await world.running([daemon]) {
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 120)")
                // A backlog drains claim after claim (once due for 2 s): 30 batches of 4
                // each after its own 0.5 s blocking pop would need 15 s.
                try await waitUntil(timeout: 10, "120 jobs run without a promoter") { daemon.stats.snapshot.completed == 120 }
                #expect(!daemon.promoter.isElected)
                #expect(daemon.stats.snapshot.promoted == 0)
                #expect(daemon.stats.snapshot.claimedDirect == 120)
            }
            // Nothing went through Redis, and each job ran once.
            #expect(try await world.dispatch().lengths().values.reduce(0, +) == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE event = 'end'") == 120)
            await holder.close()
        }
    }

    @Test("a direct claim that gets no reply logs at most how many jobs it may have taken; they run once, after the cause is gone")
    func unconfirmedDirectClaim() async throws {
        try await withWorld { world in
            let holder = try await holdPromoterLock(world)
            try await world.exec("INSERT INTO queue.jobs (kind, run_at) SELECT 'noop', now() - interval '1 minute' FROM generate_series(1, 5)")
            // The direct claim (an UPDATE) waits behind this lock past its deadline.
            let locker = world.database.connection("locker")
            _ = try await locker.query("BEGIN")
            _ = try await locker.query("LOCK TABLE queue.jobs IN SHARE MODE")
            let daemon = world.makeDaemon(world.configuration {
                $0.workers = .shared(4)
                $0.commandTimeout = .seconds(1)
            })
            try await world.running([daemon]) {
                try await waitUntil(timeout: 20, "a failed direct claim") {
                    world.logs.messages("fetch failed; retrying").contains { $0.metadata[LogKey.unconfirmed] != nil }
                }
                let logged = world.logs.messages("fetch failed; retrying").compactMap { $0.metadata[LogKey.unconfirmed] }
                // The pool's free slots: the claim's limit, the most it could have taken.
                #expect(logged.allSatisfy { $0 == "4" }, "\(logged)")
                #expect(try await world.count(state: "completed") == 0)
                _ = try await locker.query("ROLLBACK")
                // The server ended the claim with its statement_timeout: nothing was
                // taken, so each job runs once, at attempt 1.
                try await world.waitForState("completed", count: 5, timeout: 30)
            }
            await locker.close()
            await holder.close()
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE attempt <> 1") == 0)
        }
    }

    @Test("the direct claim leaves paused lanes and kinds waiting")
    func respectsPauses() async throws {
        try await withWorld { world in
            let holder = try await holdPromoterLock(world)
            try await world.exec("""
                INSERT INTO queue.pauses (scope, name, paused_by) VALUES ('priority', 'low', 'test'), ('kind', 'held', 'test')
                """)
            let daemon = world.makeDaemon(world.configuration { $0.workers = .shared(4) })
            try await world.running([daemon]) {
                // Due for a minute: old enough for a direct claim at once.
                try await world.exec("INSERT INTO queue.jobs (kind, run_at) SELECT 'noop', now() - interval '1 minute' FROM generate_series(1, 5)")
                try await world.exec("INSERT INTO queue.jobs (kind, run_at) SELECT 'held', now() - interval '1 minute' FROM generate_series(1, 3)")
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, priority, run_at) SELECT 'noop', 'low', now() - interval '1 minute' FROM generate_series(1, 4)
                    """)
                try await waitUntil(timeout: 20, "the 5 unpaused jobs run") { daemon.stats.snapshot.completed == 5 }
                // Several more empty blocking pops, each followed by a direct claim.
                try await Task.sleep(for: .milliseconds(1_600))
                #expect(daemon.stats.snapshot.completed == 5)
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'held' AND state = 'available'") == 3)
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE priority = 'low' AND state = 'available'") == 4)
                // The lane's pause ends: its jobs run.
                try await world.exec("DELETE FROM queue.pauses WHERE scope = 'priority'")
                try await waitUntil(timeout: 20, "the low lane runs once unpaused") { daemon.stats.snapshot.completed == 9 }
            }
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'held' AND state = 'available'") == 3)
            await holder.close()
        }
    }

    @Test("claimDue takes lanes in the given order, oldest first, and nothing not yet due")
    func priorityOrder() async throws {
        try await withWorld { world in
            // Low jobs are older than the high ones; a normal one is not due yet.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority, run_at)
                SELECT 'noop', 'low', now() - make_interval(secs => 100 - i) FROM generate_series(1, 3) i
                """)
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority, run_at)
                SELECT 'noop', 'high', now() - make_interval(secs => 50 - i) FROM generate_series(1, 3) i
                """)
            try await world.exec("INSERT INTO queue.jobs (kind, priority, run_at) VALUES ('noop', 'normal', now() + interval '1 hour')")
            let ids: (String) async throws -> [JobID] = { priority in
                try await world.sql.query("SELECT id FROM queue.jobs WHERE priority = $1 ORDER BY run_at", [priority]).rows
                    .compactMap { $0.first ?? nil }.compactMap { JobID($0) }
            }
            let high = try await ids("high")
            let low = try await ids("low")
            let store = QueueStore(connection: world.sql)
            let first = try await store.claimDue(order: [.high, .normal, .low], max: 2, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(first.map(\.job.id) == Array(high.prefix(2)))
            let second = try await store.claimDue(order: [.high, .normal, .low], max: 3, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(Set(second.map(\.job.id)) == Set([high[2], low[0], low[1]]))
            // A weighted order that puts low first takes low.
            let third = try await store.claimDue(order: [.low, .high], max: 5, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(third.map(\.job.id) == [low[2]])
            #expect(try await store.claimDue(order: [.normal], max: 5, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000).isEmpty)
            // Due for less than asked: left to the promoter.
            try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('noop', 'high')")
            #expect(try await store.claimDue(order: [.high], max: 5, dueFor: .seconds(60), daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000).isEmpty)
            // Claimed as the popped-id claim claims: running, attempt 1, leased to "d".
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'running' AND attempt = 1 AND leased_by = 'd'") == 6)
        }
    }

    @Test("a job both pushed by the promoter and claimed directly runs once; a row another claim holds is skipped, not waited for")
    func noDoubleClaim() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 6)")
            let promoter = world.makeDaemon(world.configuration()).promoter
            let dispatch = world.dispatch()
            #expect(try await promoter.promoteOnce() == 6)
            // Another claim is in flight on the oldest job: its row is locked.
            let other = world.database.connection("other-claim")
            _ = try await other.query("BEGIN")
            let oldest = try await world.int("SELECT min(id) FROM queue.jobs")
            _ = try await other.query("SELECT id FROM queue.jobs WHERE id = $1 FOR UPDATE", [String(oldest)])
            let store = QueueStore(connection: world.sql)
            let started = ContinuousClock.now
            let direct = try await store.claimDue(order: [.normal], max: 10, daemon: "direct", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(started.duration(to: .now) < .seconds(3), "the direct claim waited for a locked row")
            #expect(direct.count == 5 && !direct.map(\.job.id).contains(JobID(oldest)))
            _ = try await other.query("ROLLBACK")
            await other.close()
            // Every id is still in the list: popped and claimed, only the skipped one is taken.
            let popped = try await dispatch.pop(order: [.normal], max: 10).map(\.id)
            #expect(popped.count == 6)
            let viaRedis = try await store.claim(ids: popped, daemon: "popped", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(viaRedis.map(\.job.id) == [JobID(oldest)])
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'running' AND attempt = 1") == 6)
            await dispatch.connection.close()
        }
    }
}
