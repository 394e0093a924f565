import Foundation
import JobdAssembly
import JobdCore
import JobdPostgres
import JobdQueue
import Synchronization

// MARK: - The autoscale section's results

extension BenchReport {
    /// `--sections autoscale`: how fast a pool with bounds follows a load that steps
    /// above the host's capacity and back, compared with a fixed pool of its maximum
    /// on the same servers in the same run; and whether a burst of high-priority jobs
    /// waits longer while the low pool is busy than on an idle daemon.
    struct Autoscale: Codable {
        /// How long each job's handler sleeps: the pool's size, not the host's CPU,
        /// bounds the drain rate (64 slots × 20 ms = 3,200 jobs/s at most).
        var jobMs: Double
        var baseRate: Double
        var stepRate: Double
        var stepSeconds: Double
        /// Rounds of one autoscaled and one fixed run, alternating which goes first.
        var rounds: Int
        /// Every run in the order they ran.
        var runs: [StepRun]
        /// The fixed pool's completion rate over the second half of the step, its drain
        /// rate: the mean of the rounds (each run is judged against its own round's).
        var fixedDrainPerSecond: Double
        /// From the step until the autoscaled pool's completions over 0.5 s reach 90% of
        /// its round's fixed drain rate, the worst round; nil when a round never got there.
        var secondsTo90Percent: Double?
        /// The same for the fixed pool (what the measurement itself costs).
        var fixedSecondsTo90Percent: Double?
        /// From the last job's completion (nothing offered or waiting any more) until
        /// the autoscaled pool is back at its minimum, the worst round; nil when a round
        /// did not get there within the wait.
        var secondsToMinimum: Double?
        var quietPeriodSeconds: Double
        var downIntervalSeconds: Double
        /// Autoscaled p99 queue wait during the step over the fixed pool's of the same
        /// round, the worst round.
        var queueWaitP99Ratio: Double?
        var burst: Burst?
    }

    struct StepRun: Codable {
        /// "1-64" (autoscaled) or "64" (fixed).
        var workers: String
        var autoscaled: Bool
        var round = 1
        /// Jobs inserted during the step, and in all.
        var stepJobs: Int
        var jobs: Int
        /// Completions per second over the second half of the step.
        var steadyPerSecond: Double
        /// The fixed run's `steadyPerSecond` of the same round.
        var fixedDrainPerSecond = 0.0
        var secondsTo90Percent: Double?
        /// INSERT commit → handler start of the jobs inserted during the step.
        var queueWaitP50Ms: Double
        var queueWaitP99Ms: Double
        var queueWaitMaxMs: Double
        var peakWorkers: Int
        var secondsToMinimum: Double?
        /// This process's CPU (daemon and the four producers) per 1,000 jobs.
        var cpuSecondsPer1000: Double
        /// Every 0.5 s from the start of the load: seconds, completions/s in the
        /// half second before, worker slots.
        var timeline: [[Double]]
    }

    struct Burst: Codable {
        var workers: String
        var highJobs: Int
        var highJobMs: Double
        var lowJobs: Int
        var lowJobMs: Double
        var rounds: Int
        /// INSERT commit → handler start of the high jobs, every round's pooled.
        var idleP50Ms: Double
        var idleP99Ms: Double
        var busyP50Ms: Double
        var busyP99Ms: Double
        /// busyP99Ms / idleP99Ms.
        var ratio: Double?
        /// The low pool's running slots when each busy round's burst went in (the
        /// evidence that low was busy), and its maximum.
        var lowBusyAtBurst: [Int]
        var lowMaximum: Int
    }

