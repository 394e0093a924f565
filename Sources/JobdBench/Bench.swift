import Foundation
import JobdAnalytics
import JobdAssembly
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdRedis
import Logging
import ServiceLifecycle
import Synchronization

/// `jobd bench`'s engine: the project's benchmark. Every timed figure the project quotes
/// comes from here, never from a timed unit test. It empties the queue first, so it
/// refuses a queue that holds jobs unless `force`.
public enum BenchRun {
    /// Runs the selected sections against `configuration`'s servers (its Redis prefix
    /// as given: the CLI appends `-bench`) and returns the report with its targets evaluated.
    public static func run(configuration config: JobdSettings, options: BenchOptions) async throws -> BenchReport {
        let quick = options.quick
        let selected = options.sections
        let connections = Connections(settings: config)
        let bench = try await Bench(
            connections: connections, quick: quick, producerInterval: options.producerInterval, corpus: options.corpus,
            notifySink: options.notifySink)
        defer { Task { await bench.close() } }
        try await bench.checkReady(force: options.force)

        let drainCount = options.drainJobs
        let workerCounts = options.workers
        let backlogCounts = options.backlogs
        let maxWorkers = workerCounts.max() ?? 64

        var report = BenchReport(
            machine: BenchReport.Machine.current(), quick: quick, command: options.command,
            sections: selected.map(\.rawValue))
        report.machine.postgres = try await bench.postgresVersion()
        report.machine.redis = try await bench.redisVersion()
        report.machine.loadAverageBefore = loadAverage()
        report.machine.postgresCPUVisible = await bench.serverCPU().postgres != nil
        if selected.contains(.enqueue) {
            report.enqueue = try await bench.enqueue()
        }
        if selected.contains(.drain) {
            for count in workerCounts {
                // One worker runs one job per round trip: a tenth of the jobs gives the same rate sooner.
                let jobs = count == 1 ? max(1_000, drainCount / 10) : drainCount
                report.drain.append(try await bench.drain(jobs: jobs, workers: count))
            }
        }
        if selected.contains(.writes) {
            report.writes = try await bench.writes(jobs: drainCount, workers: maxWorkers)
        }
        if selected.contains(.latency) {
            // Offered loads are fractions of the fastest drain (measured now if not already).
            var fastest = options.latencyBase ?? report.drain.map(\.jobsPerSecond).max()
            if fastest == nil { fastest = try await bench.drain(jobs: drainCount, workers: maxWorkers).jobsPerSecond }
            for fraction in options.latencyLoads {
                report.latency.append(try await bench.latency(fraction: fraction, of: fastest ?? 1_000, workers: maxWorkers))
            }
        }
        if selected.contains(.pickup) {
            report.idlePickup = try await bench.idlePickup()
        }
        if selected.contains(.scale) {
            // Rounds over all backlogs in turn, so a slow minute on a shared host falls on
            // every backlog alike instead of deciding the comparison (single passes gave
            // 66% to 126% for the same code); each backlog's rate is the median of all
            // its windows.
            let rounds = quick ? 1 : 3
            var windows: [Int: [Double]] = [:]
            var last: [Int: BenchReport.Scale] = [:]
            for _ in 0..<rounds {
                for backlog in backlogCounts {
                    let run = try await bench.scale(backlog: backlog, workers: maxWorkers)
                    windows[backlog, default: []] += run.windowRates ?? [run.jobsPerSecond]
                    last[backlog] = run
                }
            }
            for backlog in backlogCounts {
                guard var run = last[backlog] else { continue }
                run.windowRates = windows[backlog]
                run.jobsPerSecond = median(windows[backlog] ?? [])
                report.scale.append(run)
            }
        }
        if selected.contains(.tiers) {
            report.tierKinds = try await BenchTierKinds.run(bench, workers: maxWorkers)
        }
        if selected.contains(.autoscale) {
            report.autoscale = try await bench.autoscale()
        }
        if selected.contains(.campaigns) {
            report.campaigns = try await bench.campaigns(contacts: options.campaignContacts, sinkScript: options.campaignSink)
        }
        try await bench.reset()
        report.machine.loadAverageAfter = loadAverage()
        report.targets = BenchTargets.evaluate(report)
        return report
    }
}

