import JobdCore
import Testing

/// A synthetic load on one pool, in whole jobs and 250 ms ticks: every slot runs
/// `perSlot` jobs per tick; `arrivals` jobs arrive per tick. Deterministic, so each
/// decision can be asserted at its tick.
private struct TickLoad {
    var perSlot: Int
    var queue = 0

    /// Serves one tick at `size` slots and returns what the pool's sample would show.
    mutating func step(size: Int, arrivals: Int) -> PoolScaler.Observation {
        let before = queue + arrivals
        let served = min(before, size * perSlot)
        queue = before - served
        let busy = (served + perSlot - 1) / perSlot
        // The oldest job served waited for the queue ahead of it: ticks of 250 ms.
        let waitMs = queue > 0 || served > 0 ? (before - served) * 250 / max(1, size * perSlot) : 0
        return PoolScaler.Observation(
            busy: busy, occupied: queue > 0 ? size : busy, backlog: queue, started: served,
            maxWait: served > 0 ? .milliseconds(waitMs) : nil)
    }
}

/// Drives a controller tick by tick (250 ms each) and records its decisions as
/// `"12.25 shared 4→8 backlog"`.
private struct Run {
    var scaler: PoolScaler
    var tick = 0
    var log: [String] = []

    init(_ pools: [PoolScaler.Pool], settings: ScalingSettings = .defaults) {
        scaler = PoolScaler(pools: pools, settings: settings)
    }

    var now: Duration { .milliseconds(250 * tick) }

    mutating func step(_ observations: [PoolScaler.Observation]) {
        let decisions = scaler.tick(now: now, observations: observations)
        for decision in decisions { log.append(Self.line(decision, at: now, pools: scaler.pools)) }
    }

    static func line(_ decision: PoolScaler.Decision, at now: Duration, pools: [PoolScaler.Pool]) -> String {
        let ms = now.components.seconds * 1_000 + now.components.attoseconds / 1_000_000_000_000_000
        let time = "\(ms / 1_000).\(String(ms % 1_000 / 10).leftPadded(2))"
        return "\(time) \(pools[decision.pool].name) \(decision.from)→\(decision.to) \(decision.reason.rawValue)"
    }

