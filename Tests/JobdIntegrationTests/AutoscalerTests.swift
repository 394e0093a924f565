import JobdCore
import JobdQueue
import JobdTestSupport
import Testing

/// The autoscaler in a daemon run as `jobd run` runs it, against real PostgreSQL and
/// Redis: pools grow under a burst and shrink back after a (short) quiet period.
@Suite("Autoscaler", .serialized)
struct AutoscalerTests {
    /// Resizes the daemon logged, as (pool, from, to, reason), in order.
    private func resizes(_ world: QueueWorld) -> [(pool: String, from: Int, to: Int, reason: String)] {
        world.logs.messages("pool resized").map { entry in
            (entry.metadata["pool"] ?? "", Int(entry.metadata["from"] ?? "") ?? -1,
             Int(entry.metadata["to"] ?? "") ?? -1, entry.metadata["reason"] ?? "")
        }
    }

    @Test("with bounds 1-16 a burst grows the pool, every job completes, and after quiet it is back at 1")
    func burstGrowsThenShrinks() async throws {
        try await withWorld { world in
            let config = world.configuration {
                $0.workers = .sharedScaling(1...16)
                $0.scaling.sampleInterval = .milliseconds(100)
                $0.scaling.growAfter = .milliseconds(100)
                $0.scaling.quietPeriod = .seconds(1)
                $0.scaling.downInterval = .milliseconds(200)
            }
            let daemon = world.makeDaemon(config)
            #expect(daemon.pools[0].capacity == 1)
            try await world.running([daemon]) {
                // 160 jobs of 100 ms: 16 s on one slot, about 1 s on sixteen.
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{"sleep_ms": 100}' FROM generate_series(1, 160)
                    """)
                try await world.waitForState("completed", count: 160, timeout: 30)
                let grown = resizes(world).filter { $0.to > $0.from }
                #expect(!grown.isEmpty, "the pool grew")
                #expect(grown.allSatisfy { $0.reason == "backlog" || $0.reason == "queue_wait" })
                #expect((grown.map(\.to).max() ?? 0) > 1)
                #expect(grown.allSatisfy { $0.to <= 16 && $0.to <= ScalingSettings.defaults.maxGrowth * $0.from })
                // Quiet: back to the minimum, step by step.
                try await waitUntil(timeout: 15, "the pool is back at 1") { daemon.pools[0].capacity == 1 }
            }
            let all = resizes(world)
            let shrunk = all.filter { $0.to < $0.from }
            #expect(!shrunk.isEmpty)
            #expect(shrunk.allSatisfy { $0.reason == "quiet" && $0.to >= $0.from / 2 })
            #expect(all.last?.to == 1)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
            // Each resize carries what its sample showed, for the journal.
            let entry = try #require(world.logs.messages("pool resized").first)
            #expect(entry.metadata["message_id"] == JobdMessageID.poolResized.id)
            #expect(entry.metadata["backlog"].flatMap { Int($0) } != nil)
            #expect(entry.metadata["wait_ms"].flatMap { Int($0) } != nil)
        }
    }

    @Test("a high burst while low is busy: high grows first, taking low's slots above its minimum")
    func highGrowsFirst() async throws {
        try await withWorld { world in
            let config = world.configuration {
                $0.workers = .perPriorityScaling([.high: 1...8, .low: 2...8])
                $0.scaling.maxTotalWorkers = 10
                $0.scaling.sampleInterval = .milliseconds(100)
                $0.scaling.growAfter = .milliseconds(100)
                // No shrinking during the test: only growth and reclaim are in play.
                $0.scaling.quietPeriod = .seconds(60)
            }
            let daemon = world.makeDaemon(config)
            try await world.running([daemon]) {
                // Low is flooded first and grows to its maximum (high 1 + low 8 = 9 ≤ 10).
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, payload, priority) SELECT 'noop', '{"sleep_ms": 200}', 'low' FROM generate_series(1, 400)
                    """)
                try await waitUntil(timeout: 15, "low at its maximum") { daemon.pools[1].capacity == 8 }
                #expect(daemon.pools[0].capacity == 1)
                // Now high: the ceiling's last slot, then low's slots above its minimum.
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, payload, priority) SELECT 'noop', '{"sleep_ms": 200}', 'high' FROM generate_series(1, 200)
                    """)
                try await waitUntil(timeout: 30, "every high job completed") {
                    try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE priority = 'high'") == 200
                }
            }
            let log = resizes(world)
            let highUps = log.enumerated().filter { $0.element.pool == "high" && $0.element.to > $0.element.from }
            let reclaims = log.enumerated().filter { $0.element.pool == "low" && $0.element.reason == "reclaimed" }
            #expect(!highUps.isEmpty, "high grew: \(log)")
            #expect(!reclaims.isEmpty, "low gave slots to high: \(log)")
            // Every reclaim is followed at once by high's growth, in the same decision.
            for reclaim in reclaims {
                let next = log.indices.contains(reclaim.offset + 1) ? log[reclaim.offset + 1] : nil
                #expect(next?.pool == "high" && next.map { $0.to > $0.from } == true, "\(log)")
            }
            // Low never below its minimum, and the two never above the ceiling.
            #expect(log.filter { $0.pool == "low" }.allSatisfy { $0.to >= 2 })
            var sizes = ["high": 1, "low": 2]
            for change in log {
                sizes[change.pool] = change.to
                #expect(sizes.values.reduce(0, +) <= 10, "\(log)")
            }
            // High's growth went first: no low growth after high's first one while
            // high was still short (low only gave).
            if let firstHigh = highUps.first?.offset {
                #expect(!log[firstHigh...].contains { $0.pool == "low" && $0.to > $0.from && $0.reason != "quiet" }, "\(log)")
            }
        }
    }

    @Test("a reload's new bounds reach the autoscaler: the pool moves into them at once")
    func reloadBounds() async throws {
        try await withWorld { world in
            let daemon = world.makeDaemon(world.configuration { $0.workers = .sharedScaling(1...4) })
            let recorded = { try await world.int("SELECT workers FROM queue.daemons WHERE id = '\(daemon.identity.id)'") }
            try await daemon.maintenance.runOnce()
            #expect(try await recorded() == 1)
            #expect(daemon.resize(workers: .sharedScaling(6...12)))
            #expect(daemon.pools[0].capacity == 6)
            #expect(daemon.autoscaler.sizes == [6])
            // The registry's heartbeat records the live size, not the one the daemon started with.
            try await daemon.maintenance.runOnce()
            #expect(try await recorded() == 6)
            #expect(daemon.resize(workers: .shared(3)))
            #expect(daemon.pools[0].capacity == 3)
            try await daemon.maintenance.runOnce()
            #expect(try await recorded() == 3)
            #expect(!daemon.resize(workers: .perPriority([.high: 2, .normal: 0, .low: 0])))
            #expect(resizes(world).map(\.reason) == ["bounds", "bounds"])
        }
    }
}
