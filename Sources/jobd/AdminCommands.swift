import ArgumentParser
import Foundation
import JobdAssembly
import JobdCore
import JobdPostgres
import JobdRedis

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending migrations (safe to run twice, or twice at once).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let connections = Connections(settings: try await ConfigurationLoader.load(global))
        for report in try await TierMigrations.migrate(connections) {
            let tiers = report.tiers.map(\.rawValue).joined(separator: ", ")
            print(report.applied.isEmpty
                ? "migrations (\(tiers)): up to date"
                : "migrations (\(tiers)): applied \(report.applied.map(String.init).joined(separator: ", "))")
        }
    }
}

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Enqueue one job (the same as an INSERT INTO queue.jobs).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The job kind, e.g. noop.")
    var kind: String

    @Option(help: "JSON object payload.")
    var payload = "{}"

    @Option(help: "high, normal or low.")
    var priority = "normal"

    @Option(name: .customLong("in"), help: "Run after this delay (e.g. 30s, 5m).")
    var delay: String?

    @Option(help: "Run at this time (ISO 8601 or anything Postgres parses as timestamptz).")
    var at: String?

    @Option(help: "Attempts before dead-lettering (default 20).")
    var maxAttempts: Int?

    @Option(help: "While an unfinished job of this kind holds this key, return its id instead.")
    var uniqueKey: String?

    func validate() throws {
        if delay != nil && at != nil { throw ValidationError("--in and --at exclude each other") }
        if let delay, DurationText.seconds(delay) == nil { throw ValidationError("--in: \"\(delay)\" is not a duration") }
        if let maxAttempts, !(1...1000).contains(maxAttempts) { throw ValidationError("--max-attempts must be 1…1000") }
        guard let data = payload.data(using: .utf8),
              case .object = try? JSONDecoder().decode(JSONValue.self, from: data)
        else { throw ValidationError("--payload must be a JSON object") }
        _ = try JobPriority(parsing: priority)
    }

    func run() async throws {
        var request = QueueAdmin.EnqueueRequest(kind: kind)
        request.payload = payload
        request.priority = try JobPriority(parsing: priority)
        request.runAt = at
        request.delay = delay.flatMap(DurationText.seconds).map { TotalConversion.duration(seconds: $0) } ?? .zero
        request.maxAttempts = maxAttempts
        request.uniqueKey = uniqueKey
        let id = try await global.withPostgres("enqueue") { connection, _ in
            do {
                return try await QueueAdmin(connection: connection).enqueue(request)
            } catch let error as PostgresError {
                throw CLIError("enqueue failed: \(error)")
            }
        }
        print(id)
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Jobs per state and priority, Redis lists, backlog age, live daemons.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Codable {
        var jobs: [String: [String: Int]]
        var redisLists: [String: Int]?
        var redisError: String?
        var oldestDueSeconds: Double?
        var deadLetters: Int
        var daemons: [QueueAdmin.Status.Daemon]
        /// By daemon id: slots now, wanted and busy, as each daemon last published them.
        var capacity: [String: DaemonCapacity]?
        var paused: [QueueAdmin.Pause] = []
    }

    func run() async throws {
        let (status, report) = try await global.withPostgres("status") { connection, connections in
            let status = try await QueueAdmin(connection: connection).status()
            var report = Report(
                jobs: status.counts, oldestDueSeconds: status.oldestDueSeconds, deadLetters: status.deadLetters,
                daemons: status.daemons)
            report.paused = try await QueueAdmin(connection: connection).pauses()
            do {
                let dispatch = connections.dispatch("status")
                let lengths = try await dispatch.lengths()
                report.redisLists = Dictionary(uniqueKeysWithValues: lengths.map { ($0.key.rawValue, $0.value) })
                report.capacity = try await dispatch.capacities(daemons: status.daemons.map(\.id))
            } catch {
                report.redisError = "\(error)"
            }
            return (status, report)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("jobs (state: high / normal / low):")
        for state in JobState.allCases {
            let row = status.counts[state.rawValue] ?? [:]
            let cells = JobPriority.allCases.map { String(row[$0.rawValue] ?? 0) }
            print("  \(state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(cells.joined(separator: " / "))")
        }
        if let lists = report.redisLists {
            print("redis lists: " + JobPriority.allCases.map { "\($0.rawValue) \(lists[$0.rawValue] ?? 0)" }.joined(separator: ", "))
        } else {
            print("redis: unreachable (\(report.redisError ?? "?"))")
        }
        if let oldest = status.oldestDueSeconds {
            print("oldest due job waiting: \(String(format: "%.3f", oldest)) s")
        } else {
            print("oldest due job waiting: none")
        }
        print("dead letters: \(status.deadLetters)")
        print("paused: " + (report.paused.isEmpty ? "nothing"
            : report.paused.map { "\($0.scope.rawValue) \($0.name) (by \($0.pausedBy))" }.joined(separator: ", ")))
        print("live daemons: \(status.daemons.count)")
        for daemon in status.daemons {
            var slots = ""
            if let capacity = report.capacity?[daemon.id] {
                slots = " slots \(capacity.busy)/\(capacity.workers) busy" + (capacity.desired > capacity.workers ? " (want \(capacity.desired))" : "")
            }
            print("  \(daemon.id) workers=\(daemon.workers)\(slots) version=\(daemon.version) heartbeat \(String(format: "%.1f", daemon.secondsSinceHeartbeat)) s ago")
        }
        if let capacity = report.capacity, !capacity.isEmpty {
            let workers = capacity.values.map(\.workers).reduce(0, +)
            let desired = capacity.values.map(\.desired).reduce(0, +)
            print("worker slots: \(workers), wanted \(desired)" + (desired > workers ? " (short by \(desired - workers): add daemons)" : ""))
        }
    }
}

struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letter", abstract: "Inspect, re-drive and purge dead-lettered jobs.",
        subcommands: [List.self, Retry.self, Purge.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, newest first.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "At most this many.") var limit = 100
        @Option(help: "Only this kind.") var kind: String?

        func run() async throws {
            let letters = try await global.withPostgres("dead-letter") { connection, _ in
                try await QueueAdmin(connection: connection).deadLetters(limit: limit, kind: kind)
            }
            if json {
                let rows: [[String: Any]] = letters.map { letter in
                    [
                        "job_id": letter.jobID, "kind": letter.kind, "priority": letter.priority,
                        "attempts": letter.attempts, "reason": letter.reason, "last_error": letter.lastError ?? NSNull(),
                        "dead_at": letter.deadAt,
                        "errors": (try? JSONSerialization.jsonObject(with: Data(letter.errors.utf8))) ?? [],
                        "payload": (try? JSONSerialization.jsonObject(with: Data(letter.payload.utf8))) ?? [:],
                    ]
                }
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
                print(TerminalText.json(String(decoding: data, as: UTF8.self)))
                return
            }
            if letters.isEmpty { print("no dead letters") }
            // Kind, reason and error are producer or handler text: escaped for the terminal.
            for letter in letters {
                let fields = [
                    "\(letter.jobID)", letter.kind, letter.priority, "attempts=\(letter.attempts)", letter.reason,
                    letter.deadAt, letter.lastError ?? "",
                ]
                print(fields.map { TerminalText.escape($0) }.joined(separator: "\t"))
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-drive dead jobs: back to available, attempts reset.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Job ids.") var ids: [Int64] = []
        @Flag(help: "Re-drive every dead letter.") var all = false

        func validate() throws {
            if all == !ids.isEmpty { throw ValidationError("give job ids or --all (not both)") }
        }

        func run() async throws {
            let redriven = try await global.withPostgres("dead-letter") { connection, _ in
                try await QueueAdmin(connection: connection).retryDeadLetters(ids: all ? nil : ids)
            }
            print("re-driven: \(redriven.count)" + (redriven.isEmpty ? "" : " (\(redriven.map(String.init).joined(separator: ", ")))"))
            let missing = Set(ids).subtracting(redriven)
            if !all && !missing.isEmpty {
                throw CLIError("not dead-lettered: \(missing.sorted().map(String.init).joined(separator: ", "))")
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead jobs older than a duration.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "e.g. 7d, 12h.") var olderThan: String

        func validate() throws {
            if DurationText.seconds(olderThan) == nil { throw ValidationError("--older-than: \"\(olderThan)\" is not a duration") }
        }

        func run() async throws {
            let purged = try await global.withPostgres("dead-letter") { connection, _ in
                try await QueueAdmin(connection: connection).purgeDeadLetters(olderThan: DurationText.seconds(olderThan) ?? 0)
            }
            print("purged: \(purged)")
        }
    }
}