    func autoscaleLines() -> [String] {
        guard let a = autoscale else { return [] }
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        func o(_ value: Double?, _ digits: Int = 1, _ unit: String = " s") -> String { value.map { f($0, digits) + unit } ?? "not reached" }
        var lines = [
            "",
            "autoscale (jobs sleeping \(f(a.jobMs)) ms; \(f(a.baseRate))/s, then \(f(a.stepRate))/s for \(f(a.stepSeconds)) s, then \(f(a.baseRate))/s",
            "           until the backlog is gone, then nothing; \(a.rounds) round(s) of both pools, alternating which goes first, same servers;",
            "           queue wait = INSERT commit → handler start; targets judged on the worst round)",
            "  round workers    step jobs  steady jobs/s  to 90% of fixed  wait p50 ms   p99 ms   peak  back to min  cpu s/1000",
        ]
        for r in a.runs {
            lines.append("  \(String(r.round).pad(5)) \(r.workers.padRight(9)) \(String(r.stepJobs).pad(10)) \(f(r.steadyPerSecond).pad(14)) \(o(r.secondsTo90Percent, 2).pad(16)) \(f(r.queueWaitP50Ms, 1).pad(11)) \(f(r.queueWaitP99Ms, 1).pad(8)) \(String(r.peakWorkers).pad(6)) \((r.autoscaled ? o(r.secondsToMinimum) : "-").pad(12)) \(f(r.cpuSecondsPer1000, 3).pad(11))")
        }
        lines.append("  fixed drain \(a.runs.filter { !$0.autoscaled }.map { f($0.steadyPerSecond) }.joined(separator: ", ")) jobs/s (each round's the level for its autoscaled run); quiet period \(f(a.quietPeriodSeconds, 2)) s, down interval \(f(a.downIntervalSeconds, 2)) s")
        if let b = a.burst {
            lines.append("  burst of \(b.highJobs) high jobs (\(f(b.highJobMs)) ms) on \(b.workers), \(b.rounds) round(s): wait p50/p99 idle \(f(b.idleP50Ms, 1))/\(f(b.idleP99Ms, 1)) ms,")
            lines.append("    low busy (\(b.lowJobs) jobs of \(f(b.lowJobMs)) ms; low slots running at the burst: \(b.lowBusyAtBurst.map(String.init).joined(separator: ",")) of \(b.lowMaximum)) \(f(b.busyP50Ms, 1))/\(f(b.busyP99Ms, 1)) ms, p99 ratio \(b.ratio.map { f($0, 2) } ?? "-")")
        }
        return lines
    }
}

extension BenchTargets {
    static func autoscale(_ r: BenchReport) -> [BenchReport.Target] {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        let a = r.autoscale
        // A section that ran but never reached the level missed the target.
        let toDrain: Bool? = a.map { a in a.secondsTo90Percent.map { $0 <= 5 } ?? false }
        let toMinimum: Bool? = a.map { a in a.secondsToMinimum.map { $0 <= 60 } ?? false }
        let fixedWorkers = a?.runs.first { !$0.autoscaled }?.workers ?? "64"
        return [
            .init(
                name: "autoscale: 90% of fixed-\(fixedWorkers) drain", target: "≤ 5 s after step",
                measured: a.map { a in a.secondsTo90Percent.map { "\(f($0, 2)) s" } ?? "not reached" } ?? "-", met: toDrain),
            .init(
                name: "autoscale: back to minimum", target: "≤ 60 s of quiet",
                measured: a.map { a in a.secondsToMinimum.map { "\(f($0, 1)) s" } ?? "not reached" } ?? "-", met: toMinimum),
            .init(
                name: "autoscale: step wait p99 vs fixed", target: "≤ +20%",
                measured: a?.queueWaitP99Ratio.map { "\(f(($0 - 1) * 100, 1))%" } ?? "-",
                met: a?.queueWaitP99Ratio.map { $0 <= 1.2 }),
            .init(
                name: "burst: high wait p99, low busy/idle", target: "≤ 2×",
                measured: a?.burst?.ratio.map { "\(f($0, 2))×" } ?? "-", met: a?.burst?.ratio.map { $0 <= 2 }),
        ]
    }
}

// MARK: - The runs

/// A probe whose handler notes its start (as `ProbeHandler` does) and then sleeps, so
/// a pool's size bounds how many run per second.
struct SleepingProbeHandler: JobHandler {
    let kind: String
    let duration: Duration
    let clock: ProbeClock
    func handle(_ job: ClaimedJob, context: JobContext) async throws {
        clock.record(job.id, queueWait: job.queueWaitSeconds)
        try await Task.sleep(for: duration)
    }
}

/// What the producers and the sampler share with the run that steers them.
private final class StepControl: Sendable {
    let stop = Atomic<Bool>(false)
    let stopSampling = Atomic<Bool>(false)
    let committed = Atomic<Int>(0)
}

/// One sample of a running daemon: seconds since the load started, completions so
/// far, worker slots.
private struct PoolSample: Sendable {
    var t: Double
    var completed: Int
    var workers: Int
}