/// What to run and how much (the CLI's options, parsed).
public struct BenchOptions: Sendable {
    public var quick: Bool
    public var force: Bool
    /// No-op jobs per drain run.
    public var drainJobs: Int
    /// Worker counts of the drain runs.
    public var workers: [Int]
    /// Backlogs of the scale runs.
    public var backlogs: [Int]
    public var corpus: String
    public var notifySink: String
    /// The campaigns section's list size and SMTP sink script.
    public var campaignContacts: Int
    public var campaignSink: String
    /// Seconds between one latency producer's INSERTs.
    public var producerInterval: Double
    /// The rate (jobs/s) the latency loads are fractions of; nil: the fastest drain of
    /// this run. Fixed, it gives two builds the same offered load in an A/B comparison.
    public var latencyBase: Double?
    /// The latency section's offered loads, as fractions of `latencyBase`.
    public var latencyLoads: [Double]
    public var sections: [BenchSection]
    /// The command line, as the report quotes it.
    public var command: String

    public init(
        quick: Bool, force: Bool, drainJobs: Int, workers: [Int], backlogs: [Int], corpus: String, notifySink: String,
        producerInterval: Double, sections: [BenchSection], command: String, campaignContacts: Int = 100_000,
        campaignSink: String = "scripts/smtp-sink", latencyBase: Double? = nil,
        latencyLoads: [Double] = [0.1, 0.5, 0.9]
    ) {
        (self.latencyBase, self.latencyLoads) = (latencyBase, latencyLoads)
        (self.quick, self.force, self.drainJobs, self.workers, self.backlogs) = (quick, force, drainJobs, workers, backlogs)
        (self.campaignContacts, self.campaignSink) = (campaignContacts, campaignSink)
        (self.corpus, self.notifySink, self.producerInterval) = (corpus, notifySink, producerInterval)
        (self.sections, self.command) = (sections, command)
    }
}

/// The parts of `jobd bench`, in the order they run.
public enum BenchSection: String, CaseIterable, Sendable {
    case enqueue, drain, writes, latency, pickup, scale, tiers, autoscale, campaigns

    public static func parse(_ text: String?) throws -> [BenchSection] {
        guard let text else { return allCases }
        var chosen = Set<BenchSection>()
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let section = BenchSection(rawValue: name) else {
                throw CLIError("--sections: unknown section \"\(name)\" (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            chosen.insert(section)
        }
        return allCases.filter(chosen.contains)
    }
}
// MARK: - The runs

/// Records when each probe job's handler started, for the latency runs.
final class ProbeClock: Sendable {
    private let starts = Mutex<[JobID: ContinuousClock.Instant]>([:])
    /// Each probe's queue wait as its claim reported it (seconds, PostgreSQL's clock).
    private let queueWaits = Mutex<[JobID: Double]>([:])
    func record(_ id: JobID, queueWait: Double = 0) {
        starts.withLock { $0[id] = .now }
        queueWaits.withLock { $0[id] = queueWait }
    }
    func take() -> [JobID: ContinuousClock.Instant] {
        starts.withLock { starts in
            defer { starts = [:] }
            return starts
        }
    }
    func takeQueueWaits() -> [JobID: Double] {
        queueWaits.withLock { waits in
            defer { waits = [:] }
            return waits
        }
    }
    var count: Int { starts.withLock { $0.count } }
}

/// `bench.probe`: does nothing but note its start time and queue wait.
struct ProbeHandler: JobHandler {
    let kind = "bench.probe"
    let clock: ProbeClock
    func handle(_ job: ClaimedJob, context: JobContext) async throws {
        clock.record(job.id, queueWait: job.queueWaitSeconds)
    }
}

struct Bench {
    let connections: Connections
    let quick: Bool
    let sql: PostgresConnection
    let probes = ProbeClock()
    /// Seconds between one latency producer's INSERTs.
    let producerInterval: Double
    /// The mail corpus directory for content.write.
    let corpus: String
    /// The loopback webhook sink script for notification.send.
    let notifySink: String
    /// The loopback SMTP sink script for the campaigns section.
    let campaignSink: String

