import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
import PropertyBased
import Testing

/// The promoter refills a Redis list only once it drained below half its high-water
/// mark, and then fills it in one statement; and the wake-up it sleeps on says why.
@Suite("Promoter refill", .serialized)
struct PromoterRefillTests {
    @Test("a list is topped up only below half its high-water mark, then filled to it")
    func refillMark() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 500)")
            let config = world.configuration {
                $0.redisHighWater = 100
                $0.promoteBatch = 1_000
            }
            // The daemon's promoter, driven by hand (its services are not started).
            let promoter = world.makeDaemon(config).promoter
            let dispatch = world.dispatch()
            #expect(try await promoter.promoteOnce() == 100)
            #expect(try await dispatch.lengths()[.normal] == 100)
            // 70 left: above the mark (50), so nothing is pushed.
            _ = try await dispatch.pop(order: [.normal], max: 30)
            #expect(try await promoter.promoteOnce() == 0)
            // 40 left: below the mark, refilled to the high-water mark in one go.
            _ = try await dispatch.pop(order: [.normal], max: 30)
            #expect(try await promoter.promoteOnce() == 60)
            #expect(try await dispatch.lengths()[.normal] == 100)
            // Pushing wrote nothing to Postgres: every job still waits, and each id is in
            // the list once (the promoter left out the ids it had pushed).
            #expect(try await world.count(state: "available") == 500)
            let listed = try await dispatch.connection.command(["LRANGE", RedisKeys(prefix: world.prefix).queue(.normal), "0", "-1"])
            let ids = (listed.array ?? []).compactMap(\.string)
            #expect(ids.count == 100 && Set(ids).count == 100)
            await dispatch.connection.close()
        }
    }

    @Test("a read after a key takes only the jobs after it in dispatch order: the same run_at with lower and higher ids, a microsecond either side, the earliest run_at allowed")
    func readAfterKey() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (id, kind, run_at) OVERRIDING SYSTEM VALUE VALUES
                  (10, 'noop', '2026-01-01 00:00:00.000005+00'), (20, 'noop', '2026-01-01 00:00:00.000005+00'),
                  (30, 'noop', '2026-01-01 00:00:00.000005+00'), (1, 'noop', '2026-01-01 00:00:00.000005+00'),
                  (5, 'noop', '2026-01-01 00:00:00.000004+00'), (40, 'noop', '2026-01-01 00:00:00.000006+00'),
                  (50, 'noop', '1970-01-01 00:00:00+00')
                """)
            let store = QueueStore(connection: world.database.connection("promote"))
            let at = { (micros: Int64, id: JobID) in DueKey(runAtMicros: 1_767_225_600_000_000 + micros, id: id) }
            // From the start: every job, in dispatch order, the earliest run_at first.
            let all = try await store.dueJobs(limits: [.normal: 100])
            #expect(all.jobs.map(\.id) == [50, 5, 1, 10, 20, 30, 40])
            #expect(all.highest == [.normal: at(6, 40)])
            // The first five: the highest key is the fifth's, to the microsecond …
            let five = try await store.dueJobs(limits: [.normal: 5])
            #expect(five.highest == [.normal: at(5, 20)])
            // … and a read after it takes only what follows, nothing left out.
            let rest = try await store.dueJobs(limits: [.normal: 100], after: [.normal: at(5, 20)])
            #expect(rest.jobs.map(\.id) == [30, 40])
            #expect(try await store.dueJobs(limits: [.normal: 100], after: [.normal: at(4, 99)]).jobs.map(\.id) == [1, 10, 20, 30, 40])
            #expect(try await store.dueJobs(limits: [.normal: 100], after: [.normal: at(6, 40)]).jobs.isEmpty)
            #expect(try await store.dueJobs(limits: [.normal: 100], after: [.normal: .start]).jobs.count == 7)
            // A key in another lane leaves this one alone.
            #expect(try await store.dueJobs(limits: [.normal: 100], after: [.high: at(6, 40)]).jobs.count == 7)
            await store.close()
        }
    }

    @Test("any run_at the CHECK allows and that is due comes back as a key the statement turns into that exact run_at")
    func keyRoundTrip() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.database.connection("promote"))
            let now = Int64(try await world.int("SELECT (extract(epoch FROM now()) * 1000000)::bigint"))
            await propertyCheck(count: 60, input: Gen.int64(in: 0...now)) { micros in
                do {
                    try await world.exec("DELETE FROM queue.jobs")
                    let id = JobID(try await world.int(
                        "INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', timestamptz 'epoch' + $1::bigint * interval '1 microsecond') RETURNING id",
                        [String(micros)]))
                    let key = DueKey(runAtMicros: micros, id: id)
                    #expect(try await store.dueJobs(limits: [.normal: 1]).highest[.normal] == key)
                    let before = [DueKey(runAtMicros: micros, id: id - 1), DueKey(runAtMicros: micros - 1, id: id + 1)]
                    for start in before {
                        #expect(try await store.dueJobs(limits: [.normal: 1], after: [.normal: start]).jobs.map(\.id) == [id])
                    }
                    #expect(try await store.dueJobs(limits: [.normal: 1], after: [.normal: key]).jobs.isEmpty)
                    #expect(try await store.dueJobs(
                        limits: [.normal: 1], after: [.normal: DueKey(runAtMicros: micros + 1, id: 0)]).jobs.isEmpty)
                } catch {
                    Issue.record("\(error)")
                }
            }
            await store.close()
        }
    }

    @Test("under a backlog the promoter reads after what it pushed; a job due behind that is promoted by the next read from the start")
    func readsAfterWhatItPushed() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 100)")
            let first = try await world.int("SELECT min(id) FROM queue.jobs")
            let config = world.configuration {
                $0.redisHighWater = 10
                $0.promoteBatch = 1_000
            }
            let promoter = world.makeDaemon(config).promoter
            let dispatch = world.dispatch()
            let listed = {
                let ids = try await dispatch.connection.command(["LRANGE", RedisKeys(prefix: world.prefix).queue(.normal), "0", "-1"])
                return (ids.array ?? []).compactMap(\.string).compactMap { Int($0) }
            }
            #expect(try await promoter.promoteOnce() == 10)
            #expect(try await listed() == Array(first..<first + 10))
            // Popped, never claimed (a claimer that died): still waiting in PostgreSQL.
            _ = try await dispatch.pop(order: [.normal], max: 10)
            // A job that became due behind the highest key pushed.
            let behind = try await world.int(
                "INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', now() - interval '1 hour') RETURNING id")
            // The read filled its batch: the next starts after the highest key pushed. It
            // passes over neither the job behind it nor the popped ones (no hash of them).
            #expect(try await promoter.promoteOnce() == 10)
            #expect(try await listed() == Array(first + 10..<first + 20))
            _ = try await dispatch.pop(order: [.normal], max: 10)
            // Past the full-read interval (and the popped ids' grace): a read from the start
            // takes the job behind first, then the popped jobs nobody claimed.
            try await Task.sleep(for: .milliseconds(250))
            #expect(try await promoter.promoteOnce() == 10)
            #expect(try await listed() == [behind] + Array(first..<first + 9))
            await dispatch.connection.close()
        }
    }

    @Test("a wake-up reports its reasons, and a timer cut short leaves no stale wake-up")
    func wakeReasons() async {
        let wake = WakeSignal()
        wake.signal(.popped)
        #expect(await wake.wait(timeout: .seconds(10)) == .popped)
        wake.signal(.popped)
        wake.signal()
        #expect(await wake.wait(timeout: .seconds(10)) == [.popped, .general])
        #expect(await wake.wait(timeout: .milliseconds(20)) == .timeout)
        // Woken by a signal while waiting: the cancelled timer must not count as a
        // pending wake-up for the next wait.
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal(.popped)
        #expect(await waiter.value == .popped)
        let started = ContinuousClock.now
        #expect(await wake.wait(timeout: .milliseconds(200)) == .timeout)
        #expect(started.duration(to: .now) >= .milliseconds(150))
    }
}
