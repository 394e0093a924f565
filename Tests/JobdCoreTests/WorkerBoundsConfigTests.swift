import JobdCore
import Testing

private func parse(_ values: [DaemonConfiguration.Key: String]) throws(ConfigurationError) -> DaemonConfiguration {
    try DaemonConfiguration.parse { values[$0] }
}

private func rejection(_ values: [DaemonConfiguration.Key: String]) -> ConfigurationError? {
    do {
        _ = try parse(values)
        return nil
    } catch {
        return error
    }
}

@Suite("JOBD_WORKERS bounds and the autoscaler's keys")
struct WorkerBoundsConfigTests {
    typealias Key = DaemonConfiguration.Key

    @Test("MIN-MAX is one shared pool sized between the bounds, starting at its minimum")
    func sharedBounds() throws {
        let workers = try parse([.workers: "1-64"]).workers
        #expect(workers == .sharedScaling(1...64))
        #expect(workers.isScaling)
        #expect(workers.total == 1)
        #expect(workers.maximumTotal == 64)
        #expect(workers.pools.count == 1)
        #expect(workers.pools[0].lanes == [.high, .normal, .low])
        #expect(workers.pools[0].slots == 1)
        #expect(workers.pools[0].bounds == 1...64)
    }

    @Test("per-priority bounds, lanes may mix numbers and bounds")
    func perPriorityBounds() throws {
        let workers = try parse([.workers: "high:4-64,normal:2-32,low:1-8"]).workers
        #expect(workers == .perPriorityScaling([.high: 4...64, .normal: 2...32, .low: 1...8]))
        #expect(workers.pools.map(\.lanes) == [[.high], [.normal], [.low]])
        #expect(workers.pools.map(\.slots) == [4, 2, 1])
        #expect(workers.total == 7)
        #expect(workers.maximumTotal == 104)

        let mixed = try parse([.workers: " LOW : 1 - 8 , high:8 "]).workers
        #expect(mixed == .perPriorityScaling([.high: 8...8, .low: 1...8]))
        #expect(mixed.pools.map(\.bounds) == [8...8, 1...8])
        #expect(mixed.isScaling)
    }

    @Test("a plain number, N-N and high:8,normal:4 keep today's fixed meaning")
    func fixedStaysFixed() throws {
        #expect(try parse([.workers: "16"]).workers == .shared(16))
        #expect(try parse([.workers: "16-16"]).workers == .shared(16))
        #expect(try parse([.workers: "16"]).workers.isScaling == false)
        #expect(try parse([.workers: "high:8,normal:4"]).workers == .perPriority([.high: 8, .normal: 4, .low: 0]))
        #expect(try parse([.workers: "high:8-8,low:2"]).workers == .perPriority([.high: 8, .normal: 0, .low: 2]))
        #expect(try parse([.workers: "high:4-64,low:0"]).workers.pools.map(\.lanes) == [[.high]])
    }

    @Test(
        "bad bounds are rejected with a message naming the key and the part",
        arguments: [
            ("0-4", "the minimum of \"0-4\" must be at least 1"),
            ("8-2", "the minimum of \"8-2\" is above its maximum"),
            ("1-", "\"1-\" is not a whole number"),
            ("-", "\"-\" is not a whole number"),
            ("1-2-3", "\"1-2-3\" is not a whole number"),
            ("1-4097", "each bound must be between 1 and 4096"),
            ("high:0-4", "high: the minimum of \"0-4\" must be at least 1"),
            ("high:4-2", "high: the minimum of \"4-2\" is above its maximum"),
            ("high:1-x", "high: \"1-x\" is not a whole number"),
            ("high:1-4000,low:1-97", "the total must be between 1 and 4096"),
            ("high:1-9223372036854775807", "each bound must be between 1 and 4096"),
            ("vip:1-4", "bad part \"vip:1-4\""),
        ])
    func rejected(text: String, reason: String) {
        let error = rejection([.workers: text])
        #expect(error?.key == "JOBD_WORKERS")
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.reason.contains("\"\(text)\" is invalid") == true)
    }

    @Test("the autoscaler's keys: defaults, values, and rejections naming the key")
    func scalingKeys() throws {
        let defaults = try parse([:]).scaling
        #expect(defaults == ScalingSettings.defaults)
        #expect(defaults.sampleInterval == .milliseconds(250))
        #expect(defaults.quietPeriod == .seconds(30))
        #expect(defaults.downInterval == .seconds(5))
        #expect(defaults.maxTotalWorkers == nil)

        let tuned = try parse([
            .workers: "high:4-64,low:1-8", .maxTotalWorkers: "48", .scaleSampleInterval: "100ms",
            .scaleQuietPeriod: "2s", .scaleDownInterval: "500ms",
        ]).scaling
        #expect(tuned.maxTotalWorkers == 48)
        #expect(tuned.sampleInterval == .milliseconds(100))
        #expect(tuned.growAfter == .milliseconds(100))
        #expect(tuned.quietPeriod == .seconds(2))
        #expect(tuned.downInterval == .milliseconds(500))

        let below = rejection([.workers: "high:4-64,low:2-8", .maxTotalWorkers: "5"])
        #expect(below?.key == "JOBD_MAX_TOTAL_WORKERS")
        #expect(below?.reason.contains("at least the pools' minimums together (6") == true)
        for (key, value) in [
            (Key.maxTotalWorkers, "0"), (.maxTotalWorkers, "4097"), (.maxTotalWorkers, "lots"),
            (.scaleSampleInterval, "1ms"), (.scaleSampleInterval, "11s"), (.scaleQuietPeriod, "10ms"),
            (.scaleQuietPeriod, "2d"), (.scaleDownInterval, "1ms"), (.scaleDownInterval, "1e300"),
        ] {
            #expect(rejection([key: value])?.key == key.rawValue, "\(key.rawValue)=\(value)")
        }
    }

    @Test("bounds are reloadable like worker counts")
    func reloadable() {
        #expect(Key.workers.isReloadable)
        let plan = ReloadPlan(old: [.workers: "8"], new: [.workers: "1-64"], keys: DaemonConfiguration.keys)
        #expect(plan.live == [.workers])
    }
}
