import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
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