/// The sizes the section runs at: the (1-64, 100/s, 10 s step) in full mode,
/// a tiny version for the smoke test.
struct AutoscalePlan: Sendable {
    var maximum: Int
    var jobMs: Double
    var baseRate: Double
    var stepRate: Double
    var preSeconds: Double
    var stepSeconds: Double
    /// Base load kept up after the step's backlog is gone.
    var tailSeconds: Double
    /// The autoscaler's quiet period and down interval (nil: the defaults, 30 s and 5 s).
    var quietPeriod: Duration?
    var downInterval: Duration?
    /// How long the autoscaled pool may take to return to its minimum before the run gives up.
    var minimumWait: Double
    var burstHigh: Int
    var burstHighMs: Double
    var burstLow: Int
    var burstLowMs: Double
    var burstBounds: [JobPriority: ClosedRange<Int>]
    var burstRounds: Int
    var rounds: Int

    static func make(quick: Bool) -> AutoscalePlan {
        if quick {
            return AutoscalePlan(
                maximum: 8, jobMs: 20, baseRate: 100, stepRate: 600, preSeconds: 0.5, stepSeconds: 2, tailSeconds: 0.5,
                quietPeriod: .seconds(1), downInterval: .milliseconds(250), minimumWait: 20,
                burstHigh: 40, burstHighMs: 10, burstLow: 60, burstLowMs: 50,
                burstBounds: [.high: 1...8, .normal: 1...2, .low: 1...2], burstRounds: 1, rounds: 1)
        }
        // The step offers half again what 64 sleeping slots can drain, so a backlog
        // builds for both pools and the comparison is of drain rates.
        return AutoscalePlan(
            maximum: 64, jobMs: 20, baseRate: 100, stepRate: 4_800, preSeconds: 3, stepSeconds: 10, tailSeconds: 5,
            quietPeriod: nil, downInterval: nil, minimumWait: 150,
            burstHigh: 200, burstHighMs: 10, burstLow: 2_000, burstLowMs: 50,
            burstBounds: [.high: 4...64, .normal: 2...32, .low: 1...8], burstRounds: 3, rounds: 2)
    }
}

extension Bench {
    /// The autoscale section: the step load on a `1-max` pool and on a fixed `max`
    /// pool, one after the other, then the burst.
    func autoscale() async throws -> BenchReport.Autoscale {
        let plan = AutoscalePlan.make(quick: quick)
        let stepEnd = plan.preSeconds + plan.stepSeconds
        var runs: [BenchReport.StepRun] = []
        var drains: [Double] = [], ratios: [Double?] = []
        // Rounds in alternating order (autoscaled first, then fixed first), and each
        // autoscaled run judged against the fixed run of its own round: on a shared
        // host the drain rate moves by half from one minute to the next.
        for round in 0..<plan.rounds {
            var pair: [(run: BenchReport.StepRun, samples: [PoolSample])] = []
            for autoscaled in round % 2 == 0 ? [true, false] : [false, true] {
                var result = try await stepRun(plan: plan, autoscaled: autoscaled)
                result.run.round = round + 1
                pair.append(result)
            }
            guard let fixed = pair.first(where: { !$0.run.autoscaled }), let scaled = pair.first(where: { $0.run.autoscaled }) else { continue }
            let drain = Self.rate(fixed.samples, from: plan.preSeconds + plan.stepSeconds / 2, to: stepEnd)
            drains.append(drain)
            for (run, samples) in pair {
                var run = run
                run.fixedDrainPerSecond = drain
                run.secondsTo90Percent = Self.secondsToReach(0.9 * drain, in: samples, stepStart: plan.preSeconds, stepEnd: stepEnd)
                runs.append(run)
            }
            ratios.append(fixed.run.queueWaitP99Ms > 0 ? scaled.run.queueWaitP99Ms / fixed.run.queueWaitP99Ms : nil)
        }
        /// The worst of the rounds; nil when one round never got there.
        func worst(_ values: [Double?]) -> Double? {
            values.contains { $0 == nil } ? nil : values.compactMap { $0 }.max()
        }
        let scaled = runs.filter(\.autoscaled), fixed = runs.filter { !$0.autoscaled }
        let settings = ScalingSettings.defaults
        return BenchReport.Autoscale(
            jobMs: plan.jobMs, baseRate: plan.baseRate, stepRate: plan.stepRate, stepSeconds: plan.stepSeconds,
            rounds: plan.rounds, runs: runs,
            fixedDrainPerSecond: drains.isEmpty ? 0 : drains.reduce(0, +) / Double(drains.count),
            secondsTo90Percent: worst(scaled.map(\.secondsTo90Percent)),
            fixedSecondsTo90Percent: worst(fixed.map(\.secondsTo90Percent)),
            secondsToMinimum: worst(scaled.map(\.secondsToMinimum)),
            quietPeriodSeconds: (plan.quietPeriod ?? settings.quietPeriod).seconds,
            downIntervalSeconds: (plan.downInterval ?? settings.downInterval).seconds,
            queueWaitP99Ratio: worst(ratios),
            burst: try await burst(plan: plan))
    }

