import Foundation
import JobdAnalytics
import JobdAssembly
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue

/// `jobd bench`'s section for the tier kinds (content.write, notification.send).
///
/// THE HOOK for the tier helpers: each kind has a `BenchTierKinds.Recipe` below. A
/// kind whose handler is not registered in `TierComponents` reports
/// "not available" — never a number. A registered kind without a recipe reports
/// "no recipe". A recipe enqueues its own jobs (payloads the handler accepts), runs
/// the daemon (as `jobd run` assembles it) until they are completed in
/// Postgres, and may add figures of its own (content.write: the compression ratio
/// read from its table; notification.send: deliveries counted by its local sink).
enum BenchTierKinds {
    /// A recipe cannot run here (its input is missing): reported, not a failure.
    struct NotMeasured: Error {
        var reason: String
    }

    /// How to measure one kind.
    struct Recipe: Sendable {
        var kind: String
        /// Jobs per run (quick, full).
        var jobs: (quick: Int, full: Int) = (500, 5_000)
        /// Enqueues `count` jobs of the kind (and starts whatever the kind needs,
        /// such as a local webhook sink); returns what `figures` needs afterwards.
        var prepare: (@Sendable (Bench, Int) async throws -> [String: String])?
        /// Extra figures once the jobs are completed (e.g. "compressionRatio").
        var figures: (@Sendable (Bench, [String: String]) async throws -> [String: Double])?
        /// Figures taken while the daemon still runs, right after the jobs completed
        /// (content.write: how long the search index took to catch up).
        var settle: (@Sendable (Bench, _ jobs: Int, _ jobSeconds: Double) async throws -> [String: Double])?
        /// Settings the daemon needs for this kind (a webhook secret …).
        var adjust: @Sendable (inout JobdSettings, [String: String]) -> Void = { _, _ in }
        /// Always called after a run that prepared, to stop what `prepare` started.
        var finish: (@Sendable ([String: String]) async -> Void)?
    }

    /// The tier kinds the bench measures. A kind without `prepare` says "no recipe".
    static let recipes: [Recipe] = [
        // messages/s and the compression ratio, over the repository's mail corpus
        Recipe(
            kind: "content.write", jobs: (260, 2_600), prepare: ContentWriteRecipe.prepare, figures: ContentWriteRecipe.figures,
            settle: ContentWriteRecipe.settle),
        // webhooks/s to the loopback sink scripts/notify-sink
        Recipe(
            kind: "notification.send", jobs: (300, 3_000), prepare: NotificationSendRecipe.prepare,
            figures: NotificationSendRecipe.figures, adjust: NotificationSendRecipe.adjust,
            finish: NotificationSendRecipe.finish),
    ]

    static func run(_ bench: Bench, workers: Int) async throws -> [String: BenchReport.TierKind] {
        let components = TierComponents(connections: bench.connections)
        let registered = Set(components.handlers.map(\.kind))
        await components.databases.close()
        var results: [String: BenchReport.TierKind] = [:]
        for recipe in recipes {
            guard registered.contains(recipe.kind) else {
                results[recipe.kind] = .init(
                    status: "not available", detail: "no handler for \(recipe.kind) is registered in this build")
                continue
            }
            guard let prepare = recipe.prepare else {
                results[recipe.kind] = .init(
                    status: "no recipe",
                    detail: "the handler is registered, but BenchTierKinds.recipes has no payloads for it yet")
                continue
            }
            var context: [String: String]?
            do {
                try await bench.reset()
                let count = bench.quick ? recipe.jobs.quick : recipe.jobs.full
                let prepared = try await prepare(bench, count)
                context = prepared
                let sinkPID = prepared["pid"].flatMap { Int32($0) }
                let serversBefore = await bench.serverCPU()
                let sinkBefore = sinkPID.flatMap { processTreeCPUSeconds(root: $0) }
                let daemonBefore = cpuSeconds()
                let started = ContinuousClock.now
                // The daemon runs every tier's handlers and services, as `jobd run` does.
                let (seconds, cpu, settled) = try await bench.withDaemon(workers: workers, adjust: { recipe.adjust(&$0, prepared) }) { daemon in
                    try await bench.waitForFinished(count, daemon: daemon)
                    let seconds = started.duration(to: .now).seconds
                    // CPU per job while the jobs ran (the daemon's start included): where the time goes.
                    let daemonCPU = cpuSeconds() - daemonBefore
                    let serversAfter = await bench.serverCPU()
                    let sinkAfter = sinkPID.flatMap { processTreeCPUSeconds(root: $0) }
                    var cpu = ["daemonCPUmsPerJob": daemonCPU * 1000 / Double(count)]
                    if let before = serversBefore.postgres, let after = serversAfter.postgres {
                        cpu["postgresCPUmsPerJob"] = (after - before) * 1000 / Double(count)
                    }
                    if let before = sinkBefore, let after = sinkAfter { cpu["sinkCPUmsPerJob"] = (after - before) * 1000 / Double(count) }
                    return (seconds, cpu, try await recipe.settle?(bench, count, seconds) ?? [:])
                }
                let failed = try await bench.unsuccessfulCount()
                var result = BenchReport.TierKind(
                    status: failed == 0 ? "measured" : "failed",
                    detail: failed == 0 ? "\(count) jobs completed" : "\(failed) of \(count) jobs did not complete",
                    jobs: count, perSecond: Double(count) / seconds)
                if failed == 0, let figures = recipe.figures { result.figures = try await figures(bench, prepared) }
                if failed == 0 { result.figures.merge(settled.merging(cpu) { first, _ in first }) { first, _ in first } }
                results[recipe.kind] = result
                if let finish = recipe.finish { await finish(prepared) }
            } catch let skipped as NotMeasured {
                if let finish = recipe.finish, let context { await finish(context) }
                results[recipe.kind] = .init(status: "not measured", detail: skipped.reason)
            } catch {
                if let finish = recipe.finish, let context { await finish(context) }
                results[recipe.kind] = .init(status: "failed", detail: "\(error)")
            }
        }
        return results
    }
}

