import ArgumentParser
import Foundation
import JobdAssembly
import JobdBench

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
            It TRUNCATEs queue.jobs and queue.dead_letters between sections, so it refuses a
            queue that holds jobs unless --force.

            In process rather than as a child: the bench reads the daemon's own completion
            counter (polling count(*) cost the server more than the jobs did) and counts
            every statement its connections send. During a drain the driver only sleeps, so
            the process's CPU time is the daemon's; its peak RSS is reset
            (/proc/self/clear_refs) before each drain. Server CPU per job is read from /proc
            (PostgreSQL, when it runs on this host) and from INFO cpu (Redis).
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

    @Option(help: "The mail corpus content.write is measured with (default: Tests/Fixtures/mail-corpus).")
    var corpus = "Tests/Fixtures/mail-corpus"

    @Option(help: "The loopback webhook sink notification.send is measured with (default: scripts/notify-sink).")
    var notifySink = "scripts/notify-sink"

    @Option(help: "Contacts on the campaigns section's list (imported by COPY; default 100000, 5000 with --quick).")
    var campaignContacts: Int?

    @Option(help: "The loopback SMTP sink the campaigns section delivers to (default: scripts/smtp-sink).")
    var campaignSink = "scripts/smtp-sink"

    @Option(help: "Milliseconds between one latency producer's INSERTs (4 producers; default 5).")
    var producerInterval: Double = 5

    @Option(help: "The rate (jobs/s) the latency section's loads are fractions of (default: the fastest drain of this run); fixed, two builds compared A/B get the same offered load.")
    var latencyBase: Double?

    @Option(help: "The latency section's offered loads, percent of the base rate, comma separated (default: 10,50,90).")
    var latencyLoads: String?

    @Option(help: "Sections to run, comma separated: \(BenchSection.allCases.map(\.rawValue).joined(separator: ",")) (default: all).")
    var sections: String?

    func run() async throws {
        var config = try await ConfigurationLoader.load(global)
        config.redisPrefix += "-bench"
        // Bench logs only what goes wrong, unless asked for more.
        if global.logLevel == nil { config.logLevel = "warning" }
        guard producerInterval > 0 else { throw CLIError("--producer-interval must be positive") }
        if let latencyBase, !(latencyBase > 0 && latencyBase.isFinite) { throw CLIError("--latency-base must be a positive rate") }
        if let campaignContacts, campaignContacts <= 0 { throw CLIError("--campaign-contacts must be positive") }
        let options = BenchOptions(
            quick: quick, force: force, drainJobs: drainJobs ?? (quick ? 3_000 : 30_000),
            workers: try list(workers, default: [1, 8, 64], name: "--workers"),
            backlogs: try list(backlogs, default: quick ? [10_000] : [10_000, 100_000, 1_000_000], name: "--backlogs"),
            corpus: corpus, notifySink: notifySink, producerInterval: producerInterval / 1000,
            sections: try BenchSection.parse(sections),
            command: (["jobd"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            campaignContacts: campaignContacts ?? (quick ? 5_000 : 100_000), campaignSink: campaignSink,
            latencyBase: latencyBase,
            latencyLoads: try list(latencyLoads, default: [10, 50, 90], name: "--latency-loads").map { Double($0) / 100 })
        let report = try await BenchRun.run(configuration: config, options: options)

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

