import Foundation
import JobdCore
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

    /// The kinds issue 6 asks for. A tier helper fills in `prepare` (and `figures`)
    /// when the kind lands; until then a registered kind says "no recipe".
    static let recipes: [Recipe] = [
        Recipe(kind: "content.write"),       // messages/s and compression ratio
        Recipe(kind: "notification.send"),  // webhooks/s to a local sink
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