    /// One pool under the step load: `baseRate` for `preSeconds`, `stepRate` for
    /// `stepSeconds`, `baseRate` again until every job inserted so far has started and
    /// `tailSeconds` more, then nothing. Four producer connections insert small batches
    /// (as the latency section's do), paced by the time that actually passed, so a
    /// slow INSERT does not lower the offered rate. A sampler notes completions and
    /// slots every 100 ms.
    private func stepRun(plan: AutoscalePlan, autoscaled: Bool) async throws -> (run: BenchReport.StepRun, samples: [PoolSample]) {
        try await reset()
        _ = probes.take()
        _ = probes.takeQueueWaits()
        let producerCount = 4
        let producers = (0..<producerCount).map { connections.postgres("bench-step-\($0)") }
        for producer in producers { try await producer.connect() }
        let control = StepControl()
        let handler = SleepingProbeHandler(kind: "bench.step", duration: .milliseconds(Int(plan.jobMs)), clock: probes)
        let cpuBefore = cpuSeconds()
        let stepStart = plan.preSeconds, stepEnd = plan.preSeconds + plan.stepSeconds
        let outcome = try await withDaemon(workers: plan.maximum, extraHandlers: [handler], adjust: { config in
            if autoscaled {
                config.workers = .sharedScaling(1...plan.maximum)
                if let quiet = plan.quietPeriod { config.scaling.quietPeriod = quiet }
                if let down = plan.downInterval { config.scaling.downInterval = down }
            }
        }) { daemon -> (committed: [JobID: ContinuousClock.Instant], samples: [PoolSample], started: ContinuousClock.Instant, minimum: Double?) in
            try await Task.sleep(for: .milliseconds(300))  // connected and idle
            let started = ContinuousClock.now
            let rate: @Sendable (Double) -> Double = { t in
                (t >= stepStart && t < stepEnd ? plan.stepRate : plan.baseRate) / Double(producerCount)
            }
            return try await withThrowingTaskGroup(of: StepTask.self) { group in
                for (index, producer) in producers.enumerated() {
                    group.addTask {
                        .committed(try await offer(
                            on: producer, kind: "bench.step", rate: rate, started: started,
                            phase: Double(index) / Double(producerCount), control: control))
                    }
                }
                group.addTask {
                    var samples: [PoolSample] = []
                    while !control.stopSampling.load(ordering: .relaxed) {
                        samples.append(PoolSample(
                            t: started.duration(to: .now).seconds, completed: daemon.stats.completedCount,
                            workers: daemon.workerUsage.total))
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    return .samples(samples)
                }
                do {
                    try await Task.sleep(until: started + .milliseconds(Int(stepEnd * 1000)))
                    // The base load goes on until the step's backlog has started, then a little longer.
                    let backlog = control.committed.load(ordering: .relaxed)
                    try await waitUntil(timeout: 300) { probes.count >= backlog }
                    try await Task.sleep(for: .milliseconds(Int(plan.tailSeconds * 1000)))
                } catch {
                    control.stop.store(true, ordering: .relaxed)
                    control.stopSampling.store(true, ordering: .relaxed)
                    throw error
                }
                control.stop.store(true, ordering: .relaxed)
                var committed: [JobID: ContinuousClock.Instant] = [:]
                var samples: [PoolSample] = []
                var producersLeft = producerCount
                var minimum: Double?
                while let result = try await group.next() {
                    switch result {
                    case .committed(let rows):
                        committed.merge(rows) { a, _ in a }
                        producersLeft -= 1
                        guard producersLeft == 0 else { continue }
                        // The load has ended once its last job completed; from then on
                        // the autoscaled pool has nothing to do.
                        let total = committed.count
                        do {
                            try await waitUntil(timeout: 300) { daemon.stats.completedCount >= total }
                            let quiet = ContinuousClock.now
                            if autoscaled {
                                let floor = 1
                                let deadline = quiet + .milliseconds(Int(plan.minimumWait * 1000))
                                while ContinuousClock.now < deadline {
                                    if daemon.workerUsage.total <= floor {
                                        minimum = quiet.duration(to: .now).seconds
                                        break
                                    }
                                    try await Task.sleep(for: .milliseconds(50))
                                }
                            }
                        } catch {
                            control.stopSampling.store(true, ordering: .relaxed)
                            throw error
                        }
                        control.stopSampling.store(true, ordering: .relaxed)
                    case .samples(let taken):
                        samples = taken
                    }
                }
                return (committed, samples, started, minimum)
            }
        }
        let cpu = cpuSeconds() - cpuBefore
        for producer in producers { await producer.close() }
        let starts = probes.take()
        _ = probes.takeQueueWaits()
        var waits: [Double] = []
        var stepJobs = 0
        for (id, at) in outcome.committed {
            let t = outcome.started.duration(to: at).seconds
            guard t >= stepStart && t < stepEnd else { continue }
            stepJobs += 1
            if let start = starts[id] { waits.append(max(0, at.duration(to: start).seconds * 1000)) }
        }
        waits.sort()
        let samples = outcome.samples
        let run = BenchReport.StepRun(
            workers: autoscaled ? "1-\(plan.maximum)" : "\(plan.maximum)", autoscaled: autoscaled,
            stepJobs: stepJobs, jobs: outcome.committed.count,
            steadyPerSecond: Self.rate(samples, from: stepStart + plan.stepSeconds / 2, to: stepEnd),
            secondsTo90Percent: nil,
            queueWaitP50Ms: percentile(waits, 0.5), queueWaitP99Ms: percentile(waits, 0.99), queueWaitMaxMs: waits.last ?? 0,
            peakWorkers: samples.map(\.workers).max() ?? 0, secondsToMinimum: outcome.minimum,
            cpuSecondsPer1000: outcome.committed.isEmpty ? 0 : cpu / Double(outcome.committed.count) * 1_000,
            timeline: Self.timeline(samples))
        return (run, samples)
    }

    private enum StepTask: Sendable {
        case committed([JobID: ContinuousClock.Instant])
        case samples([PoolSample])
    }

    /// One producer: inserts what `rate` (rows per second at a time since `started`)
    /// owes, every producer interval, until told to stop; returns each row's commit time.
    private func offer(
        on producer: PostgresConnection, kind: String, rate: @Sendable (Double) -> Double, started: ContinuousClock.Instant,
        phase: Double, control: StepControl
    ) async throws -> [JobID: ContinuousClock.Instant] {
        let tick = Duration.microseconds(Int64(producerInterval * 1_000_000))
        var committed: [JobID: ContinuousClock.Instant] = [:]
        var owed = 0.0
        var last = started
        var next = started + tick * phase
        while !control.stop.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            if next > now { try await Task.sleep(until: next) }
            next = max(next, now) + tick
            let at = ContinuousClock.now
            owed += rate(started.duration(to: at).seconds) * last.duration(to: at).seconds
            last = at
            let rows = min(Int(owed), 10_000)
            guard rows > 0 else { continue }
            owed -= Double(rows)
            let ids = try await producer.rows(BenchStatements.InsertJobs(kind: kind, count: rows))
            let done = ContinuousClock.now
            for id in ids { committed[id] = done }
            control.committed.add(ids.count, ordering: .relaxed)
        }
        return committed
    }

