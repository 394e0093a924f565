import Foundation
import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// content.write through a real daemon: enqueued by plain SQL, run by the worker
/// pool, and isolated from the queue when the content database is down.
@Suite("Content through the daemon", .serialized)
struct ContentDaemonTests {
    @Test("content.write enqueued by a plain INSERT is stored; a malformed one is dead-lettered as payload_invalid")
    func plainInsert() async throws {
        try await withWorld { world in
            let tier = TierDatabase(tier: .content, size: 2, logger: .silent) { world.database.connection("content-\($0)") }
            try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('content.write', $1::jsonb)",
                                 [ContentFixtures.json(ContentFixtures.message("sql-1"))])
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload) VALUES ('content.write', '{"external_id": "sql-2", "tenant_id": "acme"}')
                """)
            let daemon = world.makeDaemon(world.configuration(), handlers: [NoopHandler(), ContentWriteHandler(database: tier)])
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: 1)
                try await world.waitForState("dead", count: 1)
            }
            #expect(try await world.sql.query("SELECT external_id, tenant_id, subject FROM content.messages").rows
                == [["sql-1", "acme", "Spring sale: 20% off garden tools"]])
            #expect(try await world.scalar("SELECT errors->-1->>'code' FROM queue.jobs WHERE state = 'dead'") == "payload_invalid")
            #expect(try await world.scalar("SELECT last_error FROM queue.dead_letters")?.contains("from is required") == true)
            await tier.close()
        }
    }

    @Test("content database down: content jobs retry as tier_unavailable, other kinds flow, and it recovers")
    func tierUnavailable() async throws {
        try await withWorld { world in
            // The content tier is its own database, which does not exist yet.
            let contentName = world.database.name + "_content"
            let contentURL = world.database.url.replacingOccurrences(of: "/" + world.database.name, with: "/" + contentName)
            let tier = TierDatabase(tier: .content, size: 1, logger: world.logs.logger()) { index in
                PostgresConnection(conninfo: contentURL, name: "content-\(index)", commandTimeout: 5, logger: .silent)
            }
            try await world.exec("INSERT INTO queue.jobs (kind, payload, max_attempts) VALUES ('content.write', $1::jsonb, 1000)",
                                 [ContentFixtures.json(ContentFixtures.message("apart-1"))])
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
            let daemon = world.makeDaemon(world.configuration(), handlers: [NoopHandler(), ContentWriteHandler(database: tier)])
            let admin = PostgresConnection(conninfo: try TestEnvironment.databaseURL(), name: "admin", commandTimeout: 30, logger: .silent)
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: 20)
                try await waitUntil(timeout: 20, "content.write to fail twice as tier_unavailable") {
                    try await world.int("""
                        SELECT count(*) FROM queue.jobs, jsonb_array_elements(errors) e
                         WHERE kind = 'content.write' AND e->>'code' = 'tier_unavailable'
                        """) >= 2
                }
                #expect(try await world.scalar("SELECT state FROM queue.jobs WHERE kind = 'content.write'") != "dead")

                // The content database comes up: the job goes through on its next attempt.
                try await admin.executeScript("CREATE DATABASE \(contentName)")
                let migrate = PostgresConnection(conninfo: contentURL, name: "migrate", commandTimeout: 30, logger: .silent)
                try await Migrator(connection: migrate, logger: .silent).migrate(tiers: ["content"])
                await migrate.close()
                try await world.waitForState("completed", count: 21, timeout: 30)
            }
            await tier.close()
            let content = PostgresConnection(conninfo: contentURL, name: "check", commandTimeout: 10, logger: .silent)
            #expect(try await content.query("SELECT external_id FROM content.messages").rows == [["apart-1"]])
            // It went to the content database, not the queue's (which has the content schema too in tests).
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 0)
            await content.close()
            #expect(world.logs.messages("tier unavailable").count == 1)
            #expect(world.logs.messages("tier recovered").count == 1)
            try await admin.executeScript("DROP DATABASE IF EXISTS \(contentName) WITH (FORCE)")
            await admin.close()
        }
    }
}
