import Foundation
import JobdAnalytics
import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// Runs the SQL in examples/ the way an application would, and checks the jobs it
/// creates are the ones the daemon runs.
@Suite("examples/", .serialized)
struct ExamplesTests {
    static func example(_ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("examples").appendingPathComponent(name), encoding: .utf8)
    }

    @Test("campaigns.sql: inserting campaigns enqueues content.write and metrics.emit jobs; cancelling withdraws them")
    func campaigns() async throws {
        try await withWorld { world in
            let script = try Self.example("campaigns.sql")
            try await world.sql.executeScript(script)
            try await world.sql.executeScript(script)  // safe to run again
            try await world.exec("""
                INSERT INTO app.campaigns (tenant_id, subject, body, recipients, status, send_at) VALUES
                  ('acme', 'Hello', 'Hi there', ARRAY['a@x.test', 'b@x.test', 'c@x.test'], 'scheduled', now() + interval '1 day'),
                  ('acme', 'Sale', 'Cheap', ARRAY['a@x.test', 'd@x.test'], 'scheduled', now() + interval '1 day'),
                  ('zeta', 'Draft', 'Later', ARRAY['z@x.test', 'y@x.test'], 'draft', now() + interval '1 day')
                """)
            #expect(try await world.sql.lines("""
                SELECT payload->>'campaign_id', payload->'to'->>0, payload->>'external_id', unique_key, run_at > now()
                  FROM queue.jobs WHERE kind = 'content.write' ORDER BY id
                """) == [
                    "1\ta@x.test\tcampaign-1-a@x.test\tcampaign:1:a@x.test\tt",
                    "1\tb@x.test\tcampaign-1-b@x.test\tcampaign:1:b@x.test\tt",
                    "1\tc@x.test\tcampaign-1-c@x.test\tcampaign:1:c@x.test\tt",
                    "2\ta@x.test\tcampaign-2-a@x.test\tcampaign:2:a@x.test\tt",
                    "2\td@x.test\tcampaign-2-d@x.test\tcampaign:2:d@x.test\tt",
                ])
            // Each payload is one the content tier accepts.
            for payload in try await world.sql.lines("SELECT payload::text FROM queue.jobs WHERE kind = 'content.write'") {
                guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: Data(payload.utf8)) else {
                    Issue.record("not an object: \(payload)")
                    continue
                }
                #expect(throws: Never.self) { try ContentMessage.parse(object) }
            }
            #expect(try await world.sql.lines("""
                SELECT payload->>'name', payload->>'value', payload->'tags'->>'tenant', priority
                  FROM queue.jobs WHERE kind = 'metrics.emit' ORDER BY id
                """) == ["campaign.created\t3\tacme\tlow", "campaign.created\t2\tacme\tlow", "campaign.created\t2\tzeta\tlow"])

            try await world.exec("UPDATE app.campaigns SET status = 'cancelled' WHERE id = 2")
            #expect(try await world.sql.lines("""
                SELECT state, count(*) FROM queue.jobs WHERE kind = 'content.write' GROUP BY 1 ORDER BY 1
                """) == ["available\t3", "cancelled\t2"])

            // enqueue.sql twice: the rollup is held by its unique key, the rest are plain inserts.
            try await world.sql.executeScript(try Self.example("enqueue.sql"))
            try await world.sql.executeScript(try Self.example("enqueue.sql"))
            #expect(try await world.sql.lines("""
                SELECT kind, count(*) FROM queue.jobs WHERE kind <> 'content.write' GROUP BY 1 ORDER BY 1
                """) == ["analytics.rollup\t1", "metrics.emit\t7", "queue.prune\t2"])

            // The daemon runs what is due (content.write waits for send_at).
            let databases = TierDatabases([
                TierDatabase(tier: .analytics, size: 2, logger: .silent) { world.database.connection("a\($0)") },
                TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("c") },
                TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in world.database.connection("n") },
                TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in world.database.connection("q") },
            ])
            let prune = world.database.connection("prune")
            let daemon = world.makeDaemon(world.configuration(), handlers: [
                MetricsEmitHandler(analytics: databases[.analytics]),
                AnalyticsRollupHandler(rollup: AnalyticsRollup(databases: databases, queue: databases[.queue], logger: .silent)),
                QueuePruneHandler(connection: prune, retention: .seconds(7 * 86_400)),
            ])
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: 10)
            }
            #expect(try await world.count(state: "dead") == 0)
            #expect(try await world.sql.lines("SELECT name, sum(value), count(*) FROM analytics.events GROUP BY 1 ORDER BY 1") == [
                "campaign.created\t7\t3", "orders\t6\t2", "revenue\t259\t2", "signup\t2\t2",
            ])
            #expect(try await world.int("SELECT count(*) FROM analytics.daily_rollups WHERE day = '2026-01-10'") == 4)
            await databases.close()
            await prune.close()
        }
    }
}