    /// Completions per second between two times of the samples.
    private static func rate(_ samples: [PoolSample], from: Double, to: Double) -> Double {
        guard let first = samples.first(where: { $0.t >= from }), let last = samples.last(where: { $0.t <= to }),
              last.t > first.t else { return 0 }
        return Double(last.completed - first.completed) / (last.t - first.t)
    }

    /// Seconds from `stepStart` until the completions over a 0.5 s window (starting at
    /// or after the step) first reach `level` per second; nil if not before `stepEnd`.
    private static func secondsToReach(_ level: Double, in samples: [PoolSample], stepStart: Double, stepEnd: Double) -> Double? {
        guard level > 0 else { return nil }
        for (index, sample) in samples.enumerated() where sample.t <= stepEnd {
            guard let from = samples[..<index].last(where: { $0.t <= sample.t - 0.5 }), from.t >= stepStart else { continue }
            if Double(sample.completed - from.completed) / (sample.t - from.t) >= level { return sample.t - stepStart }
        }
        return nil
    }

    /// [seconds, completions/s over the half second before, slots] every 0.5 s.
    private static func timeline(_ samples: [PoolSample]) -> [[Double]] {
        var rows: [[Double]] = []
        var previous: PoolSample?
        for sample in samples {
            guard let before = previous else { previous = sample; continue }
            guard sample.t - before.t >= 0.5 else { continue }
            rows.append([
                (sample.t * 10).rounded() / 10, (Double(sample.completed - before.completed) / (sample.t - before.t)).rounded(),
                Double(sample.workers),
            ])
            previous = sample
        }
        return rows
    }

