import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue
import Testing

/// The content store over its typed statements: retention run on the store's own
/// connection (what `jobd content purge` does), and retention windows of any size.
@Suite("Content store statements", .serialized)
struct ContentStoreStatementTests {
    @Test("the store applies retention on its own connection, batch after batch, bounded by max_messages")
    func storePurge() async throws {
        let settings = ContentSettings(retention: .seconds(60), retentionAction: .archive, purgeBatch: 2)
        try await withContentWorld(settings: settings) { world in
            for index in 0..<5 { try await world.write(ContentFixtures.message("s\(index)")) }
            try await world.write(ContentFixtures.message("fresh"))
            try await world.exec("UPDATE content.messages SET created_at = now() - interval '1 hour' WHERE external_id <> 'fresh'")
            #expect(try await world.store.purge(settings: settings, maxMessages: 3) == .init(purged: 0, archived: 3, blobsDeleted: 0))
            #expect(try await world.int("SELECT count(*) FROM content.messages WHERE archived_at IS NOT NULL") == 3)
            #expect(try await world.store.purge(settings: settings) == .init(purged: 0, archived: 2, blobsDeleted: 0))
            #expect(try await world.rows("SELECT external_id FROM content.messages WHERE archived_at IS NULL") == [["fresh"]])
            #expect(try await world.store.purge(settings: settings) == .init(purged: 0, archived: 0, blobsDeleted: 0))
        }
    }

    @Test("a default retention longer than any row's age keeps every message (no overflow in the conversion)")
    func hugeRetention() async throws {
        // 10^300 s: beyond Int, beyond `Duration`'s nanoseconds, and beyond what
        // `now() - interval` can hold.
        var settings = try ContentSettings.read(ConfigurationReader { $0 == .contentRetention ? "1e300" : nil })
        #expect(settings.retention == ContentSettings.maximumRetention)
        settings.retentionAction = .purge
        settings.purgeBatch = 2
        try await withContentWorld(settings: settings) { world in
            try await world.write(ContentFixtures.message("ancient"))
            try await world.exec("UPDATE content.messages SET created_at = now() - interval '3000 years'")
            #expect(try await world.purger.run() == .init(purged: 0, archived: 0, blobsDeleted: 0))
            #expect(try await world.store.purge(settings: settings) == .init(purged: 0, archived: 0, blobsDeleted: 0))
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 1)

            // A window just under the 3,000-year-old row's age still expires it.
            let shorter = ContentSettings(retention: .seconds(2_900 * 365 * 86_400), retentionAction: .purge, purgeBatch: 2)
            #expect(try await world.store.purge(settings: shorter).purged == 1)
        }
    }
}
