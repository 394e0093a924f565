/// How the autoscaler sizes worker pools between their bounds (`JOBD_WORKERS=1-64`).
public struct ScalingSettings: Sendable, Equatable {
    /// How often each pool is sampled (`JOBD_SCALE_SAMPLE_INTERVAL`).
    public var sampleInterval: Duration = .milliseconds(250)
    /// How long a pool must stay under pressure before it grows: two samples in a row,
    /// so one unlucky sample never grows a pool.
    public var growAfter: Duration = .milliseconds(250)
    /// Time without pressure before a pool starts to shrink (`JOBD_SCALE_QUIET_PERIOD`).
    public var quietPeriod: Duration = .seconds(30)
    /// Time between two shrink steps once quiet (`JOBD_SCALE_DOWN_INTERVAL`).
    public var downInterval: Duration = .seconds(5)
    /// A started attempt that waited this long (due → start) is pressure, when the
    /// pool's slots are running jobs.
    public var waitThreshold: Duration = .milliseconds(500)
    /// The share of a pool's slots that must be taken for it to count as saturated.
    public var saturation: Double = 0.75
    /// One growth step multiplies a pool by at most this (values below 2 count as 2),
    /// and adds no more slots than jobs it saw waiting. 4 takes a pool from 1 to 64 in three steps (1.5 s at the
    /// default sampling) where doubling took six (3 s): the ramp's lost capacity is
    /// what an autoscaled pool's queue wait pays over a fixed one's after a step load.
    public var maxGrowth: Int = 4
    /// Ceiling of all pools' slots together (`JOBD_MAX_TOTAL_WORKERS`); nil: the sum
    /// of the pools' maxima.
    public var maxTotalWorkers: Int?

    public init() {}

    public static let defaults = ScalingSettings()
}

/// The autoscaler's decisions: a pure state machine with an injected clock.
///
/// The runtime samples every pool each `sampleInterval`, passes the samples with the
/// time since it started to `tick`, and applies the returned decisions (resizing the
/// pools' slots). Nothing here reads a clock or does I/O, so a load can be replayed
/// tick by tick and every decision asserted.
///
/// - **Pressure**: a pool is pressured when its slots are taken (at least
///   `saturation` of them) and work waits for it: jobs in its Redis lists, or started
///   attempts that waited `waitThreshold` or more while its slots were running jobs.
/// - **Growth** is fast: pressure that lasts `growAfter` multiplies the pool by up to
///   `maxGrowth` (never more than the backlog it saw needs, never above its maximum).
///   The pressure timer then restarts, so the new slots are filled before the next
///   step.
/// - **Shrink** is slow: after `quietPeriod` without pressure the pool halves every
///   `downInterval`, down to its minimum — but never below what its busiest sample
///   of the last quiet period needed (`busy / saturation`), so a steady or
///   intermittent load keeps the slots it uses.
/// - **Hysteresis**: a pool does not shrink back to a size at which it was pressured
///   (it stays one above it), and once a shrink led to pressure again it does not go
///   below the size it shrank from; both hold until the pool has been idle — nothing
///   running, waiting or started — for a whole quiet period. A steady load therefore
///   settles at one size instead of shrinking into pressure and growing again.
/// - **Cost ceiling**: all pools together never exceed `maxTotalWorkers`.
/// - **Priority**: when several pools grow at once, high goes first, then normal,
///   then low; a pool short of budget takes slots from lower-priority pools above
///   their minimum (low first). No pool ever goes below its minimum, so low never
///   starves.
public struct PoolScaler: Sendable, Equatable {
    /// One pool as the controller knows it.
    public struct Pool: Sendable, Equatable {
        public var name: String
        /// 0 is served first when budget is short (a shared pool, or high).
        public var rank: Int
        public var bounds: ClosedRange<Int>
        public init(name: String, rank: Int, bounds: ClosedRange<Int>) {
            self.name = name
            self.rank = rank
            self.bounds = bounds
        }
    }

    /// One pool's sample.
    public struct Observation: Sendable, Equatable {
        /// Slots running an attempt.
        public var busy: Int
        /// Slots running an attempt or reserved by a claim in flight.
        public var occupied: Int
        /// Jobs ready for this pool and not yet taken (its Redis lists' lengths).
        public var backlog: Int
        /// Attempts started since the previous sample.
        public var started: Int
        /// The longest queue wait (due → start) among them; nil when none started.
        public var maxWait: Duration?

        public init(busy: Int, occupied: Int, backlog: Int, started: Int, maxWait: Duration? = nil) {
            self.busy = busy
            self.occupied = occupied
            self.backlog = backlog
            self.started = started
            self.maxWait = maxWait
        }

        public static let idle = Observation(busy: 0, occupied: 0, backlog: 0, started: 0)
    }