    private func waitUntil(timeout: Double, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CLIError("bench autoscale: not done within \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: burst

    /// Per-priority pools with bounds: a burst of high jobs on an idle daemon, and on one
    /// whose low pool runs a backlog of slow jobs (the burst goes in once low has grown
    /// to its maximum, or after 5 s), in alternating rounds, each on a fresh daemon.
    private func burst(plan: AutoscalePlan) async throws -> BenchReport.Burst {
        var idle: [Double] = [], busy: [Double] = [], lowBusy: [Int] = []
        for round in 0..<plan.burstRounds {
            for loaded in round % 2 == 0 ? [false, true] : [true, false] {
                let (waits, low) = try await burstRound(plan: plan, lowBusy: loaded)
                if loaded {
                    busy += waits
                    lowBusy.append(low)
                } else {
                    idle += waits
                }
            }
        }
        idle.sort()
        busy.sort()
        let idleP99 = percentile(idle, 0.99), busyP99 = percentile(busy, 0.99)
        let bounds = plan.burstBounds
        let layout = JobPriority.allCases.compactMap { lane in
            bounds[lane].map { "\(lane.rawValue):\($0.lowerBound)-\($0.upperBound)" }
        }.joined(separator: ",")
        return .init(
            workers: layout, highJobs: plan.burstHigh, highJobMs: plan.burstHighMs, lowJobs: plan.burstLow,
            lowJobMs: plan.burstLowMs, rounds: plan.burstRounds,
            idleP50Ms: percentile(idle, 0.5), idleP99Ms: idleP99, busyP50Ms: percentile(busy, 0.5), busyP99Ms: busyP99,
            ratio: idleP99 > 0 ? busyP99 / idleP99 : nil, lowBusyAtBurst: lowBusy, lowMaximum: bounds[.low]?.upperBound ?? 0)
    }

    private func burstRound(plan: AutoscalePlan, lowBusy: Bool) async throws -> (waits: [Double], lowRunning: Int) {
        try await reset()
        _ = probes.take()
        _ = probes.takeQueueWaits()
        let lows = ProbeClock()
        let handlers: [any JobHandler] = [
            SleepingProbeHandler(kind: "bench.high", duration: .milliseconds(Int(plan.burstHighMs)), clock: probes),
            SleepingProbeHandler(kind: "bench.low", duration: .milliseconds(Int(plan.burstLowMs)), clock: lows),
        ]
        let lowMaximum = plan.burstBounds[.low]?.upperBound ?? 1
        let (committed, at, lowRunning) = try await withDaemon(workers: 1, extraHandlers: handlers, adjust: { config in
            config.workers = .perPriorityScaling(plan.burstBounds)
        }) { daemon -> ([JobID], ContinuousClock.Instant, Int) in
            try await Task.sleep(for: .milliseconds(300))
            let low = daemon.pools.first { $0.name == JobPriority.low.rawValue }
            if lowBusy {
                try await sql.query(
                    "INSERT INTO queue.jobs (kind, payload, priority) SELECT 'bench.low', '{}', 'low' FROM generate_series(1, $1::int)",
                    [String(plan.burstLow)])
                let deadline = ContinuousClock.now + .seconds(5)
                while (low?.busy ?? 0) < lowMaximum && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            }
            let running = low?.busy ?? 0
            let result = try await sql.query(
                "INSERT INTO queue.jobs (kind, payload, priority) SELECT 'bench.high', '{}', 'high' FROM generate_series(1, $1::int) RETURNING id",
                [String(plan.burstHigh)])
            let at = ContinuousClock.now
            let ids = result.rows.compactMap { $0[0].flatMap { JobID($0) } }
            try await waitUntil(timeout: 120) { probes.count >= ids.count }
            return (ids, at, running)
        }
        let starts = probes.take()
        _ = probes.takeQueueWaits()
        let waits = committed.compactMap { id in starts[id].map { max(0, at.duration(to: $0).seconds * 1000) } }
        return (waits, lowRunning)
    }
}

private extension String {
    func pad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func padRight(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
