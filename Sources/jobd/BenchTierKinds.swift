import Foundation
import JobdCore
import JobdPostgres
import JobdRuntime

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
    }

    /// The kinds issue 6 asks for. A kind without `prepare` says "no recipe".
    static let recipes: [Recipe] = [
        // messages/s and the compression ratio, over the repository's mail corpus
        Recipe(kind: "content.write", jobs: (260, 2_600), prepare: ContentWriteRecipe.prepare, figures: ContentWriteRecipe.figures),
        // webhooks/s to a local sink: needs the sink (scripts/notify-sink) and a webhook
        // secret wired in; not yet
        Recipe(kind: "notification.send"),
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
            do {
                try await bench.reset()
                let count = bench.quick ? recipe.jobs.quick : recipe.jobs.full
                let context = try await prepare(bench, count)
                let started = ContinuousClock.now
                // The daemon runs every tier's handlers and services, as `jobd run` does.
                let seconds = try await bench.withDaemon(workers: workers) { daemon in
                    try await bench.waitForFinished(count, daemon: daemon)
                    return started.duration(to: .now).seconds
                }
                let failed = try await bench.unsuccessfulCount()
                var result = BenchReport.TierKind(
                    status: failed == 0 ? "measured" : "failed",
                    detail: failed == 0 ? "\(count) jobs completed" : "\(failed) of \(count) jobs did not complete",
                    jobs: count, perSecond: Double(count) / seconds)
                if failed == 0, let figures = recipe.figures { result.figures = try await figures(bench, context) }
                results[recipe.kind] = result
            } catch let skipped as NotMeasured {
                results[recipe.kind] = .init(status: "not measured", detail: skipped.reason)
            } catch {
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