    public enum Reason: String, Sendable, Equatable {
        /// Slots taken and jobs waiting in the pool's lists.
        case backlog
        /// Slots running jobs and attempts starting late.
        case queueWait = "queue_wait"
        /// No pressure for the quiet period.
        case quiet
        /// Given up to a higher-priority pool that needed slots beyond the ceiling.
        case reclaimed
        /// The bounds changed (reload) and the size was moved into them.
        case bounds
    }

    public struct Decision: Sendable, Equatable, CustomStringConvertible {
        public var pool: Int
        public var from: Int
        public var to: Int
        public var reason: Reason
        /// What the pool's sample showed when the decision was taken.
        public var backlog: Int
        public var maxWait: Duration?

        public init(pool: Int, from: Int, to: Int, reason: Reason, backlog: Int = 0, maxWait: Duration? = nil) {
            self.pool = pool
            self.from = from
            self.to = to
            self.reason = reason
            self.backlog = backlog
            self.maxWait = maxWait
        }

        public var direction: String { to > from ? "up" : "down" }
        public var description: String { "pool \(pool): \(from)→\(to) (\(reason.rawValue))" }
    }

    /// The busiest sample of a stretch of time that started at `start`.
    private struct BusyPeak: Sendable, Equatable {
        var start: Duration
        var peak: Int
    }

    private struct PoolState: Sendable, Equatable {
        var size: Int
        /// Since when the pool has been pressured without a break (nil: not now).
        var pressureSince: Duration?
        /// The last pressured sample, grow or reclaim: the quiet period counts from here.
        var lastActivity: Duration
        /// The last shrink check (every `downInterval` once quiet); nil after pressure.
        var lastCheck: Duration?
        /// Since when the pool has been idle without a break.
        var idleSince: Duration?
        /// The pool does not shrink below this (hysteresis): one above a size at which
        /// it was pressured, or the size a shrink left before pressure came back.
        /// Reset to the minimum once idle for a quiet period.
        var floor: Int
        /// What it asked for at its last pressured sample.
        var lastWant: Int
        /// The size the last shrink started from, until the pool grows or idles.
        var shrunkFrom: Int?
        /// The most slots running at once in unpressured samples, per sixth of a quiet
        /// period, for the last quiet period: what the load that stays needs.
        var busyPeaks: [BusyPeak] = []

        /// A sliding maximum over `window`, in six stretches (at most seven kept).
        mutating func recordBusy(_ busy: Int, now: Duration, window: Duration) {
            busyPeaks.removeAll { now - $0.start >= window }
            if let last = busyPeaks.last, now - last.start < window / 6 {
                busyPeaks[busyPeaks.count - 1].peak = max(last.peak, busy)
            } else {
                busyPeaks.append(BusyPeak(start: now, peak: busy))
            }
        }
    }

    public private(set) var pools: [Pool]
    public let settings: ScalingSettings
    private var states: [PoolState]

    public init(pools: [Pool], settings: ScalingSettings, now: Duration = .zero) {
        self.pools = pools
        self.settings = settings
        self.states = pools.map {
            PoolState(size: $0.bounds.lowerBound, lastActivity: now, floor: $0.bounds.lowerBound, lastWant: $0.bounds.lowerBound)
        }
    }

    /// Each pool's current size, in the order of `pools`.
    public var sizes: [Int] { states.map(\.size) }

    /// The ceiling of all pools together.
    public var ceiling: Int { settings.maxTotalWorkers ?? pools.map(\.bounds.upperBound).reduce(0, +) }

    /// What each pool would run if its maximum and the ceiling allowed: its size, or
    /// more while it was pressured within the last quiet period. The capacity a
    /// daemon lacks is `desired - size`, summed over pools.
    public func desired(now: Duration) -> [Int] {
        states.map { state in
            now - state.lastActivity < settings.quietPeriod ? max(state.size, state.lastWant) : state.size
        }
    }

    /// New bounds for the pools (a reload); a size outside them moves into them.
    public mutating func setBounds(_ bounds: [ClosedRange<Int>], now: Duration) -> [Decision] {
        precondition(bounds.count == pools.count, "one range per pool")
        var decisions: [Decision] = []
        for index in pools.indices {
            pools[index].bounds = bounds[index]
            let size = states[index].size
            let clamped = min(max(size, bounds[index].lowerBound), bounds[index].upperBound)
            states[index].floor = min(max(states[index].floor, bounds[index].lowerBound), bounds[index].upperBound)
            if clamped != size {
                states[index].size = clamped
                states[index].lastActivity = now
                decisions.append(Decision(pool: index, from: size, to: clamped, reason: .bounds))
            }
        }
        return decisions
    }

