import Foundation
import JobdCampaigns
import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging

/// One content-tier test's world: a fresh migrated database, the tier's pool over
/// it, and the real handlers. `withContentWorld` runs the writer's group-commit
/// service while the test runs, as the daemon does.
struct ContentWorld {
    let database: TestDatabase
    let tier: TierDatabase
    let sql: PostgresConnection
    let logs = LogCapture()
    let settings: ContentSettings
    let writer: ContentWriteHandler

    static func make(settings: ContentSettings) async throws -> ContentWorld {
        let database = try await TestDatabase.create()
        let tier = TierDatabase(tier: .content, size: 2, logger: .silent) { index in
            database.connection("content-\(index)", timeout: 30)
        }
        return ContentWorld(
            database: database, tier: tier, sql: database.connection("content-sql", timeout: 30), settings: settings,
            writer: ContentWriteHandler(database: tier, compressionLevel: settings.compressionLevel))
    }

    var purger: ContentPurgeHandler { ContentPurgeHandler(database: tier, settings: settings) }
    var indexer: ContentIndexer { ContentIndexer(database: tier, settings: settings, logger: logs.logger()) }
    var store: ContentStore { ContentStore(connection: sql) }

    /// Runs `content.write` on `payload` as the daemon would, as attempt `attempt`.
    func write(_ payload: String, attempt: Int = 1) async throws {
        let job = ClaimedJob(id: 1, kind: "content.write", payload: payload, priority: .normal, attempt: attempt, maxAttempts: 20)
        try await writer.handle(job, context: JobContext(logger: logs.logger()))
    }

    func write(_ payload: [String: Any]) async throws {
        try await write(ContentFixtures.json(payload))
    }

    @discardableResult
    func exec(_ statement: String, _ params: [String?] = []) async throws -> PostgresResult {
        try await sql.query(statement, params)
    }

    func rows(_ statement: String, _ params: [String?] = []) async throws -> [[String?]] {
        try await sql.query(statement, params).rows
    }

    func int(_ statement: String, _ params: [String?] = []) async throws -> Int {
        Int(try await sql.query(statement, params).rows.first?.first.flatMap { $0 } ?? "") ?? -1
    }

    func close() async {
        await tier.close()
        await sql.close()
        await database.drop()
    }
}

func withContentWorld(
    settings: ContentSettings = ContentSettings(indexInterval: .milliseconds(50)), _ body: (ContentWorld) async throws -> Void
) async throws {
    let world = try await ContentWorld.make(settings: settings)
    do {
        try await runningServices(world.writer.services) { try await body(world) }
    } catch {
        await world.close()
        throw error
    }
    await world.close()
}

enum ContentFixtures {
    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// A complete message; `overrides` replace or add fields.
    static func message(_ externalID: String, tenant: String = "acme", _ overrides: [String: Any] = [:]) -> [String: Any] {
        var payload: [String: Any] = [
            "external_id": externalID, "tenant_id": tenant, "campaign_id": "spring-sale",
            "from": "Acme Store <news@acme.example>", "to": ["Ann Lee <ann@example.com>", "bob@example.org"],
            "subject": "Spring sale: 20% off garden tools",
            "headers": ["X-Campaign": "spring", "List-Unsubscribe": "<https://acme.example/u/1>"],
            "text": "Spring sale! 20% off garden tools until Sunday.",
            "html": """
                <html><head><style>td{font-family:Arial}</style></head><body><table><tr><td>
                <h1>Spring sale</h1><p>20% off <b>garden tools</b> until Sunday &mdash; shovels, rakes &amp; hoses.</p>
                </td></tr></table></body></html>
                """,
        ]
        for (key, value) in overrides { payload[key] = value }
        return payload
    }

    /// The mail corpus under Tests/Fixtures/mail-corpus.
    static var corpusDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/mail-corpus")
    }
}
