import JobdCore
import JobdPostgres
import JobdQueue
import JobdRedis
import JobdTestSupport
import ServiceLifecycle
import Testing

/// Promotion writes nothing to PostgreSQL: one elected promoter per queue database
/// pushes due ids and remembers them, and the claim takes jobs from `available`.
@Suite("Unwritten promotion", .serialized)
struct UnwrittenPromotionTests {
    /// Longer than `PromoterMemory.grace`: a length read this old decides what the
    /// promoter forgets.
    static let pastGrace = Duration.milliseconds(250)

    @Test("a drain updates each job row twice (claim, completion), not three times")
    func twoUpdatesPerJob() async throws {
        try await withWorld { world in
            let jobs = 400
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, $1::int)", [String(jobs)])
            // Statistics reach the view when each backend flushes them (within about a
            // second of going idle); wait until the count stops moving.
            func writes() async throws -> Int {
                try await world.int("""
                    SELECT n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE schemaname = 'queue' AND relname = 'jobs'
                    """)
            }
            let before = try await settled(writes)
            try await world.running([world.makeDaemon(world.configuration())]) {
                try await world.waitForState("completed", count: jobs, timeout: 60)
            }
            let after = try await settled(writes)
            #expect(after - before == 2 * jobs, "\(after - before) row writes for \(jobs) jobs")
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE promoted_at IS NOT NULL") == 0)
        }
    }

    /// The value `read` returns once it has not changed for 1.5 s (at most 20 s).
    private func settled(_ read: () async throws -> Int) async throws -> Int {
        var last = try await read()
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            let now = try await read()
            if now != last {
                last = now
                stableSince = .now
            } else if stableSince.duration(to: .now) >= .milliseconds(1500) {
                return now
            }
        }
        return last
    }

    @Test("two daemons on one database: one promoter pushes, the other stands by and takes over when it stops; every job runs once")
    func oneElectedPromoter() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.workers = .shared(4) }
            let first = world.makeDaemon(config, id: "daemon-a")
            let group = ServiceGroup(configuration: .init(services: first.services, logger: .silent))
            let task = Task { try await group.run() }
            try await waitUntil(timeout: 20, "the first daemon's promoter elected") { first.promoter.isElected }
            let second = world.makeDaemon(config, id: "daemon-b")
            try await world.running([second]) {
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 600)")
                try await world.waitForState("completed", count: 600, timeout: 60)
                #expect(first.promoter.isElected && !second.promoter.isElected)
                #expect(second.stats.snapshot.promoted == 0, "the standby pushed \(second.stats.snapshot.promoted) ids")
                #expect(first.stats.snapshot.promoted >= 600)
                // Both pools took from the one promoter's lists.
                #expect(first.stats.snapshot.completed > 0 && second.stats.snapshot.completed > 0)

                // The elected daemon stops: its session ends, and with it the lock.
                await group.triggerGracefulShutdown()
                _ = try await task.value
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 300)")
                try await world.waitForState("completed", count: 900, timeout: 30)
                #expect(second.promoter.isElected)
                #expect(second.stats.snapshot.promoted >= 300)
            }
            #expect(world.logs.messages("promoter standing by: another daemon's promoter holds the lock").count >= 1)
            // Exactly once each: one attempt, and its one row in the ledger.
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE event = 'end'") == 900)
            #expect(first.stats.snapshot.staleRefused + second.stats.snapshot.staleRefused == 0)
        }
    }

    @Test("lists emptied under the promoter (a flush): it pushes every waiting job again, with no reconciler")
    func emptiedListsArePushedAgain() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 50)")
            // The daemon's promoter alone, driven by hand: no maintenance pass runs.
            let promoter = world.makeDaemon(world.configuration()).promoter
            let dispatch = world.dispatch()
            #expect(try await promoter.promoteOnce() == 50)
            // Remembered while they wait in the list: not pushed twice.
            #expect(try await promoter.promoteOnce() == 0)
            #expect(try await dispatch.lengths()[.normal] == 50)
            // What a FLUSHALL does to this queue's lists.
            _ = try await dispatch.connection.command(["DEL", RedisKeys(prefix: world.prefix).queue(.normal)])
            try await Task.sleep(for: Self.pastGrace)
            _ = try await promoter.promoteOnce()  // reads the empty list
            try await Task.sleep(for: Self.pastGrace)
            #expect(try await promoter.promoteOnce() == 50)
            #expect(try await dispatch.lengths()[.normal] == 50)
            #expect(try await world.count(state: "available") == 50)
            await dispatch.connection.close()
        }
    }

    @Test("an id popped by a claimer that died before its claim is pushed again; the others are not")
    func poppedAndLostIsPushedAgain() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 10)")
            let promoter = world.makeDaemon(world.configuration { $0.redisHighWater = 100 }).promoter
            let dispatch = world.dispatch()
            #expect(try await promoter.promoteOnce() == 10)
            // A worker pops three ids and dies before claiming them.
            let lost = try await dispatch.pop(order: [.normal], max: 3).map(\.id)
            #expect(lost.count == 3)
            _ = try await promoter.promoteOnce()  // reads the list at 7
            try await Task.sleep(for: Self.pastGrace)
            #expect(try await promoter.promoteOnce() == 3)
            let key = RedisKeys(prefix: world.prefix).queue(.normal)
            let listed = (try await dispatch.connection.command(["LRANGE", key, "0", "-1"]).array ?? [])
                .compactMap(\.string).compactMap { JobID($0) }
            #expect(listed.count == 10 && Set(listed).count == 10)
            #expect(Set(listed.suffix(3)) == Set(lost))
            // Claimed now, they run: the claim takes them from available.
            let store = QueueStore(connection: world.sql)
            let claimed = try await store.claim(ids: lost + lost, daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(claimed.map(\.job.id).sorted() == lost.sorted(), "a duplicate id is claimed once")
            await dispatch.connection.close()
        }
    }

    @Test("the claim refuses a job that is not due or not waiting")
    func claimChecksStateAndDueTime() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            let later = JobID(try await world.int(
                "INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', now() + interval '1 hour') RETURNING id"))
            let done = JobID(try await world.int(
                "INSERT INTO queue.jobs (kind, state, finished_at) VALUES ('noop', 'completed', now()) RETURNING id"))
            let retry = JobID(try await world.int(
                "INSERT INTO queue.jobs (kind, state) VALUES ('noop', 'retryable') RETURNING id"))
            let claimed = try await store.claim(ids: [later, done, retry], daemon: "d", lease: .seconds(30), maxPayloadBytes: 1000)
            #expect(claimed.map(\.job.id) == [retry])
            #expect(try await store.claim(ids: [retry], daemon: "e", lease: .seconds(30), maxPayloadBytes: 1000).isEmpty)
        }
    }
}