    init(
        connections: Connections, quick: Bool, producerInterval: Double = 0.005,
        corpus: String = "Tests/Fixtures/mail-corpus", notifySink: String = "scripts/notify-sink",
        campaignSink: String = "scripts/smtp-sink"
    ) async throws {
        self.campaignSink = campaignSink
        self.connections = connections
        self.quick = quick
        self.producerInterval = producerInterval
        self.corpus = corpus
        self.notifySink = notifySink
        sql = try await connections.checkedPostgres("bench")
    }

    func close() async { await sql.close() }

    var configuration: JobdSettings { connections.settings }

    func checkReady(force: Bool) async throws {
        let pending = try await TierMigrations.pending(connections)
        guard pending.isEmpty else { throw CLIError("the database schema is behind; run `jobd migrate` first") }
        let rows = Int(try await sql.query("SELECT count(*) FROM queue.jobs").rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        guard rows == 0 || force else {
            throw CLIError("queue.jobs holds \(rows) rows and bench deletes them; use an empty database or --force")
        }
        try await connections.dispatch("bench").ping()
    }

    func postgresVersion() async throws -> String {
        "PostgreSQL " + (try await sql.query("SHOW server_version").rows.first?.first.flatMap { $0 } ?? "?")
    }

    func redisVersion() async throws -> String {
        let info = try await redisInfo("server")
        return info["redis_version"] ?? "?"
    }

    private func redisInfo(_ section: String) async throws -> [String: String] {
        let redis = connections.dispatch("bench-info")
        defer { Task { await redis.connection.close() } }
        let text = try await redis.connection.command(["INFO", section]).string ?? ""
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        return fields
    }

    /// CPU seconds the servers have used so far: PostgreSQL from /proc when it runs on
    /// this host (the postmaster, its live backends, and the reaped ones through the
    /// postmaster's child times), Redis from INFO cpu. nil where not readable.
    func serverCPU() async -> (postgres: Double?, redis: Double?) {
        var postgres: Double?
        if let dir = try? await sql.query("SHOW data_directory").rows.first?.first ?? nil,
           let pidFile = try? String(contentsOfFile: dir + "/postmaster.pid", encoding: .utf8),
           let pid = pidFile.split(whereSeparator: \.isNewline).first.flatMap({ Int32($0) }) {
            postgres = processTreeCPUSeconds(root: pid)
        }
        var redis: Double?
        if let info = try? await redisInfo("cpu"),
           let system = info["used_cpu_sys"].flatMap(Double.init), let user = info["used_cpu_user"].flatMap(Double.init) {
            redis = system + user
        }
        return (postgres, redis)
    }

    /// Empties the queue and this bench's Redis keys.
    func reset() async throws {
        try await sql.executeScript("TRUNCATE queue.jobs, queue.dead_letters")
        let redis = connections.dispatch("bench-reset")
        let keys = try await redis.connection.command(["KEYS", "\(configuration.redisPrefix):*"]).array ?? []
        if !keys.isEmpty { _ = try await redis.connection.command(["DEL"] + keys.compactMap(\.string)) }
        await redis.connection.close()
    }

    /// Runs a daemon in this process for the duration of `body`, assembled as
    /// `jobd run` assembles it: every tier's handlers and background services, plus
    /// `extraHandlers` (the latency probe).
    func withDaemon<T: Sendable>(
        workers: Int, extraHandlers: [any JobHandler] = [],
        adjust: (inout JobdSettings) -> Void = { _ in }, _ body: (JobDaemon) async throws -> T
    ) async throws -> T {
        var config = configuration
        config.workers = .shared(workers)
        adjust(&config)
        let assembly = DaemonAssembly(
            connections: Connections(settings: config),
            identity: DaemonIdentity(id: "bench-\(getpid())", hostname: ProcessInfo.processInfo.hostName, pid: getpid(), version: JobdBuild.version),
            logger: connections.logger, overrides: .init(handlers: extraHandlers))
        let daemon = assembly.daemon
        let group = ServiceGroup(configuration: .init(services: assembly.services, logger: connections.logger))
        let outcome: Result<T, any Error> = await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let result: Result<T, any Error>
            do { result = .success(try await body(daemon)) } catch { result = .failure(error) }
            await group.triggerGracefulShutdown()
            do { try await tasks.waitForAll() } catch { return .failure(error) }
            return result
        }
        await assembly.close()
        return try outcome.get()
    }

