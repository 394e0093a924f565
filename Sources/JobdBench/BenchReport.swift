import Foundation
import JobdCore

// MARK: - Results

public struct BenchReport: Codable, Sendable {
    struct Machine: Codable {
        var cores: Int
        var memoryGiB: Double
        var os: String
        var postgres = ""
        var redis = ""
        /// 1-minute load average before and after the run: other work on the host
        /// competes for the same cores and disk, and every figure below depends on it.
        var loadAverageBefore: Double?
        var loadAverageAfter: Double?
        /// Whether the PostgreSQL server's CPU time could be read (same host, /proc readable).
        var postgresCPUVisible = false

        static func current() -> Machine {
            let info = ProcessInfo.processInfo
            return Machine(
                cores: info.activeProcessorCount,
                memoryGiB: (Double(info.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
                os: info.operatingSystemVersionString)
        }
    }

    struct Enqueue: Codable {
        var clients: Int
        /// Rounds of trigger-on / trigger-off, interleaved; the rates are medians.
        var rounds: Int
        var singleRowPerSecond: Double
        var singleRowNoTriggerPerSecond: Double
        /// (without − with) / without, as a percentage (negative: noise exceeded the cost).
        var triggerOverheadPercent: Double
        var bulkRowsPerStatement: Int
        var bulkPerSecond: Double
        var bulkNoTriggerPerSecond: Double
        var bulkTriggerOverheadPercent: Double
        /// The same single-row inserts while a daemon (8 workers, poll interval 10 ms in
        /// both variants, so it drains as fast either way) runs and goes idle whenever
        /// it has caught up: the case in which the trigger does send NOTIFYs.
        var singleRowDaemonPerSecond: Double?
        var singleRowDaemonNoTriggerPerSecond: Double?
        var daemonTriggerOverheadPercent: Double?
        /// NOTIFYs received per inserted row with the trigger on and the daemon running
        /// (1.0 would be the trigger before the wake-up protocol).
        var daemonNotifiesPerInsert: Double?
    }

    struct Drain: Codable {
        var workers: Int
        var jobs: Int
        var seconds: Double
        var jobsPerSecond: Double
        /// The daemon's CPU time (user + system) per 1,000 jobs.
        var cpuSecondsPer1000: Double
        /// PostgreSQL server CPU per 1,000 jobs (every backend); nil when not readable.
        var postgresCPUSecondsPer1000: Double?
        var redisCPUSecondsPer1000: Double?
        var postgresRoundTripsPerJob: Double
        var postgresRoundTripsPer1000: Double
        /// Peak resident set of the process during this drain.
        var peakRSSMiB: Double
    }

    /// What PostgreSQL wrote per job while the daemon drained `jobs` no-op jobs with
    /// `workers` workers (the writes section): counted, not timed.
    struct Writes: Codable {
        struct Table: Codable {
            /// `schema.table`; only tables the run wrote to.
            var table: String
            var insertedPerJob: Double
            /// Every update, HOT ones included.
            var updatedPerJob: Double
            var hotUpdatedPerJob: Double
            var deletedPerJob: Double
        }

        var workers: Int
        var jobs: Int
        /// Whether a CHECKPOINT preceded the run (the bench's role may not be allowed one).
        var checkpointFirst: Bool
        var tables: [Table]
        /// Rows inserted, updated and deleted per job, over every table.
        var rowsWrittenPerJob: Double
        /// The WAL position's advance per job (the whole server: the daemon's
        /// maintenance loops and autovacuum included).
        var walBytesPerJob: Double
        var walRecordsPerJob: Double
        var walFullPageImagesPerJob: Double
        var postgresRoundTripsPerJob: Double
    }

    struct Latency: Codable {
        var offeredPercent: Int
        var offeredPerSecond: Double
        var achievedPerSecond: Double
        var producers: Int
        var jobs: Int
        var p50Ms: Double
        var p99Ms: Double
        var maxMs: Double
        /// Where the time goes: the median of INSERT → claim (on PostgreSQL's clock: the
        /// claim transaction's start minus the INSERT's, which the claim reports as the
        /// job's queue wait) and of the rest, claim → handler start (latency minus that).
        var stages: Stages?

        struct Stages: Codable {
            var insertToClaimP50Ms: Double
            var claimToHandlerP50Ms: Double
        }
    }

    struct IdlePickup: Codable {
        var samples: Int
        var p50Ms: Double
        var p99Ms: Double
        var maxMs: Double
    }

    struct Scale: Codable {
        var backlog: Int
        var scheduled: Int
        var drained: Int
        /// The median of `windowRates`.
        var jobsPerSecond: Double
        /// The rate of each of the consecutive windows the timed part is cut into, of
        /// every round.
        var windowRates: [Double]?
    }

    /// One tier kind's figures, or why there are none.
    struct TierKind: Codable {
        /// "measured", "not available" (no handler registered in this build) or "failed".
        var status: String
        var detail: String
        var jobs: Int?
        var perSecond: Double?
        /// Extra figures a kind reports (content.write: compressionRatio).
        var figures: [String: Double] = [:]
    }

    struct Target: Codable {
        var name: String
        var target: String
        var measured: String
        /// nil when the section that measures it did not run.
        var met: Bool?
    }

    var machine: Machine
    var quick: Bool
    var command: String
    var sections: [String]
    var enqueue: Enqueue?
    var drain: [Drain] = []
    var writes: Writes?
    var latency: [Latency] = []
    var idlePickup: IdlePickup?
    var scale: [Scale] = []
    var tierKinds: [String: TierKind] = [:]
    var autoscale: Autoscale?
    var campaigns: Campaigns?
    var targets: [Target] = []

    public func table() -> String {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        func o(_ value: Double?, _ digits: Int = 3) -> String { value.map { f($0, digits) } ?? "-" }
        var lines = ["jobd bench — \(machine.cores) cores, \(f(machine.memoryGiB, 1)) GiB, \(machine.postgres), Redis \(machine.redis)"]
        lines.append("load average \(o(machine.loadAverageBefore, 2)) before, \(o(machine.loadAverageAfter, 2)) after")
        if let e = enqueue {
            lines.append("")
            lines.append("enqueue (\(e.clients) clients, median of \(e.rounds) rounds)   with trigger    without   trigger cost")
            lines.append("  single-row inserts, rows/s               \(f(e.singleRowPerSecond).pad(10)) \(f(e.singleRowNoTriggerPerSecond).pad(10))   \(f(e.triggerOverheadPercent, 1))%")
            lines.append("  bulk (\(e.bulkRowsPerStatement) rows/stmt), rows/s            \(f(e.bulkPerSecond).pad(10)) \(f(e.bulkNoTriggerPerSecond).pad(10))   \(f(e.bulkTriggerOverheadPercent, 1))%")
            if let on = e.singleRowDaemonPerSecond, let off = e.singleRowDaemonNoTriggerPerSecond {
                lines.append("  single-row, daemon running, rows/s       \(f(on).pad(10)) \(f(off).pad(10))   \(o(e.daemonTriggerOverheadPercent, 1))%  (\(o(e.daemonNotifiesPerInsert, 3)) notifies per row)")
            }
        }
        if !drain.isEmpty {
            lines.append("")
            lines.append("drain (no-op jobs INSERTed before start → last one completed in Postgres); cost per 1,000 jobs")
            lines.append("  workers     jobs  seconds    jobs/s  daemon cpu s  pg cpu s  redis cpu s  pg trips  trips/job  peak RSS MiB")
            for d in drain {
                lines.append("  \(String(d.workers).pad(7)) \(String(d.jobs).pad(8)) \(f(d.seconds, 2).pad(8)) \(f(d.jobsPerSecond).pad(9)) \(f(d.cpuSecondsPer1000, 3).pad(13)) \(o(d.postgresCPUSecondsPer1000).pad(9)) \(o(d.redisCPUSecondsPer1000).pad(12)) \(f(d.postgresRoundTripsPer1000, 1).pad(9)) \(f(d.postgresRoundTripsPerJob, 3).pad(10)) \(f(d.peakRSSMiB, 1).pad(13))")
            }
        }
        if let w = writes {
            lines.append("")
            lines.append("writes per job (\(w.jobs) no-op jobs drained by \(w.workers) workers; pg_stat_user_tables, WAL position\(w.checkpointFirst ? ", after a CHECKPOINT" : ""))")
            lines.append("  table                          inserted   updated  (HOT)   deleted")
            for t in w.tables {
                lines.append("  \(t.table.padRight(30)) \(f(t.insertedPerJob, 3).pad(8)) \(f(t.updatedPerJob, 3).pad(9)) \(f(t.hotUpdatedPerJob, 3).pad(6)) \(f(t.deletedPerJob, 3).pad(9))")
            }
            lines.append("  rows written \(f(w.rowsWrittenPerJob, 3)), WAL \(f(w.walBytesPerJob, 0)) bytes in \(f(w.walRecordsPerJob, 2)) records (\(f(w.walFullPageImagesPerJob, 3)) full-page images), \(f(w.postgresRoundTripsPerJob, 3)) round trips")
        }
        if !latency.isEmpty || idlePickup != nil {
            lines.append("")
            lines.append("latency, INSERT commit → handler start (steady offered load)")
            lines.append("  load   offered/s   achieved/s    jobs     p50 ms    p99 ms    max ms   stages p50 ms: insert→claim, claim→handler")
        }
        for l in latency {
            let stages = l.stages.map { "   \(f($0.insertToClaimP50Ms, 2)), \(f($0.claimToHandlerP50Ms, 2))" } ?? ""
            lines.append("  \(("\(l.offeredPercent)%").pad(5)) \(f(l.offeredPerSecond).pad(11)) \(f(l.achievedPerSecond).pad(12)) \(String(l.jobs).pad(8)) \(f(l.p50Ms, 2).pad(10)) \(f(l.p99Ms, 2).pad(9)) \(f(l.maxMs, 2).pad(9))\(stages)")
        }
        if let i = idlePickup {
            lines.append("  idle daemon, single INSERTs: p50 \(f(i.p50Ms, 2)) ms, p99 \(f(i.p99Ms, 2)) ms, max \(f(i.maxMs, 2)) ms (\(i.samples) samples)")
        }
        if !scale.isEmpty {
            lines.append("")
            lines.append("scale (drain the first N of a waiting backlog, plus 10% scheduled in the future; from N/10 to N")
            lines.append("       in 5 windows, in rounds over all backlogs (3 in full mode): jobs/s is the windows' median)")
            lines.append("  backlog   scheduled   drained     jobs/s   windows (count, min-max jobs/s)")
            for s in scale {
                let windows = s.windowRates ?? []
                let spread = windows.isEmpty ? "" : "\(windows.count), \(f(windows.min() ?? 0))-\(f(windows.max() ?? 0))"
                lines.append("  \(String(s.backlog).pad(7)) \(String(s.scheduled).pad(11)) \(String(s.drained).pad(9)) \(f(s.jobsPerSecond).pad(10))   \(spread)")
            }
        }
        if !tierKinds.isEmpty {
            lines.append("")
            lines.append("tier kinds")
            for (kind, result) in tierKinds.sorted(by: { $0.key < $1.key }) {
                var line = "  \(kind): \(result.status)"
                if let rate = result.perSecond { line += ", \(f(rate)) jobs/s" }
                for (name, value) in result.figures.sorted(by: { $0.key < $1.key }) { line += ", \(name) \(f(value, 2))" }
                lines.append(line + " — \(result.detail)")
            }
        }
        lines += autoscaleLines()
        lines += campaignLines()
        if !targets.isEmpty {
            lines.append("")
            lines.append("targets")
            for t in targets {
                let verdict = t.met.map { $0 ? "met   " : "MISSED" } ?? "not run"
                lines.append("  \(verdict)  \(t.name.padRight(34)) target \(t.target.padRight(14)) measured \(t.measured)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The bench's throughput and cost targets, checked against one run.
enum BenchTargets {
    static func evaluate(_ r: BenchReport) -> [BenchReport.Target] {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        var targets: [BenchReport.Target] = []
        let full = r.drain.max { $0.workers < $1.workers }
        targets.append(.init(
            name: "drain, \(full.map { "\($0.workers)" } ?? "64") workers", target: "≥ 30000 jobs/s",
            measured: full.map { "\(f($0.jobsPerSecond)) jobs/s" } ?? "-", met: full.map { $0.jobsPerSecond >= 30_000 }))
        let half = r.latency.first { $0.offeredPercent == 50 }
        targets.append(.init(
            name: "latency at 50% load, p50", target: "≤ 2 ms",
            measured: half.map { "\(f($0.p50Ms, 2)) ms" } ?? "-", met: half.map { $0.p50Ms <= 2 }))
        targets.append(.init(
            name: "latency at 50% load, p99", target: "≤ 10 ms",
            measured: half.map { "\(f($0.p99Ms, 2)) ms" } ?? "-", met: half.map { $0.p99Ms <= 10 }))
        targets.append(.init(
            // "Within 5 ms": judged on the 99th percentile, the max is shown beside it.
            name: "idle pickup of one insert, p99", target: "≤ 5 ms",
            measured: r.idlePickup.map { "\(f($0.p99Ms, 2)) ms (p50 \(f($0.p50Ms, 2)), max \(f($0.maxMs, 2)))" } ?? "-",
            met: r.idlePickup.map { $0.p99Ms <= 5 }))
        targets.append(.init(
            name: "bulk enqueue", target: "≥ 100000 rows/s",
            measured: r.enqueue.map { "\(f($0.bulkPerSecond)) rows/s" } ?? "-", met: r.enqueue.map { $0.bulkPerSecond >= 100_000 }))
        // The realistic case: a daemon runs (and goes idle whenever it caught up) while
        // producers insert; without a daemon the trigger never notifies at all.
        let triggerCost = r.enqueue.map { $0.daemonTriggerOverheadPercent ?? $0.triggerOverheadPercent }
        targets.append(.init(
            name: r.enqueue?.daemonTriggerOverheadPercent != nil
                ? "notify trigger cost, single-row, daemon running" : "notify trigger cost, single-row", target: "≤ 10%",
            measured: triggerCost.map { "\(f($0, 1))%" } ?? "-", met: triggerCost.map { $0 <= 10 }))
        let smallest = r.scale.min { $0.backlog < $1.backlog }, largest = r.scale.max { $0.backlog < $1.backlog }
        let ratio: Double? = smallest.flatMap { small in
            largest.flatMap { large in large.backlog > small.backlog && small.jobsPerSecond > 0 ? large.jobsPerSecond / small.jobsPerSecond : nil }
        }
        targets.append(.init(
            name: "drain at \(largest.map { "\($0.backlog)" } ?? "1M") waiting vs \(smallest.map { "\($0.backlog)" } ?? "10k")", target: "≥ 90%",
            measured: ratio.map { "\(f($0 * 100, 1))%" } ?? "-", met: ratio.map { $0 >= 0.9 }))
        targets.append(.init(
            name: "Postgres round trips per job, full load", target: "≤ 0.1",
            measured: full.map { f($0.postgresRoundTripsPerJob, 3) } ?? "-", met: full.map { $0.postgresRoundTripsPerJob <= 0.1 }))
        targets.append(.init(
            name: "peak RSS, \(full.map { "\($0.workers)" } ?? "64") workers", target: "≤ 64 MiB",
            measured: full.map { "\(f($0.peakRSSMiB, 1)) MiB" } ?? "-", met: full.map { $0.peakRSSMiB <= 64 }))
        // The tier kinds: rates end to end through their tiers (tiers section).
        let content = r.tierKinds["content.write"].flatMap { $0.status == "measured" ? $0 : nil }
        let storedToRaw = content?.figures["compressionRatio"].flatMap { $0 > 0 ? 1 / $0 : nil }
        targets.append(.init(
            name: "content.write", target: "≥ 2000 messages/s",
            measured: content?.perSecond.map { "\(f($0)) messages/s" } ?? "-", met: content?.perSecond.map { $0 >= 2_000 }))
        targets.append(.init(
            name: "content.write stored/raw", target: "≤ 0.30",
            measured: storedToRaw.map { f($0, 3) } ?? "-", met: storedToRaw.map { $0 <= 0.30 }))
        let webhooks = r.tierKinds["notification.send"].flatMap { $0.status == "measured" ? $0 : nil }
        targets.append(.init(
            name: "notification.send webhooks", target: "≥ 2000/s",
            measured: webhooks?.perSecond.map { "\(f($0))/s" } ?? "-", met: webhooks?.perSecond.map { $0 >= 2_000 }))
        targets += autoscale(r)
        targets += campaigns(r)
        return targets
    }
}

private extension String {
    func pad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func padRight(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

extension JSONEncoder {
    /// Indented, keys sorted: the report as `--json` writes it.
    public static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
