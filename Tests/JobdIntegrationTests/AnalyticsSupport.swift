import Foundation
import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func set(_ date: Date) { current.withLock { $0 = date } }
}

func utcDate(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: text) else { preconditionFailure("bad test date \(text)") }
    return date
}

/// A database address that refuses connections at once: a tier that is down.
let unreachableDatabase = "postgresql://127.0.0.1:1/none"

/// Runs `services` in one ServiceGroup (in order; stopped in reverse, as `jobd run`
/// does) for the duration of `body`, then shuts them down gracefully.
func runningServices<T>(_ services: [any Service], _ body: () async throws -> T) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services, logger: .silent))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: T
        do {
            result = try await body()
        } catch {
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// A job as a handler receives it, for calling handlers directly.
func claimed(_ kind: String, _ payload: String, id: JobID = 1, attempt: Int = 1) -> ClaimedJob {
    ClaimedJob(id: id, kind: kind, payload: payload, priority: .normal, attempt: attempt, maxAttempts: 20)
}

let testContext = JobContext(logger: .silent)

extension PostgresConnection {
    nonisolated func int(_ sql: String, _ params: [String?] = []) async throws -> Int {
        Int(try await query(sql, params).rows.first?.first.flatMap { $0 } ?? "") ?? -1
    }

    /// Every row as one tab-separated line, for comparing whole tables.
    nonisolated func lines(_ sql: String, _ params: [String?] = []) async throws -> [String] {
        try await query(sql, params).rows.map { $0.map { $0 ?? "NULL" }.joined(separator: "\t") }
    }
}