    // MARK: enqueue

    /// Trigger on and off in interleaved rounds, so a change in the host's load
    /// between two long runs cannot pass for the trigger's cost; medians of the rounds.
    func enqueue() async throws -> BenchReport.Enqueue {
        let clients = 4
        let rounds = quick ? 3 : 7
        let seconds = quick ? 0.5 : 1.0
        let bulkRows = 5_000
        let bulkStatements = quick ? 2 : 5
        var single: (on: [Double], off: [Double]) = ([], [])
        var bulk: (on: [Double], off: [Double]) = ([], [])
        do {
            for _ in 0..<rounds {
                try await setTrigger(enabled: true)
                single.on.append(try await singleRowRate(clients: clients, seconds: seconds))
                bulk.on.append(try await bulkRate(rowsPerStatement: bulkRows, statements: bulkStatements))
                try await setTrigger(enabled: false)
                single.off.append(try await singleRowRate(clients: clients, seconds: seconds))
                bulk.off.append(try await bulkRate(rowsPerStatement: bulkRows, statements: bulkStatements))
            }
            try await setTrigger(enabled: true)
        } catch {
            _ = try? await setTrigger(enabled: true)
            throw error
        }
        try await reset()
        // With a daemon running: its promoter marks itself busy while it works and idle
        // when it caught up, so some inserts find it idle and NOTIFY. Poll interval 10 ms
        // in both variants, so without the trigger it still drains about as fast and
        // the two rates compare the inserts' cost, not different amounts of daemon work.
        var daemon: (on: [Double], off: [Double]) = ([], [])
        var notified = 0, inserted = 0
        let listener = connections.postgres("bench-listen")
        do {
            try await listener.listen(NotificationListener.channel)
            try await withDaemon(workers: 8, adjust: { $0.pollInterval = .milliseconds(10) }) { _ in
                try await Task.sleep(for: .milliseconds(300))  // connected and idle
                for round in 0..<rounds {
                    // Alternate which variant goes first, and let the daemon finish the
                    // previous phase's jobs before timing the next, so neither variant
                    // inherits the other's backlog.
                    for enabled in round % 2 == 0 ? [true, false] : [false, true] {
                        try await setTrigger(enabled: enabled)
                        try await waitForDaemonCaughtUp()
                        _ = try await listener.waitForNotifications(timeout: 0)
                        let counted = try await withThrowingTaskGroup(of: (Double, Int).self) { group in
                            group.addTask { (try await singleRowRate(clients: clients, seconds: seconds, truncateOnly: true), 0) }
                            group.addTask {
                                var notes = 0
                                let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000) + 200)
                                while ContinuousClock.now < end {
                                    notes += try await listener.waitForNotifications(timeout: 0.05).count
                                }
                                return (0, notes)
                            }
                            return try await group.reduce((0.0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
                        }
                        if enabled {
                            daemon.on.append(counted.0)
                            notified += counted.1
                            inserted += Int(counted.0 * seconds)
                        } else {
                            daemon.off.append(counted.0)
                        }
                    }
                }
                try await setTrigger(enabled: true)
            }
        } catch {
            _ = try? await setTrigger(enabled: true)
            await listener.close()
            throw error
        }
        await listener.close()
        try await reset()
        let on = median(single.on), off = median(single.off), bulkOn = median(bulk.on), bulkOff = median(bulk.off)
        let daemonOn = median(daemon.on), daemonOff = median(daemon.off)
        return .init(
            clients: clients, rounds: rounds, singleRowPerSecond: on, singleRowNoTriggerPerSecond: off,
            triggerOverheadPercent: off > 0 ? (off - on) / off * 100 : 0,
            bulkRowsPerStatement: bulkRows, bulkPerSecond: bulkOn, bulkNoTriggerPerSecond: bulkOff,
            bulkTriggerOverheadPercent: bulkOff > 0 ? (bulkOff - bulkOn) / bulkOff * 100 : 0,
            singleRowDaemonPerSecond: daemonOn, singleRowDaemonNoTriggerPerSecond: daemonOff,
            daemonTriggerOverheadPercent: daemonOff > 0 ? (daemonOff - daemonOn) / daemonOff * 100 : 0,
            daemonNotifiesPerInsert: inserted > 0 ? Double(notified) / Double(inserted) : nil)
    }