    /// Runs one pool under a load for `ticks` ticks; arrivals per tick by tick number.
    mutating func run(_ load: inout TickLoad, ticks: Int, arrivals: (Int) -> Int) {
        for _ in 0..<ticks {
            tick += 1
            step([load.step(size: scaler.sizes[0], arrivals: arrivals(tick))])
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

private let shared = PoolScaler.Pool(name: "shared", rank: 0, bounds: 1...64)

@Suite("PoolScaler")
struct PoolScalerTests {
    @Test("a step load quadruples the pool every two samples, then settles at what it uses; no oscillation")
    func stepLoad() {
        var run = Run([shared])
        var load = TickLoad(perSlot: 2)
        // 80 jobs per tick at 2 per slot: the load needs 40 slots.
        run.run(&load, ticks: 200, arrivals: { _ in 80 })
        // Pressure from tick 1 (0.25 s); each step waits one more pressured sample.
        // At 64 the queue (396 at 1.5 s) drains by 48 a tick: last backlog at 3.5 s,
        // then 46 slots run the tail (3.75 s) and 40 from there on. The first check,
        // 30 s after the last pressure (33.5 s), keeps what the tail's 46 needed
        // (46 / 0.75 = 62); the next (38.5 s) keeps what 40 busy need: 40 / 0.75 = 54,
        // above half (31) and the hysteresis floor (17, one above 16).
        #expect(run.log == [
            "0.50 shared 1→4 backlog",
            "1.00 shared 4→16 backlog",
            "1.50 shared 16→64 backlog",
            "33.50 shared 64→62 quiet",
            "38.50 shared 62→54 quiet",
        ])
        #expect(run.scaler.sizes == [54])
        // Steady at 54 for another two minutes: no decision at all.
        run.log.removeAll()
        run.run(&load, ticks: 480, arrivals: { _ in 80 })
        #expect(run.log.isEmpty)
        #expect(load.queue == 0)
    }

    @Test("after the load stops the pool halves every down interval back to its minimum within 60 s")
    func returnsToMinimum() {
        var run = Run([shared])
        var load = TickLoad(perSlot: 1)
        // 200 jobs a tick for 6 s take the pool to its maximum, then nothing.
        run.run(&load, ticks: 24, arrivals: { _ in 200 })
        #expect(run.scaler.sizes == [64])
        run.log.removeAll()
        run.run(&load, ticks: 400, arrivals: { _ in 0 })
        // 4,800 arrived; 1,194 were served by tick 24 (1,1,4,4,16,16 then 18 × 64), so
        // 3,606 drain at 64 a tick: the last backlog is left at tick 80 (20.00 s), and
        // tick 81 runs the last 22. First check 30 s later: the tail's 22 need 30 and
        // the floor from growing past 16 is 17, so the pool halves to 32; idle since
        // 20.50 s, the floor is forgotten at 50.50 s, and the pool halves every 5 s.
        #expect(run.log == [
            "50.00 shared 64→32 quiet",
            "55.00 shared 32→16 quiet",
            "60.00 shared 16→8 quiet",
            "65.00 shared 8→4 quiet",
            "70.00 shared 4→2 quiet",
            "75.00 shared 2→1 quiet",
        ])
        // Back at the minimum 55 s after the last pressure.
        #expect(run.scaler.sizes == [1])
    }

    @Test("a ramp grows step by step as the backlog appears and never shrinks while it rises")
    func ramp() {
        var run = Run([shared])
        var load = TickLoad(perSlot: 4)
        // Arrivals rise by one job per tick for a minute: 0 → 240 per tick (needs 60 slots).
        run.run(&load, ticks: 240, arrivals: { $0 })
        let sizes = run.log.map { line -> (Int, Int) in
            let change = line.split(separator: " ")[2].split(separator: "→").map { Int($0)! }
            return (change[0], change[1])
        }
        #expect(!sizes.isEmpty)
        // Only growth, each step at most `maxGrowth` times, ending at what the ramp's
        // end needs (240 / 4 = 60 slots) or a little more.
        #expect(sizes.allSatisfy { $0.1 > $0.0 && $0.1 <= ScalingSettings.defaults.maxGrowth * $0.0 })
        #expect(run.log.allSatisfy { $0.hasSuffix("backlog") || $0.hasSuffix("queue_wait") })
        #expect((60...64).contains(run.scaler.sizes[0]), "\(run.log)")
        #expect(load.queue < 240, "the pool keeps up with the ramp's end: \(load.queue) waiting")
    }

    @Test("a burst grows only as far as its backlog needs")
    func burst() {
        var run = Run([shared])
        var load = TickLoad(perSlot: 1)
        // Three jobs, once: 1 slot is pressured (backlog 2, then 1), and grows by what waits.
        run.run(&load, ticks: 1, arrivals: { _ in 3 })
        run.run(&load, ticks: 20, arrivals: { _ in 0 })
        // Tick 1: served 1, backlog 2 (pressure since 0.25); tick 2: served 1, backlog 1:
        // grows by min(size 1, backlog 1) to 2. Tick 3 serves the last one.
        #expect(run.log == ["0.50 shared 1→2 backlog"])
    }

    @Test("an oscillating load (on 10 s, off 10 s) does not make the pool oscillate")
    func oscillating() {
        var run = Run([shared])
        var load = TickLoad(perSlot: 2)
        // 40 jobs a tick for 10 s (needs 20 slots), then 10 s of nothing, for 5 minutes.
        run.run(&load, ticks: 1_200, arrivals: { ($0 / 40) % 2 == 0 ? 40 : 0 })
        // Growth in the first period only: the backlog (156 at 1.5 s) is still there
        // at 16, so the pool quadruples once more, and 64 drains it by 2.0 s (last
        // pressure 1.75 s), running 54 slots for that tail. The first check, 30 s
        // later (31.75 s), keeps 64 (54 / 0.75 is above it); the next (36.75 s) has
        // only the on periods' 20 in its window (27) and halves to 32; the one after
        // (41.75 s) stops at 27, above the hysteresis floor (17: one above 16, where
        // it was pressured). The off periods (10 s) are shorter than the quiet
        // period, so the floor holds and the pool stays at 27 for the remaining four
        // minutes.
        #expect(run.log == [
            "0.50 shared 1→4 backlog",
            "1.00 shared 4→16 backlog",
            "1.50 shared 16→64 backlog",
            "36.75 shared 64→32 quiet",
            "41.75 shared 32→27 quiet",
        ])
        #expect(run.scaler.sizes == [27])
    }

    @Test("a shrink that leads to pressure is not repeated: the pool keeps the size it shrank from")
    func shrinkProbeOnce() {
        // Jobs that take no slot time (busy stays 0, like no-op jobs), so the peak of
        // busy slots cannot hold the size: only the hysteresis can.
        var settings = ScalingSettings.defaults
        settings.quietPeriod = .seconds(2)
        settings.downInterval = .seconds(1)
        // Doubling steps: the sizes this rule is shown at (4, 5, 8) come from them.
        settings.maxGrowth = 2
        var run = Run([PoolScaler.Pool(name: "shared", rank: 0, bounds: 1...16)], settings: settings)
        // 8 slots keep up with the load; fewer leave a backlog of 5.
        for tick in 1...200 {
            run.tick = tick
            let size = run.scaler.sizes[0]
            run.step([PoolScaler.Observation(busy: 0, occupied: size, backlog: size < 8 ? 5 : 0, started: 10)])
        }
        #expect(run.log == [
            "0.50 shared 1→2 backlog",
            "1.00 shared 2→4 backlog",
            "1.50 shared 4→8 backlog",
            // Quiet 2 s after the last pressure (1.5 s): halving is held at 5, one
            // above 4, where it was pressured.
            "3.50 shared 8→5 quiet",
            // Pressured at 5: 5 + min(5, backlog 5).
            "4.00 shared 5→10 backlog",
            // Quiet again: not below 8, the size the failed shrink started from.
            "6.00 shared 10→8 quiet",
        ])
        #expect(run.scaler.sizes == [8])
    }

    @Test("the ceiling goes to high first; low keeps its minimum; reclaimed slots are logged")
    func priorityUnderCeiling() {
        var settings = ScalingSettings.defaults
        settings.maxTotalWorkers = 20
        // Doubling steps, so the ceiling is reached over several decisions.
        settings.maxGrowth = 2
        let pools = [
            PoolScaler.Pool(name: "high", rank: 0, bounds: 2...16),
            PoolScaler.Pool(name: "normal", rank: 1, bounds: 1...16),
            PoolScaler.Pool(name: "low", rank: 2, bounds: 2...16),
        ]
        var run = Run(pools, settings: settings)
        func busy(_ size: Int) -> PoolScaler.Observation {
            PoolScaler.Observation(busy: size, occupied: size, backlog: 1_000, started: size)
        }
        // Low alone is flooded first: the budget (20 - 5 = 15) lets it reach its maximum.
        for tick in 1...8 {
            run.tick = tick
            let sizes = run.scaler.sizes
            run.step([.idle, .idle, busy(sizes[2])])
        }
        #expect(run.log == [
            "0.50 low 2→4 backlog",
            "1.00 low 4→8 backlog",
            "1.50 low 8→16 backlog",
        ])
        #expect(run.scaler.sizes == [2, 1, 16])
        run.log.removeAll()
        // Now high and low both flooded: high takes the last free slot, then low's
        // slots above its minimum; low never goes below 2.
        for tick in 9...20 {
            run.tick = tick
            let sizes = run.scaler.sizes
            run.step([busy(sizes[0]), .idle, busy(sizes[2])])
        }
        #expect(run.log == [
            // 2.50: high wants 4 (2 more), the budget has 1: low gives the other.
            "2.50 low 16→15 reclaimed",
            "2.50 high 2→4 backlog",
            "3.00 low 15→11 reclaimed",
            "3.00 high 4→8 backlog",
            "3.50 low 11→3 reclaimed",
            "3.50 high 8→16 backlog",
        ])
        #expect(run.scaler.sizes == [16, 1, 3])
        #expect(run.scaler.sizes.reduce(0, +) <= 20)
        #expect(run.scaler.sizes[2] >= 2)
    }

    @Test("when high and low press at once, high is decided first and low gets only what is left")
    func highFirstInOneTick() {
        var settings = ScalingSettings.defaults
        settings.maxTotalWorkers = 12
        let pools = [
            PoolScaler.Pool(name: "high", rank: 0, bounds: 4...16),
            PoolScaler.Pool(name: "low", rank: 2, bounds: 4...16),
        ]
        var run = Run(pools, settings: settings)
        let flooded = { (size: Int) in PoolScaler.Observation(busy: size, occupied: size, backlog: 500, started: size) }
        for tick in 1...6 {
            run.tick = tick
            let sizes = run.scaler.sizes
            run.step([flooded(sizes[0]), flooded(sizes[1])])
        }
        // Budget 4 at 0.50: high takes all of it; low, pressured as long, gets nothing
        // and keeps its minimum; high can then not grow further (low is at its minimum).
        #expect(run.log == ["0.50 high 4→8 backlog"])
        #expect(run.scaler.sizes == [8, 4])
        // What each wants is published: both are short (a pressured pool wants up to
        // 4 times its size, beyond its maximum too, so an operator can add daemons).
        #expect(run.scaler.desired(now: run.now) == [32, 16])
    }

    @Test("queue wait counts only while the slots run jobs")
    func queueWait() {
        var run = Run([shared])
        let late = PoolScaler.Observation(busy: 1, occupied: 1, backlog: 0, started: 1, maxWait: .seconds(2))
        let lateButIdle = PoolScaler.Observation(busy: 0, occupied: 1, backlog: 0, started: 1, maxWait: .seconds(2))
        run.tick = 1; run.step([lateButIdle])
        run.tick = 2; run.step([lateButIdle])
        #expect(run.log.isEmpty)
        run.tick = 3; run.step([late])
        run.tick = 4; run.step([late])
        #expect(run.log == ["1.00 shared 1→2 queue_wait"])
    }

    @Test("new bounds move the size into them at once; fixed bounds never resize")
    func bounds() {
        var scaler = PoolScaler(pools: [PoolScaler.Pool(name: "shared", rank: 0, bounds: 8...8)], settings: .defaults)
        let flooded = PoolScaler.Observation(busy: 8, occupied: 8, backlog: 100, started: 8)
        for tick in 1...20 { #expect(scaler.tick(now: .milliseconds(250 * tick), observations: [flooded]).isEmpty) }
        // It still publishes what it wants: 4 times its size.
        #expect(scaler.desired(now: .seconds(5)) == [32])
        #expect(scaler.setBounds([2...4], now: .seconds(6)) == [PoolScaler.Decision(pool: 0, from: 8, to: 4, reason: .bounds)])
        #expect(scaler.setBounds([10...20], now: .seconds(7)) == [PoolScaler.Decision(pool: 0, from: 4, to: 10, reason: .bounds)])
        #expect(scaler.setBounds([10...30], now: .seconds(8)).isEmpty)
        #expect(scaler.sizes == [10])
    }
}