extension Bench {
    /// Waits until `count` attempts have finished for good (completed or dead).
    func waitForFinished(_ count: Int, daemon: JobDaemon, timeout: Double = 600) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let snapshot = daemon.stats.snapshot
            if snapshot.completed + snapshot.deadLettered >= count { return }
            guard ContinuousClock.now < deadline else { throw CLIError("bench: jobs not finished within \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Jobs in the queue that did not complete.
    func unsuccessfulCount() async throws -> Int {
        Int(try await sql.query("SELECT count(*) FROM queue.jobs WHERE state <> 'completed'").rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }
}

/// content.write over the mail corpus in `Tests/Fixtures/mail-corpus` (26 real-looking
/// newsletters and transactional mails; `--corpus` names another directory; the
/// default is relative, so run from the repository root, as scripts/bench does). Each job stores one message under the tenant `jobd-bench`,
/// whose rows are deleted before and after; the figure is the stored size against
/// the raw size of what was stored (`content.messages.raw_bytes / stored_bytes`).
enum ContentWriteRecipe {
    static let tenant = "jobd-bench"

    struct Mail: Decodable {
        var file: String
        var from: String
        var to: [String]
    }

    struct Manifest: Decodable {
        var messages: [Mail]
    }

    @Sendable static func prepare(_ bench: Bench, _ count: Int) async throws -> [String: String] {
        let corpus = bench.corpus
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: corpus + "/corpus.json")) else {
            throw BenchTierKinds.NotMeasured(reason: "no mail corpus at \(corpus) (run from the repository root, or --corpus)")
        }
        let mails = try JSONDecoder().decode(Manifest.self, from: data).messages
        guard !mails.isEmpty else { throw CLIError("content.write: the mail corpus is empty") }
        let pages = try mails.map { try String(contentsOfFile: corpus + "/" + $0.file, encoding: .utf8) }
        try await cleanUp(bench)
        let run = UInt32.random(in: 0...UInt32.max)
        var payloads: [String] = []
        payloads.reserveCapacity(count)
        for index in 0..<count {
            let mail = mails[index % mails.count], page = pages[index % mails.count]
            let payload: [String: Any] = [
                "external_id": "jobd-bench-\(run)-\(index)", "tenant_id": tenant, "from": mail.from, "to": mail.to,
                "subject": subject(of: page), "html": page,
            ]
            payloads.append(String(decoding: try JSONSerialization.data(withJSONObject: payload), as: UTF8.self))
        }
        for start in stride(from: 0, to: payloads.count, by: 500) {
            let batch = Array(payloads[start..<min(start + 500, payloads.count)])
            try await bench.sql.query(
                "INSERT INTO queue.jobs (kind, payload) SELECT 'content.write', p::jsonb FROM unnest($1::text[]) p",
                [PostgresArray.texts(batch)], timeout: 120)
        }
        return [:]
    }

    @Sendable static func figures(_ bench: Bench, _ context: [String: String]) async throws -> [String: Double] {
        let content = bench.connections.postgres("bench-content", tier: .content)
        defer { Task { await content.close() } }
        let row = try await content.query(
            "SELECT sum(raw_bytes)::float8, sum(stored_bytes)::float8, count(*) FROM content.messages WHERE tenant_id = $1",
            [tenant]).rows.first
        try await cleanUp(bench)
        guard let raw = row?[0].flatMap(Double.init), let stored = row?[1].flatMap(Double.init), stored > 0 else {
            throw CLIError("content.write: no stored messages found for the bench tenant")
        }
        return ["compressionRatio": raw / stored, "messages": row?[2].flatMap(Double.init) ?? 0]
    }

    /// With the daemon still running: the seconds from the last job's completion
    /// until the search indexer has indexed every message the run stored (it makes
    /// way for a busy content.write lane), and messages/s counted to that moment.
    @Sendable static func settle(_ bench: Bench, _ jobs: Int, _ jobSeconds: Double) async throws -> [String: Double] {
        let content = bench.connections.postgres("bench-content-index", tier: .content)
        defer { Task { await content.close() } }
        let started = ContinuousClock.now
        while true {
            let waiting = try await content.query(
                "SELECT count(*) FROM content.messages WHERE tenant_id = $1 AND search_vector IS NULL AND archived_at IS NULL",
                [tenant]).rows.first?.first.flatMap { $0 }.flatMap { Int($0) }
            if waiting == 0 { break }
            guard started.duration(to: .now) < .seconds(300) else { throw CLIError("content.write: index not caught up within 300 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let catchUp = started.duration(to: .now).seconds
        return ["indexCatchUpSeconds": catchUp, "indexedPerSecond": Double(jobs) / (jobSeconds + catchUp)]
    }

    /// Deletes the bench tenant's messages (bodies and attachment links cascade).
    static func cleanUp(_ bench: Bench) async throws {
        let content = bench.connections.postgres("bench-content-clean", tier: .content)
        defer { Task { await content.close() } }
        try await content.query("DELETE FROM content.messages WHERE tenant_id = $1", [tenant], timeout: 120)
    }

    /// The page's <title>, or a fixed subject.
    static func subject(of page: String) -> String {
        guard let open = page.range(of: "<title>"), let close = page.range(of: "</title>", range: open.upperBound..<page.endIndex)
        else { return "jobd bench" }
        let title = page[open.upperBound..<close.lowerBound].replacingOccurrences(of: "\n", with: " ")
        let decoded = title.replacingOccurrences(of: "&amp;", with: "&").trimmingCharacters(in: .whitespaces)
        return decoded.isEmpty ? "jobd bench" : String(decoded.prefix(200))
    }
}

/// notification.send as webhooks to the loopback sink `scripts/notify-sink` (or
/// `--notify-sink`; started here, stopped after; needs python3), signed with a bench-only secret, rate limit off. Each job's
/// idempotency key starts with `jobd-bench-`; those notifications are deleted after.
/// The figure is the webhooks the sink received.
enum NotificationSendRecipe {
    static let secret = "jobd-bench-webhook-secret-0123456789"

    @Sendable static func prepare(_ bench: Bench, _ count: Int) async throws -> [String: String] {
        let sink = bench.notifySink
        guard FileManager.default.fileExists(atPath: sink) else {
            throw BenchTierKinds.NotMeasured(reason: "no webhook sink at \(sink) (run from the repository root, or --notify-sink)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jobd-bench-sink-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ready = dir.appendingPathComponent("ready.json").path
        let record = dir.appendingPathComponent("record.jsonl").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", sink, "--ready", ready, "--record", record, "--webhook-secret", secret]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = String(process.processIdentifier)
        var port: Int?
        for _ in 0..<100 {
            if let data = FileManager.default.contents(atPath: ready),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let found = object["http_port"] as? Int {
                port = found
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            await finish(["dir": dir.path, "pid": pid])
            throw CLIError("notification.send: \(sink) did not start")
        }
        try await cleanUp(bench)
        let run = UInt32.random(in: 0...UInt32.max)
        try await bench.sql.query("""
            INSERT INTO queue.jobs (kind, payload)
            SELECT 'notification.send', jsonb_build_object(
                       'channel', 'webhook', 'to', $1::text,
                       'idempotency_key', 'jobd-bench-' || $2::text || '-' || g,
                       'body', jsonb_build_object('event', 'order.shipped', 'order', g))
              FROM generate_series(1, $3::int) g
            """, ["http://127.0.0.1:\(port)/bench", String(run), String(count)], timeout: 120)
        return ["dir": dir.path, "pid": pid, "record": record, "port": String(port)]
    }

    @Sendable static func adjust(_ config: inout JobdSettings, _ context: [String: String]) {
        config.notifications.webhookSecret = SecretText(secret)
        config.notifications.rateLimit = nil
        // The bench's receiver is the loopback sink.
        config.notifications.networkPolicy = OutboundNetworkPolicy(allowed: [CIDRBlock(parsing: "127.0.0.0/8")!])
    }

    @Sendable static func figures(_ bench: Bench, _ context: [String: String]) async throws -> [String: Double] {
        // The sink appends one JSON line per request it received.
        let received = context["record"].flatMap { FileManager.default.contents(atPath: $0) }
            .map { data in data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } } ?? 0
        try await cleanUp(bench)
        return ["webhooksReceived": Double(received)]
    }

    @Sendable static func finish(_ context: [String: String]) async {
        // Foundation's Process reaps the child once it exits.
        if let pid = context["pid"].flatMap({ Int32($0) }), pid > 0 { kill(pid, SIGTERM) }
        if let dir = context["dir"] { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Deletes the bench's notifications (their attempts cascade).
    static func cleanUp(_ bench: Bench) async throws {
        let notifications = bench.connections.postgres("bench-notifications", tier: .notifications)
        defer { Task { await notifications.close() } }
        try await notifications.query(
            "DELETE FROM notifications.notifications WHERE idempotency_key LIKE 'jobd-bench-%'", timeout: 120)
    }
}