    /// Waits (up to 5 s, untimed) until the running daemon has finished every job.
    private func waitForDaemonCaughtUp() async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let left = try await sql.query(
                "SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead', 'cancelled')").rows.first?.first ?? nil
            if left == "0" { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func setTrigger(enabled: Bool) async throws {
        if enabled {
            try await sql.executeScript("ALTER TABLE queue.jobs ENABLE TRIGGER jobs_notify_inserted")
        } else {
            try await sql.executeScript("ALTER TABLE queue.jobs DISABLE TRIGGER jobs_notify_inserted")
        }
    }

    /// `clients` connections each INSERT one due row per statement (autocommit, so one
    /// durable commit each) for `seconds`. Due now, so the trigger checks for an idle
    /// promoter. `truncateOnly`: a daemon is running, so its Redis keys stay.
    private func singleRowRate(clients: Int, seconds: Double, truncateOnly: Bool = false) async throws -> Double {
        if truncateOnly {
            try await sql.executeScript("TRUNCATE queue.jobs, queue.dead_letters")
        } else {
            try await reset()
        }
        let producers = (0..<clients).map { connections.postgres("bench-insert-\($0)") }
        for producer in producers { try await producer.connect() }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for producer in producers {
                group.addTask {
                    var rows = 0
                    while ContinuousClock.now < deadline {
                        // A daemon may be running and taking these: a payload the no-op accepts.
                        try await producer.query("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)", ["{}"])
                        rows += 1
                    }
                    return rows
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = started.duration(to: .now).seconds
        for producer in producers { await producer.close() }
        return Double(total) / elapsed
    }

    /// Multi-row INSERTs: client-side payloads sent as one array parameter per statement.
    private func bulkRate(rowsPerStatement: Int, statements: Int) async throws -> Double {
        try await reset()
        let payloads = "{" + (0..<rowsPerStatement).map { "\"{\\\"n\\\": \($0)}\"" }.joined(separator: ",") + "}"
        let started = ContinuousClock.now
        for _ in 0..<statements {
            try await sql.query("""
                INSERT INTO queue.jobs (kind, payload)
                SELECT 'noop', p::jsonb FROM unnest($1::text[]) p
                """, [payloads], timeout: 120)
        }
        return Double(rowsPerStatement * statements) / started.duration(to: .now).seconds
    }

    // MARK: drain

    func drain(jobs: Int, workers: Int) async throws -> BenchReport.Drain {
        try await reset()
        try await insertDue(jobs)
        try await sql.executeScript("VACUUM ANALYZE queue.jobs")
        resetPeakRSS()
        let cpuBefore = cpuSeconds()
        let serversBefore = await serverCPU()
        let tripsBefore = PostgresStatistics.roundTrips.load(ordering: .relaxed)
        let started = ContinuousClock.now
        let seconds = try await withDaemon(workers: workers) { daemon in
            try await waitForCompletions(jobs, daemon: daemon)
            return started.duration(to: .now).seconds
        }
        let trips = PostgresStatistics.roundTrips.load(ordering: .relaxed) - tripsBefore
        let cpu = cpuSeconds() - cpuBefore
        let rss = peakRSSMiB()
        // Let the postmaster reap the daemon's backends, so their time is counted.
        try await Task.sleep(for: .milliseconds(100))
        let serversAfter = await serverCPU()
        guard try await completedCount() >= jobs else { throw CLIError("drain: fewer than \(jobs) jobs completed in Postgres") }
        func per1000(_ before: Double?, _ after: Double?) -> Double? {
            guard let before, let after else { return nil }
            return max(0, after - before) / Double(jobs) * 1_000
        }
        return .init(
            workers: workers, jobs: jobs, seconds: seconds, jobsPerSecond: Double(jobs) / seconds,
            cpuSecondsPer1000: cpu / Double(jobs) * 1_000,
            postgresCPUSecondsPer1000: per1000(serversBefore.postgres, serversAfter.postgres),
            redisCPUSecondsPer1000: per1000(serversBefore.redis, serversAfter.redis),
            postgresRoundTripsPerJob: Double(trips) / Double(jobs),
            postgresRoundTripsPer1000: Double(trips) / Double(jobs) * 1_000, peakRSSMiB: rss)
    }

    func insertDue(_ count: Int, kind: String = "noop", payload: String = "{}") async throws {
        var left = count
        while left > 0 {
            let batch = min(left, 100_000)
            try await sql.query(
                "INSERT INTO queue.jobs (kind, payload) SELECT $1, $2::jsonb FROM generate_series(1, $3::int)",
                [kind, payload, String(batch)], timeout: 600)
            left -= batch
        }
    }

    /// Waits until the daemon's completion batcher has committed `count` completions.
    /// Its counter moves only after the completing statement returned, so this is
    /// "completed in Postgres", read without a query: polling `count(*)` every few
    /// milliseconds cost the server more CPU than the jobs themselves.
    func waitForCompletions(_ count: Int, daemon: JobDaemon, timeout: Double = 600) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while daemon.stats.completedCount < count {
            guard ContinuousClock.now < deadline else { throw CLIError("bench: jobs not completed within \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Completed jobs: their ledger rows (a completion deletes the job row), and rows
    /// left `completed` in queue.jobs by a daemon from before that.
    func completedCount() async throws -> Int {
        Int(try await sql.query("""
            SELECT (SELECT count(*) FROM queue.jobs WHERE state = 'completed')
                 + (SELECT count(*) FROM queue.attempts
                     WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed')
            """).rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }

    // MARK: latency

    /// A steady offered load of `fraction` × `rate` probe jobs per second from four
    /// producer connections, each inserting small batches every 5 ms by default (so one
    /// producer's commit wait does not throttle the load). Latency runs from the
    /// INSERT's reply (its commit) to the handler's start, on this process's
    /// monotonic clock.
    func latency(fraction: Double, of rate: Double, workers: Int) async throws -> BenchReport.Latency {
        try await reset()
        _ = probes.take()
        _ = probes.takeQueueWaits()
        let offered = rate * fraction
        let seconds = quick ? 2.0 : 5.0
        let producerCount = 4
        let producers = (0..<producerCount).map { connections.postgres("bench-producer-\($0)") }
        for producer in producers { try await producer.connect() }
        let (committed, achieved) = try await withDaemon(workers: workers, extraHandlers: [ProbeHandler(clock: probes)]) { _ in
            try await Task.sleep(for: .milliseconds(300))  // let the daemon connect and idle
            let started = ContinuousClock.now
            let committed = try await withThrowingTaskGroup(of: [JobID: ContinuousClock.Instant].self) { group in
                for (index, producer) in producers.enumerated() {
                    group.addTask {
                        try await produce(on: producer, perSecond: offered / Double(producerCount), seconds: seconds,
                                          phase: Double(index) / Double(producerCount))
                    }
                }
                return try await group.reduce(into: [:]) { $0.merge($1) { a, _ in a } }
            }
            let elapsed = started.duration(to: .now).seconds
            let deadline = ContinuousClock.now + .seconds(60)
            while probes.count < committed.count && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            return (committed, Double(committed.count) / elapsed)
        }
        for producer in producers { await producer.close() }
        let starts = probes.take()
        let waits = probes.takeQueueWaits()
        var latencies = committed.compactMap { id, at in starts[id].map { max(0, at.duration(to: $0).seconds * 1000) } }
        latencies.sort()
        var toClaim: [Double] = [], afterClaim: [Double] = []
        for (id, at) in committed {
            guard let start = starts[id], let wait = waits[id] else { continue }
            toClaim.append(wait * 1000)
            afterClaim.append(max(0, at.duration(to: start).seconds * 1000 - wait * 1000))
        }
        toClaim.sort()
        afterClaim.sort()
        let stages = toClaim.isEmpty ? nil : BenchReport.Latency.Stages(
            insertToClaimP50Ms: percentile(toClaim, 0.5), claimToHandlerP50Ms: percentile(afterClaim, 0.5))
        return .init(
            offeredPercent: Int((fraction * 100).rounded()), offeredPerSecond: offered, achievedPerSecond: achieved,
            producers: producerCount, jobs: latencies.count, p50Ms: percentile(latencies, 0.5),
            p99Ms: percentile(latencies, 0.99), maxMs: latencies.last ?? 0, stages: stages)
    }

    /// One producer: `perSecond` probe rows, in a batch every 5 ms (offset by `phase`
    /// of a tick so the producers do not insert in lockstep). Returns each row's commit time.
    private func produce(
        on producer: PostgresConnection, perSecond: Double, seconds: Double, phase: Double
    ) async throws -> [JobID: ContinuousClock.Instant] {
        let tick = producerInterval
        var committed: [JobID: ContinuousClock.Instant] = [:]
        var owed = 0.0
        let started = ContinuousClock.now
        var next = started + .microseconds(Int64(phase * tick * 1_000_000))
        while started.duration(to: .now).seconds < seconds {
            let now = ContinuousClock.now
            if next > now { try await Task.sleep(until: next) }
            next = max(next, now) + .microseconds(Int64(tick * 1_000_000))
            owed += perSecond * tick
            let rows = Int(owed)
            guard rows > 0 else { continue }
            owed -= Double(rows)
            let ids = try await producer.rows(BenchStatements.InsertJobs(kind: "bench.probe", count: rows))
            let at = ContinuousClock.now
            for id in ids { committed[id] = at }
        }
        return committed
    }

    /// An idle daemon, one INSERT at a time, 100 ms apart: LISTEN/NOTIFY pickup time.
    func idlePickup() async throws -> BenchReport.IdlePickup {
        try await reset()
        _ = probes.take()
        _ = probes.takeQueueWaits()
        let samples = quick ? 20 : 100
        var latencies: [Double] = []
        try await withDaemon(workers: 8, extraHandlers: [ProbeHandler(clock: probes)]) { _ in
            try await Task.sleep(for: .milliseconds(500))
            for _ in 0..<samples {
                let inserted = try await sql.firstRow(BenchStatements.InsertJobs(kind: "bench.probe", count: 1))
                let at = ContinuousClock.now
                guard let id = inserted else { continue }
                let deadline = ContinuousClock.now + .seconds(5)
                while ContinuousClock.now < deadline {
                    if let start = probes.take()[id] {
                        latencies.append(max(0, at.duration(to: start).seconds * 1000))
                        break
                    }
                    try await Task.sleep(for: .microseconds(200))
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        latencies.sort()
        return .init(samples: latencies.count, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), maxMs: latencies.last ?? 0)
    }

    // MARK: scale

    /// `backlog` due jobs plus 10% scheduled a day ahead; the rate at which the first
    /// 10k of them complete (5k in quick mode; all of a smaller backlog), the same
    /// count for every backlog so that only the table's size differs. Timed from the
    /// tenth of them to the last: a run is half a second, and the daemon's start-up
    /// (connections, the first promotion) would otherwise weigh on it as much as the
    /// table's size. The timed part is cut into five windows and the median window's
    /// rate reported: on a shared host one disturbance (another process, an
    /// autovacuum pass) would otherwise decide the comparison (one window of 0.6 s gave
    /// 77% and 98% for the same code minutes apart).
    func scale(backlog: Int, workers: Int) async throws -> BenchReport.Scale {
        try await reset()
        let scheduled = backlog / 10
        try await insertDue(backlog)
        try await sql.query(
            "INSERT INTO queue.jobs (kind, payload, run_at) SELECT 'noop', '{}', now() + interval '1 day' FROM generate_series(1, $1::int)",
            [String(scheduled)], timeout: 600)
        try await sql.executeScript("VACUUM ANALYZE queue.jobs", timeout: 600)
        let target = min(backlog, quick ? 5_000 : 10_000)
        let warmUp = target / 10
        let windows = 5
        let rates = try await withDaemon(workers: workers) { daemon -> [Double] in
            try await waitForCompletions(warmUp, daemon: daemon)
            var rates: [Double] = []
            // Completions arrive in group-committed batches: count what actually
            // completed in each window, not the window's nominal size.
            var done = daemon.stats.completedCount
            var from = ContinuousClock.now
            for window in 1...windows {
                try await waitForCompletions(warmUp + (target - warmUp) * window / windows, daemon: daemon)
                let now = ContinuousClock.now, count = daemon.stats.completedCount
                rates.append(Double(count - done) / max(from.duration(to: now).seconds, 1e-6))
                (done, from) = (count, now)
            }
            return rates
        }
        return .init(backlog: backlog, scheduled: scheduled, drained: target, jobsPerSecond: median(rates), windowRates: rates)
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

func median(_ values: [Double]) -> Double { percentile(values.sorted(), 0.5) }

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Resets this process's peak-RSS mark (Linux: "5" to /proc/self/clear_refs), so the
/// next reading is the peak of one run, not of the whole bench.
func resetPeakRSS() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// VmHWM from /proc/self/status (falls back to getrusage's lifetime peak).
func peakRSSMiB() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
        return kib / 1024
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
}

/// The 1-minute load average (Linux /proc/loadavg); nil elsewhere.
func loadAverage() -> Double? {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
}

/// CPU seconds (user + system) of `root` and its children: live children from their
/// own /proc stat, exited ones through `root`'s reaped-children times.
func processTreeCPUSeconds(root: Int32) -> Double? {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    func fields(_ pid: String) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": field 3 (state) is index 0 here.
        return text[text.index(after: close)...].split(separator: " ")
    }
    guard let own = fields(String(root)), own.count > 14 else { return nil }
    // utime, stime, cutime, cstime are fields 14–17: indices 11–14 after the comm.
    var total = own[11...14].compactMap { Double($0) }.reduce(0, +)
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    for entry in entries where entry.first?.isNumber == true {
        guard let f = fields(entry), f.count > 12, f[1] == Substring(String(root)) else { continue }
        total += (Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)
    }
    return total / ticks
}
