import JobdCore
import JobdRedis

extension RedisDispatch {
    /// Puts popped ids back at the head of their lists (a claim that failed midway).
    func pushFront(_ ids: [(id: JobID, priority: JobPriority)]) async throws {
        guard !ids.isEmpty else { return }
        var commands: [[String]] = []
        for priority in JobPriority.allCases {
            let lane = ids.filter { $0.priority == priority }.map { String($0.id) }
            if !lane.isEmpty { commands.append(["LPUSH", keys.queue(priority)] + lane.reversed()) }
        }
        for reply in try await connection.pipeline(commands) {
            if case .error(let message) = reply { throw RedisError.server(message) }
        }
    }
}