    /// One sample of every pool, in the order of `pools`; returns the resizes to apply.
    public mutating func tick(now: Duration, observations: [Observation]) -> [Decision] {
        precondition(observations.count == pools.count, "one observation per pool")
        var growing: [(pool: Int, want: Int, reason: Reason)] = []

        for index in pools.indices {
            let sample = observations[index]
            var state = states[index]
            let size = state.size
            let needed = max(1, Int((Double(size) * settings.saturation).rounded(.up)))
            let slotsTaken = sample.occupied >= needed
            let slotsRunning = sample.busy >= needed
            let late = sample.maxWait.map { $0 >= settings.waitThreshold } ?? false
            let reason: Reason? =
                slotsTaken && sample.backlog > 0 ? .backlog : slotsRunning && late ? .queueWait : nil

            if let reason {
                let since = state.pressureSince ?? now
                state.pressureSince = since
                state.lastActivity = now
                state.idleSince = nil
                state.lastCheck = nil
                // Up to maxGrowth times, but never more than the jobs seen waiting need.
                let want = size + min(size * (max(2, settings.maxGrowth) - 1), max(1, sample.backlog))
                state.lastWant = want
                if now - since >= settings.growAfter {
                    growing.append((index, min(want, pools[index].bounds.upperBound), reason))
                }
            } else {
                state.pressureSince = nil
                let idle = sample.busy == 0 && sample.backlog == 0 && sample.started == 0
                if idle {
                    let since = state.idleSince ?? now
                    state.idleSince = since
                    if now - since >= settings.quietPeriod {
                        state.floor = pools[index].bounds.lowerBound
                        state.shrunkFrom = nil
                    }
                } else {
                    state.idleSince = nil
                }
            }
            if reason == nil { state.recordBusy(sample.busy, now: now, window: settings.quietPeriod) }
            states[index] = state
        }

        var decisions: [Decision] = []
        var budget = ceiling - states.map(\.size).reduce(0, +)
        let growingPools = Set(growing.map(\.pool))

        // High first: the ceiling's budget, then what lower-priority pools can give.
        for grow in growing.sorted(by: { (pools[$0.pool].rank, $0.pool) < (pools[$1.pool].rank, $1.pool) }) {
            let size = states[grow.pool].size
            var need = grow.want - size
            guard need > 0 else { continue }
            if budget < need {
                let donors = pools.indices
                    .filter { pools[$0].rank > pools[grow.pool].rank }
                    .sorted { (pools[$0].rank, $0) > (pools[$1].rank, $1) }
                for donor in donors where budget < need {
                    let spare = states[donor].size - pools[donor].bounds.lowerBound
                    let take = min(spare, need - budget)
                    guard take > 0 else { continue }
                    let from = states[donor].size
                    states[donor].size -= take
                    states[donor].lastActivity = now
                    states[donor].floor = min(states[donor].floor, states[donor].size)
                    budget += take
                    decisions.append(Decision(
                        pool: donor, from: from, to: from - take, reason: .reclaimed,
                        backlog: observations[donor].backlog, maxWait: observations[donor].maxWait))
                }
            }
            need = min(need, budget)
            guard need > 0 else { continue }  // still pressured: tried again next sample
            budget -= need
            states[grow.pool].size = size + need
            states[grow.pool].pressureSince = nil
            states[grow.pool].lastCheck = nil
            // Not back to a size that proved too small, nor below one a shrink left.
            let learned = max(size + 1, states[grow.pool].shrunkFrom ?? 0)
            states[grow.pool].floor = max(states[grow.pool].floor, min(learned, pools[grow.pool].bounds.upperBound))
            states[grow.pool].shrunkFrom = nil
            decisions.append(Decision(
                pool: grow.pool, from: size, to: size + need, reason: grow.reason,
                backlog: observations[grow.pool].backlog, maxWait: observations[grow.pool].maxWait))
        }

        // Once quiet, a shrink check every `downInterval`: at most one halving, never
        // below what the busiest recent sample needed.
        for index in pools.indices where !growingPools.contains(index) && states[index].pressureSince == nil {
            var state = states[index]
            guard now - state.lastActivity >= settings.quietPeriod else { continue }
            if let last = state.lastCheck, now - last < settings.downInterval { continue }
            let peak = min(state.busyPeaks.map(\.peak).max() ?? 0, pools[index].bounds.upperBound)
            let used = min(Int((Double(peak) / settings.saturation).rounded(.up)), pools[index].bounds.upperBound)
            let target = max(pools[index].bounds.lowerBound, state.floor, state.size / 2, used)
            state.lastCheck = now
            if target < state.size {
                decisions.append(Decision(
                    pool: index, from: state.size, to: target, reason: .quiet,
                    backlog: observations[index].backlog, maxWait: observations[index].maxWait))
                state.shrunkFrom = state.size
                state.size = target
            }
            states[index] = state
        }
        return decisions
    }
}
