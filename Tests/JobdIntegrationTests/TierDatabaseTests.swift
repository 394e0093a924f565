import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import Testing

@Suite("TierDatabase", .serialized)
struct TierDatabaseTests {
    @Test("an unreachable tier fails the job transiently as tier_unavailable, logged once")
    func unreachableTier() async throws {
        let logs = LogCapture()
        // Port 1 on loopback refuses at once: a tier that is down.
        let tier = TierDatabase(tier: .notifications, size: 2, logger: logs.logger()) { index in
            PostgresConnection(conninfo: "postgresql://127.0.0.1:1/none", name: "n\(index)", commandTimeout: 2, logger: .silent)
        }
        for _ in 0..<3 {
            do {
                _ = try await tier.withConnection { try await $0.query("SELECT 1") }
                Issue.record("a query against a refused port succeeded")
            } catch let failure as JobFailure {
                #expect(failure.severity == .transient)
                #expect(failure.code == "tier_unavailable")
                #expect(failure.message.hasPrefix("notifications database unavailable"))
            }
        }
        let unavailable = logs.messages("tier unavailable")
        #expect(unavailable.count == 1)
        #expect(unavailable.first?.metadata[LogKey.tier] == "notifications")
        #expect(unavailable.first?.metadata[LogKey.messageID] == JobdMessageID.tierUnavailable.id)
        await tier.close()
    }

    @Test("a server error passes through unchanged and does not mark the tier down")
    func serverErrorPassesThrough() async throws {
        let database = try await TestDatabase.create()
        let logs = LogCapture()
        let tier = TierDatabase(tier: .content, size: 1, logger: logs.logger()) { _ in database.connection("content") }
        await #expect(throws: PostgresError.self) {
            try await tier.withConnection { try await $0.query("SELECT * FROM no_such_table") }
        }
        #expect(try await tier.withConnection { try await $0.query("SELECT 41 + 1").rows.first?.first } == "42")
        #expect(logs.messages("tier unavailable").isEmpty)
        await tier.close()
        await database.drop()
    }

    @Test("callers never share a connection: with two connections at most two run at once")
    func boundedConcurrency() async throws {
        let database = try await TestDatabase.create()
        let tier = TierDatabase(tier: .analytics, size: 2, logger: .silent) { index in database.connection("a\(index)") }
        let running = Concurrency()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await tier.withConnection { connection in
                        await running.enter()
                        try await connection.query("SELECT pg_sleep(0.05)")
                        await running.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await running.peak == 2)
        await tier.close()
        await database.drop()
    }
}

private actor Concurrency {
    private var now = 0
    private(set) var peak = 0
    func enter() {
        now += 1
        peak = max(peak, now)
    }
    func leave() { now -= 1 }
}
