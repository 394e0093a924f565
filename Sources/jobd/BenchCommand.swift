import ArgumentParser
import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdRuntime
import Logging
import ServiceLifecycle
import Synchronization

/// `jobd bench`: the project's benchmark. Every timed figure the project quotes comes
/// from here, never from a timed unit test. It empties the queue first, so it refuses
/// a queue that holds jobs unless `--force`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure enqueue, drain, latency and scale against the configured PostgreSQL and Redis.",
        discussion: """
            Runs the daemon in this process (the same JobDaemon `jobd run` starts) against
            JOBD_DATABASE_URL and JOBD_REDIS_URL, under the Redis prefix <JOBD_REDIS_PREFIX>-bench.
            It TRUNCATEs queue.jobs and queue.dead_letters between sections.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "A short run (well under a minute): small counts, no 1M backlog.")
    var quick = false

    @Flag(help: "Run even though queue.jobs holds rows (they are deleted).")
    var force = false

    @Option(help: "Also write the results as JSON to this file ('-' for stdout only).")
    var json: String?

    @Option(help: "No-op jobs per drain run.")
    var drainJobs: Int?

    @Option(help: "Worker counts for the drain runs, comma separated.")
    var workers: String?

    @Option(help: "Backlogs for the scale runs, comma separated.")
    var backlogs: String?

    func run() async throws {
        var config = try await ConfigurationLoader.load(global)
        config.redisPrefix += "-bench"
        // Bench logs only what goes wrong, unless asked for more.
        if global.logLevel == nil { config.logLevel = "warning" }
        let connections = Connections(configuration: config)
        let bench = try await Bench(connections: connections, quick: quick)
        defer { Task { await bench.close() } }
        try await bench.checkReady(force: force)

        let drainCount = drainJobs ?? (quick ? 3_000 : 30_000)
        let workerCounts = try list(workers, default: [1, 8, 64], name: "--workers")
        let backlogCounts = try list(backlogs, default: quick ? [10_000] : [10_000, 100_000, 1_000_000], name: "--backlogs")

        var report = BenchReport(
            machine: BenchReport.Machine.current(), quick: quick,
            command: CommandLine.arguments.joined(separator: " "))
        report.enqueue = try await bench.enqueue()
        report.machine.postgres = try await bench.postgresVersion()
        report.machine.redis = try await bench.redisVersion()
        for count in workerCounts {
            // One worker runs one job per round trip: a tenth of the jobs gives the same rate sooner.
            let jobs = count == 1 ? max(1_000, drainCount / 10) : drainCount
            report.drain.append(try await bench.drain(jobs: jobs, workers: count))
        }
        let fastest = report.drain.map(\.jobsPerSecond).max() ?? 1_000
        for fraction in [0.1, 0.5, 0.9] {
            report.latency.append(try await bench.latency(fraction: fraction, of: fastest, workers: workerCounts.max() ?? 64))
        }
        report.idlePickup = try await bench.idlePickup()
        for backlog in backlogCounts {
            report.scale.append(try await bench.scale(backlog: backlog, workers: workerCounts.max() ?? 64))
        }
        report.tierKinds = bench.tierKinds()
        try await bench.reset()

        print(report.table())
        if let json {
            let data = try JSONEncoder.pretty.encode(report)
            if json == "-" {
                print(String(decoding: data, as: UTF8.self))
            } else {
                try data.write(to: URL(fileURLWithPath: json))
                print("bench: results written to \(json)")
            }
        }
    }

    private func list(_ text: String?, default value: [Int], name: String) throws -> [Int] {
        guard let text else { return value }
        let numbers = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !numbers.isEmpty, numbers.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw CLIError("\(name): \"\(text)\" is not a comma-separated list of positive numbers")
        }
        return numbers.compactMap { $0 }
    }
}

// MARK: - Results

struct BenchReport: Codable {
    struct Machine: Codable {
        var cores: Int
        var memoryGiB: Double
        var os: String
        var postgres = ""
        var redis = ""

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
        var singleRowPerSecond: Double
        var singleRowNoTriggerPerSecond: Double
        /// (without − with) / without, as a percentage.
        var triggerOverheadPercent: Double
        var bulkRowsPerStatement: Int
        var bulkPerSecond: Double
        var bulkNoTriggerPerSecond: Double
    }

    struct Drain: Codable {
        var workers: Int
        var jobs: Int
        var seconds: Double
        var jobsPerSecond: Double
        var cpuSecondsPer1000: Double
        var postgresRoundTripsPerJob: Double
        var peakRSSMiB: Double
    }

    struct Latency: Codable {
        var offeredPercent: Int
        var offeredPerSecond: Double
        var achievedPerSecond: Double
        var jobs: Int
        var p50Ms: Double
        var p99Ms: Double
        var maxMs: Double
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
        var jobsPerSecond: Double
    }

    var machine: Machine
    var quick: Bool
    var command: String
    var enqueue: Enqueue?
    var drain: [Drain] = []
    var latency: [Latency] = []
    var idlePickup: IdlePickup?
    var scale: [Scale] = []
    var tierKinds: [String: String] = [:]

    func table() -> String {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        var lines = ["jobd bench — \(machine.cores) cores, \(f(machine.memoryGiB, 1)) GiB, \(machine.postgres), Redis \(machine.redis)"]
        if let e = enqueue {
            lines.append("")
            lines.append("enqueue (\(e.clients) clients)          with trigger   without    trigger cost")
            lines.append("  single-row INSERT, rows/s      \(f(e.singleRowPerSecond).pad(12)) \(f(e.singleRowNoTriggerPerSecond).pad(10))   \(f(e.triggerOverheadPercent, 1))%")
            lines.append("  bulk (\(e.bulkRowsPerStatement) rows/stmt), rows/s  \(f(e.bulkPerSecond).pad(10)) \(f(e.bulkNoTriggerPerSecond).pad(10))")
        }
        lines.append("")
        lines.append("drain (no-op, INSERTed before start → completed in Postgres)")
        lines.append("  workers      jobs   seconds     jobs/s   cpu s/1k   pg trips/job   peak RSS MiB")
        for d in drain {
            lines.append("  \(String(d.workers).pad(7)) \(String(d.jobs).pad(9)) \(f(d.seconds, 2).pad(9)) \(f(d.jobsPerSecond).pad(10)) \(f(d.cpuSecondsPer1000, 3).pad(10)) \(f(d.postgresRoundTripsPerJob, 3).pad(14)) \(f(d.peakRSSMiB, 1).pad(14))")
        }
        lines.append("")
        lines.append("latency, INSERT commit → handler start (steady offered load)")
        lines.append("  load   offered/s   achieved/s    jobs     p50 ms    p99 ms    max ms")
        for l in latency {
            lines.append("  \(("\(l.offeredPercent)%").pad(5)) \(f(l.offeredPerSecond).pad(11)) \(f(l.achievedPerSecond).pad(12)) \(String(l.jobs).pad(8)) \(f(l.p50Ms, 2).pad(10)) \(f(l.p99Ms, 2).pad(9)) \(f(l.maxMs, 2).pad(9))")
        }
        if let i = idlePickup {
            lines.append("  idle daemon, single INSERTs: p50 \(f(i.p50Ms, 2)) ms, p99 \(f(i.p99Ms, 2)) ms, max \(f(i.maxMs, 2)) ms (\(i.samples) samples)")
        }
        lines.append("")
        lines.append("scale (drain the first N of a waiting backlog, plus 10% scheduled in the future)")
        lines.append("  backlog   scheduled   drained     jobs/s")
        for s in scale {
            lines.append("  \(String(s.backlog).pad(7)) \(String(s.scheduled).pad(11)) \(String(s.drained).pad(9)) \(f(s.jobsPerSecond).pad(10))")
        }
        if !tierKinds.isEmpty {
            lines.append("")
            lines.append("tier kinds")
            for (kind, result) in tierKinds.sorted(by: { $0.key < $1.key }) { lines.append("  \(kind): \(result)") }
        }
        return lines.joined(separator: "\n")
    }
}

private extension String {
    func pad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}

// MARK: - The runs

/// Records when each probe job's handler started, for the latency runs.
final class ProbeClock: Sendable {
    private let starts = Mutex<[JobID: ContinuousClock.Instant]>([:])
    func record(_ id: JobID) { starts.withLock { $0[id] = .now } }
    func take() -> [JobID: ContinuousClock.Instant] {
        starts.withLock { starts in
            defer { starts = [:] }
            return starts
        }
    }
    var count: Int { starts.withLock { $0.count } }
}

/// `bench.probe`: does nothing but note its start time.
struct ProbeHandler: JobHandler {
    let kind = "bench.probe"
    let clock: ProbeClock
    func handle(_ job: ClaimedJob, context: JobContext) async throws { clock.record(job.id) }
}

struct Bench {
    let connections: Connections
    let quick: Bool
    let sql: PostgresConnection
    let probes = ProbeClock()

    init(connections: Connections, quick: Bool) async throws {
        self.connections = connections
        self.quick = quick
        sql = try await connections.checkedPostgres("bench")
    }

    func close() async { await sql.close() }

    var configuration: DaemonConfiguration { connections.configuration }

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
        let redis = connections.dispatch("bench-info")
        defer { Task { await redis.connection.close() } }
        let info = try await redis.connection.command(["INFO", "server"]).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
        return line.map { String($0.dropFirst("redis_version:".count)) } ?? "?"
    }

    /// Empties the queue and this bench's Redis keys.
    func reset() async throws {
        try await sql.executeScript("TRUNCATE queue.jobs, queue.dead_letters")
        let redis = connections.dispatch("bench-reset")
        let keys = try await redis.connection.command(["KEYS", "\(configuration.redisPrefix):*"]).array ?? []
        if !keys.isEmpty { _ = try await redis.connection.command(["DEL"] + keys.compactMap(\.string)) }
        await redis.connection.close()
    }

    /// Runs a daemon in this process for the duration of `body`.
    func withDaemon<T: Sendable>(
        workers: Int, handlers: [any JobHandler] = [NoopHandler()], _ body: (JobDaemon) async throws -> T
    ) async throws -> T {
        var config = configuration
        config.workers = .shared(workers)
        let daemon = JobDaemon(
            configuration: config, handlers: HandlerRegistry(handlers),
            identity: DaemonIdentity(id: "bench-\(getpid())", hostname: ProcessInfo.processInfo.hostName, pid: getpid(), version: Jobd.version),
            logger: connections.logger, postgres: connections.postgres, redis: connections.dispatch)
        let group = ServiceGroup(configuration: .init(services: daemon.services, logger: connections.logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let result: Result<T, any Error>
            do { result = .success(try await body(daemon)) } catch { result = .failure(error) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }

    // MARK: enqueue

    func enqueue() async throws -> BenchReport.Enqueue {
        let clients = 4
        let seconds = quick ? 1.0 : 3.0
        let bulkRows = 5_000
        let bulkStatements = quick ? 4 : 20
        let withTrigger = try await singleRowRate(clients: clients, seconds: seconds)
        let bulk = try await bulkRate(rowsPerStatement: bulkRows, statements: bulkStatements)
        try await sql.executeScript("ALTER TABLE queue.jobs DISABLE TRIGGER jobs_notify_inserted")
        let without: Double, bulkWithout: Double
        do {
            without = try await singleRowRate(clients: clients, seconds: seconds)
            bulkWithout = try await bulkRate(rowsPerStatement: bulkRows, statements: bulkStatements)
            try await sql.executeScript("ALTER TABLE queue.jobs ENABLE TRIGGER jobs_notify_inserted")
        } catch {
            _ = try? await sql.executeScript("ALTER TABLE queue.jobs ENABLE TRIGGER jobs_notify_inserted")
            throw error
        }
        try await reset()
        return .init(
            clients: clients, singleRowPerSecond: withTrigger, singleRowNoTriggerPerSecond: without,
            triggerOverheadPercent: without > 0 ? (without - withTrigger) / without * 100 : 0,
            bulkRowsPerStatement: bulkRows, bulkPerSecond: bulk, bulkNoTriggerPerSecond: bulkWithout)
    }

    /// `clients` connections each INSERT one row per statement (autocommit) for `seconds`.
    private func singleRowRate(clients: Int, seconds: Double) async throws -> Double {
        try await reset()
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in 0..<clients {
                group.addTask {
                    let connection = connections.postgres("bench-insert-\(client)")
                    var rows = 0
                    while ContinuousClock.now < deadline {
                        // Due tomorrow: nothing runs, the trigger still fires (it checks due-ness).
                        try await connection.query(
                            "INSERT INTO queue.jobs (kind, payload, run_at) VALUES ('noop', $1::jsonb, now() + interval '1 day')",
                            ["{\"n\": \(rows)}"])
                        rows += 1
                    }
                    await connection.close()
                    return rows
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / started.duration(to: .now).seconds
    }

    /// Client-side payloads sent as one array parameter per statement.
    private func bulkRate(rowsPerStatement: Int, statements: Int) async throws -> Double {
        try await reset()
        let payloads = "{" + (0..<rowsPerStatement).map { "\"{\\\"n\\\": \($0)}\"" }.joined(separator: ",") + "}"
        let started = ContinuousClock.now
        for _ in 0..<statements {
            try await sql.query("""
                INSERT INTO queue.jobs (kind, payload, run_at)
                SELECT 'noop', p::jsonb, now() + interval '1 day' FROM unnest($1::text[]) p
                """, [payloads], timeout: 120)
        }
        return Double(rowsPerStatement * statements) / started.duration(to: .now).seconds
    }

    // MARK: drain

    func drain(jobs: Int, workers: Int) async throws -> BenchReport.Drain {
        try await reset()
        try await insertDue(jobs)
        try await sql.executeScript("VACUUM ANALYZE queue.jobs")
        let cpuBefore = cpuSeconds()
        let tripsBefore = PostgresStatistics.roundTrips.load(ordering: .relaxed)
        let started = ContinuousClock.now
        let seconds = try await withDaemon(workers: workers) { daemon in
            try await waitForCompletions(jobs, daemon: daemon)
            return started.duration(to: .now).seconds
        }
        let trips = PostgresStatistics.roundTrips.load(ordering: .relaxed) - tripsBefore
        guard try await completedCount() >= jobs else { throw CLIError("drain: fewer than \(jobs) jobs completed in Postgres") }
        return .init(
            workers: workers, jobs: jobs, seconds: seconds, jobsPerSecond: Double(jobs) / seconds,
            cpuSecondsPer1000: (cpuSeconds() - cpuBefore) / Double(jobs) * 1_000,
            postgresRoundTripsPerJob: Double(max(0, trips)) / Double(jobs), peakRSSMiB: peakRSSMiB())
    }

    private func insertDue(_ count: Int, kind: String = "noop") async throws {
        var left = count
        while left > 0 {
            let batch = min(left, 100_000)
            try await sql.query(
                "INSERT INTO queue.jobs (kind, payload) SELECT $1, '{}' FROM generate_series(1, $2::int)",
                [kind, String(batch)], timeout: 600)
            left -= batch
        }
    }

    /// Waits until the daemon's completion batcher has committed `count` completions.
    /// Its counter moves only after the completing statement returned, so this is
    /// "completed in Postgres", read without a query: polling `count(*)` every few
    /// milliseconds cost the server more CPU than the jobs themselves.
    private func waitForCompletions(_ count: Int, daemon: JobDaemon, timeout: Double = 600) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while daemon.stats.completedCount < count {
            guard ContinuousClock.now < deadline else { throw CLIError("bench: jobs not completed within \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    private func completedCount() async throws -> Int {
        Int(try await sql.query("SELECT count(*) FROM queue.jobs WHERE state = 'completed'").rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }

    // MARK: latency

    /// A steady offered load of `fraction` × `rate` probe jobs per second, inserted in
    /// small batches every 5 ms; latency is from the INSERT's commit (its reply) to the
    /// handler's start, both on this process's monotonic clock.
    func latency(fraction: Double, of rate: Double, workers: Int) async throws -> BenchReport.Latency {
        try await reset()
        _ = probes.take()
        let offered = rate * fraction
        let seconds = quick ? 2.0 : 5.0
        let tick = 0.005
        let producer = connections.postgres("bench-producer")
        let (committed, achieved) = try await withDaemon(workers: workers, handlers: [ProbeHandler(clock: probes)]) { _ in
            try await Task.sleep(for: .milliseconds(300))  // let the daemon connect and idle
            var committed: [JobID: ContinuousClock.Instant] = [:]
            var owed = 0.0
            let started = ContinuousClock.now
            var next = started
            while started.duration(to: .now).seconds < seconds {
                owed += offered * tick
                let rows = Int(owed)
                if rows > 0 {
                    owed -= Double(rows)
                    let result = try await producer.query(
                        "INSERT INTO queue.jobs (kind, payload) SELECT 'bench.probe', '{}' FROM generate_series(1, $1::int) RETURNING id",
                        [String(rows)])
                    let at = ContinuousClock.now
                    for row in result.rows { if let id = row[0].flatMap({ JobID($0) }) { committed[id] = at } }
                }
                next = next + .milliseconds(Int(tick * 1000))
                let now = ContinuousClock.now
                if next > now { try await Task.sleep(until: next) } else { next = now }
            }
            let elapsed = started.duration(to: .now).seconds
            let total = committed.count
            let deadline = ContinuousClock.now + .seconds(60)
            while probes.count < total && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            return (committed, Double(total) / elapsed)
        }
        await producer.close()
        let starts = probes.take()
        var latencies = committed.compactMap { id, at in starts[id].map { max(0, at.duration(to: $0).seconds * 1000) } }
        latencies.sort()
        return .init(
            offeredPercent: Int((fraction * 100).rounded()), offeredPerSecond: offered, achievedPerSecond: achieved,
            jobs: latencies.count, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99),
            maxMs: latencies.last ?? 0)
    }

    /// An idle daemon, one INSERT at a time, 100 ms apart: LISTEN/NOTIFY pickup time.
    func idlePickup() async throws -> BenchReport.IdlePickup {
        try await reset()
        _ = probes.take()
        let samples = quick ? 20 : 100
        var latencies: [Double] = []
        try await withDaemon(workers: 8, handlers: [ProbeHandler(clock: probes)]) { _ in
            try await Task.sleep(for: .milliseconds(500))
            for _ in 0..<samples {
                let result = try await sql.query("INSERT INTO queue.jobs (kind, payload) VALUES ('bench.probe', '{}') RETURNING id")
                let at = ContinuousClock.now
                guard let id = result.rows.first?[0].flatMap({ JobID($0) }) else { continue }
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

    /// `backlog` due jobs plus 10% scheduled a day ahead; time to complete the first
    /// min(backlog, 20k) of them.
    func scale(backlog: Int, workers: Int) async throws -> BenchReport.Scale {
        try await reset()
        let scheduled = backlog / 10
        try await insertDue(backlog)
        try await sql.query(
            "INSERT INTO queue.jobs (kind, payload, run_at) SELECT 'noop', '{}', now() + interval '1 day' FROM generate_series(1, $1::int)",
            [String(scheduled)], timeout: 600)
        try await sql.executeScript("VACUUM ANALYZE queue.jobs", timeout: 600)
        let target = min(backlog, quick ? 5_000 : 20_000)
        let started = ContinuousClock.now
        let seconds = try await withDaemon(workers: workers) { daemon in
            try await waitForCompletions(target, daemon: daemon)
            return started.duration(to: .now).seconds
        }
        return .init(backlog: backlog, scheduled: scheduled, drained: target, jobsPerSecond: Double(target) / seconds)
    }

    // MARK: tier kinds

    /// The tier kinds this build serves; each reports why it was not measured.
    func tierKinds() -> [String: String] {
        let registered = Set(TierComponents(connections: connections).handlers.map(\.kind))
        var result: [String: String] = [:]
        for kind in ["content.write", "notification.send"] {
            result[kind] = registered.contains(kind)
                ? "registered; not measured by this bench yet"
                : "not available: no handler for \(kind) in this build"
        }
        return result
    }
}

private func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

private func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

private func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
