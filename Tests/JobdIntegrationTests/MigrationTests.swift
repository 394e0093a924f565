import Foundation
import JobdPostgres
import JobdTestSupport
import Testing

@Suite("Migrations", .serialized)
struct MigrationTests {
    @Test("the embedded migrations are exactly the files in Migrations/<tier>/, text for text")
    func embeddedMatchFiles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("Migrations")
        let folders = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        // No migration outside a tier's folder: the build plugin would not see it.
        #expect(folders.filter { $0.hasSuffix(".sql") }.isEmpty)
        // Every file, as (folder, file name), in the plugin's order: by file name.
        let files = try folders.filter { !$0.hasPrefix(".") }.flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent(folder).path)
                .filter { $0.hasSuffix(".sql") }.map { (folder, $0) }
        }.sorted { $0.1 < $1.1 }
        #expect(files.count == Migration.embedded.count)
        for ((folder, file), migration) in zip(files, Migration.embedded) {
            let text = try String(
                contentsOf: directory.appendingPathComponent(folder).appendingPathComponent(file), encoding: .utf8)
            #expect(file == String(format: "%04d_%@.sql", migration.version, migration.name))
            #expect(folder == migration.tier, "\(file) is in Migrations/\(folder)/, its tier is \(migration.tier)")
            // The text exactly, but for the file's final line break: the checksum an
            // applied migration is compared with is computed from it.
            #expect(migration.sql.text == (text.hasSuffix("\n") ? String(text.dropLast()) : text), "\(file)")
        }
    }

    @Test("two migrators at once apply each migration once; a re-run is a no-op")
    func concurrentMigrate() async throws {
        let database = try await TestDatabase.create()
        // TestDatabase.create already migrated; start from an empty schema instead.
        let reset = database.connection("reset")
        try await reset.executeScript("DROP SCHEMA queue CASCADE; DROP SCHEMA jobd CASCADE;")
        await reset.close()
        let a = database.connection("a"), b = database.connection("b")
        async let first = Migrator(connection: a, logger: .silent).migrate(tiers: ["queue"])
        async let second = Migrator(connection: b, logger: .silent).migrate(tiers: ["queue"])
        let applied = try await [first, second]
        #expect(applied.flatMap { $0 }.sorted() == Migration.embedded.filter { $0.tier == "queue" }.map(\.version))
        let again = try await Migrator(connection: a, logger: .silent).migrate(tiers: ["queue"])
        #expect(again.isEmpty)
        #expect(try await Migrator(connection: a, logger: .silent).pending(tiers: ["queue"]).isEmpty)
        let count = try await a.query("SELECT count(*) FROM jobd.migrations")
        // Only the queue tier was migrated again (jobd.migrations was dropped with it).
        #expect(count.rows.first?.first == "\(Migration.embedded.filter { $0.tier == "queue" }.count)")
        await a.close()
        await b.close()
        await database.drop()
    }
}
