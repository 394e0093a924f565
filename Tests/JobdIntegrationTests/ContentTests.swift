import Foundation
import JobdCampaigns
import JobdCodec
@testable import JobdContent
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestRandom
import JobdTestSupport
import ServiceLifecycle
import Testing

@Suite("Content tier", .serialized)
struct ContentTests {
    static let csv = Array(String(repeating: "sku,description,qty,price\nGT-104,Garden trowel,2,12.50\n", count: 120).utf8)
    static let png: [UInt8] = {
        var generator = SplitMix64(seed: 7)
        return [0x89, 0x50, 0x4E, 0x47] + (0..<3_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }()

    static func attachment(_ name: String, _ type: String, _ data: [UInt8]) -> [String: Any] {
        ["filename": name, "content_type": type, "data_base64": Base64.encode(data)]
    }

    @Test("content.write stores metadata apart from compressed bodies and de-duplicated attachments")
    func writeStoresEverything() async throws {
        try await withContentWorld { world in
            let payload = ContentFixtures.message("m1", ["attachments": [
                Self.attachment("invoice.csv", "text/csv", Self.csv),
                Self.attachment("logo.png", "image/png", Self.png),
                Self.attachment("invoice-copy.csv", "text/csv", Self.csv),
            ]])
            try await world.write(payload)

            let meta = try await world.rows("""
                SELECT tenant_id, campaign_id, from_address, array_to_json(to_addresses)::text, subject,
                       headers->>'X-Campaign', attachment_count, index_text LIKE '%shovels, rakes & hoses%',
                       search_vector IS NULL, raw_bytes, stored_bytes
                  FROM content.messages WHERE external_id = 'm1'
                """)
            let html = try #require(payload["html"] as? String)
            let text = try #require(payload["text"] as? String)
            let rawTotal = html.utf8.count + text.utf8.count + 2 * Self.csv.count + Self.png.count
            #expect(meta.count == 1)
            #expect(Array(meta[0].prefix(9)) == [
                "acme", "spring-sale", "Acme Store <news@acme.example>", #"["Ann Lee <ann@example.com>","bob@example.org"]"#,
                "Spring sale: 20% off garden tools", "spring", "3", "t", "t",
            ])
            #expect(meta[0][9] == String(rawTotal))

            // Bodies: one row per part, codec and both sizes recorded, stored = the bytea.
            let bodies = try await world.rows("""
                SELECT b.part, b.codec, b.raw_bytes, b.stored_bytes = octet_length(b.data), b.tenant_id
                  FROM content.bodies b JOIN content.messages m ON m.id = b.message_id
                 WHERE m.external_id = 'm1' ORDER BY b.part
                """)
            #expect(bodies.map { $0[0] } == ["html", "text"])
            #expect(bodies[0][1] == "zlib" && bodies[0][2] == String(html.utf8.count) && bodies[0][3] == "t")
            #expect(bodies[1][1] == "zlib+html")  // the text part, deflated against the HTML
            #expect(bodies.allSatisfy { $0[4] == "acme" })
            #expect(try await world.int("SELECT stored_bytes FROM content.bodies WHERE part = 'html'") < html.utf8.count)

            // Attachments: three links, two blobs; the PNG does not shrink and is kept as is.
            let blobs = try await world.rows("SELECT sha256, codec, raw_bytes, stored_bytes FROM content.attachment_blobs ORDER BY raw_bytes")
            #expect(blobs.count == 2)
            #expect(blobs[0] == [ContentDigest.sha256Hex(Self.png), "identity", String(Self.png.count), String(Self.png.count)])
            #expect(blobs[1][0] == ContentDigest.sha256Hex(Self.csv) && blobs[1][1] == "zlib")
            #expect(Int(blobs[1][3] ?? "") ?? .max < Self.csv.count / 10)
            let links = try await world.rows("SELECT position, filename, content_type, sha256 FROM content.message_attachments ORDER BY position")
            #expect(links.map { $0[0] } == ["1", "2", "3"])
            #expect(links.map { $0[1] } == ["invoice.csv", "logo.png", "invoice-copy.csv"])
            #expect(links[0][3] == links[2][3])

            // Reading it back gives exactly what was written.
            let stored = try #require(try await world.store.message(externalID: "m1"))
            let expected = try ContentMessage.parse(JSONPayload.object(ContentFixtures.json(payload), kind: "test"))
            #expect(stored.message == expected)
            #expect(stored.archivedAt == nil)
            #expect(try await world.store.message(externalID: "nope") == nil)
        }
    }

    @Test("attachments are shared within a tenant, never across tenants")
    func dedupPerTenant() async throws {
        try await withContentWorld { world in
            let logo = Self.attachment("logo.png", "image/png", Self.png)
            try await world.write(ContentFixtures.message("a1", ["attachments": [logo]]))
            try await world.write(ContentFixtures.message("a2", ["attachments": [logo]]))
            try await world.write(ContentFixtures.message("g1", tenant: "globex", ["attachments": [logo]]))
            #expect(try await world.rows("SELECT tenant_id, count(*) FROM content.attachment_blobs GROUP BY 1 ORDER BY 1")
                == [["acme", "1"], ["globex", "1"]])
            #expect(try await world.int("SELECT count(*) FROM content.message_attachments") == 3)
            let stats = try await world.store.stats()
            #expect(stats.attachments == 3 && stats.distinctAttachments == 2)
            #expect(stats.attachmentRawBytes == 3 * Self.png.count && stats.attachmentStoredBytes == 2 * Self.png.count)
        }
    }

    @Test("the same write twice is a no-op; another message under the same external_id is refused")
    func idempotent() async throws {
        try await withContentWorld { world in
            let payload = ContentFixtures.message("dup", ["attachments": [Self.attachment("a.csv", "text/csv", Self.csv)]])
            try await world.write(payload)
            try await world.write(ContentFixtures.json(payload), attempt: 2)
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 1)
            #expect(try await world.int("SELECT count(*) FROM content.bodies") == 2)
            #expect(try await world.int("SELECT count(*) FROM content.message_attachments") == 1)

            var changed = payload
            changed["subject"] = "Something else"
            await #expect(throws: JobFailure.permanent(
                "external_id \"dup\" is already stored with different content", code: "external_id_conflict")) {
                try await world.write(changed)
            }
            #expect(try await world.rows("SELECT subject FROM content.messages") == [["Spring sale: 20% off garden tools"]])
        }
    }

    @Test("invalid payloads fail permanently, naming the field; nothing is written")
    func invalidPayloads() async throws {
        try await withContentWorld { world in
            let cases: [(String, String)] = [
                (#"{"external_id": "x"}"#, "content.write payload: tenant_id is required"),
                ("not json", "content.write payload is not valid JSON"),
                (ContentFixtures.json(ContentFixtures.message("x", ["to": ["nobody"]])), "content.write payload: to[0] is not an email address"),
                (ContentFixtures.json(ContentFixtures.message("x", ["attachments": [["filename": "a", "content_type": "text/plain", "data_base64": "%%%"]]])),
                 "content.write payload: attachments[0].data_base64 is not valid base64"),
            ]
            for (payload, message) in cases {
                do {
                    try await world.write(payload)
                    Issue.record("accepted \(payload)")
                } catch let failure as JobFailure {
                    #expect(failure.severity == .permanent)
                    #expect(failure.code == "payload_invalid")
                    #expect(failure.message.hasPrefix(message), "\(failure.message)")
                }
            }
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 0)
        }
    }

    @Test("search: batched indexing, ranking by subject over body, tenant filter, web-search syntax")
    func search() async throws {
        try await withContentWorld { world in
            try await world.write(ContentFixtures.message("refund-1", [
                "subject": "Your refund has been processed", "text": NSNull(),
                "html": "<p>We refunded <b>$42.00</b> to your card ending 4242.</p><style>.refund{}</style>",
            ]))
            try await world.write(ContentFixtures.message("digest-1", [
                "subject": "Weekly digest", "text": NSNull(),
                "html": "<table><tr><td>New arrivals</td><td>Read our refund policy</td></tr></table>"
                    + "<a href=\"https://track.example/zebra\">Shop</a>",
            ]))
            try await world.write(ContentFixtures.message("refund-2", tenant: "globex", ["subject": "Refund for order 77"]))
            try await world.write(ContentFixtures.message("reset-1", [
                "subject": "Reset your password", "html": NSNull(),
                "text": "Someone asked for a password reset. If it was you, follow the link.",
            ]))
            #expect(try await world.store.search("refund", tenant: nil, limit: 10).isEmpty)  // not indexed yet
            #expect(try await world.store.stats().unindexed == 4)

            #expect(try await world.indexer.runOnce() == 4)
            #expect(try await world.int("SELECT count(*) FROM content.messages WHERE index_text IS NULL AND search_vector IS NOT NULL") == 4)
            #expect(try await world.indexer.runOnce() == 0)

            let all = try await world.store.search("refund", tenant: nil, limit: 10)
            #expect(Set(all.map(\.externalID)) == ["refund-1", "digest-1", "refund-2"])
            #expect(all.last?.externalID == "digest-1")  // body-only mention ranks below subject matches
            #expect(all.allSatisfy { $0.rank > 0 })
            #expect(try await world.store.search("refund", tenant: "acme", limit: 10).map(\.externalID) == ["refund-1", "digest-1"])
            #expect(try await world.store.search("refund", tenant: nil, limit: 1).count == 1)
            #expect(try await world.store.search("refund -digest", tenant: "acme", limit: 10).map(\.externalID) == ["refund-1"])
            #expect(try await world.store.search("\"password reset\"", tenant: nil, limit: 10).map(\.externalID) == ["reset-1"])
            #expect(try await world.store.search("refunded", tenant: nil, limit: 10).map(\.externalID).contains("refund-1"))  // stemming
            // Markup is not text: attribute values and style rules are not indexed.
            #expect(try await world.store.search("zebra", tenant: nil, limit: 10).isEmpty)
            #expect(try await world.store.search("4242", tenant: nil, limit: 10).map(\.externalID) == ["refund-1"])
        }
    }

    @Test("the indexer fills N rows per statement and, as a service, keeps up with new writes")
    func indexerBatches() async throws {
        try await withContentWorld(settings: ContentSettings(indexBatch: 3, indexInterval: .milliseconds(50))) { world in
            for index in 0..<7 { try await world.write(ContentFixtures.message("b\(index)")) }
            #expect(try await world.indexer.runOnce() == 3)
            #expect(try await world.indexer.runOnce() == 3)
            #expect(try await world.indexer.runOnce() == 1)
            #expect(try await world.indexer.runOnce() == 0)

            let group = ServiceGroup(configuration: .init(services: [world.indexer], logger: .silent))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for index in 7..<15 { try await world.write(ContentFixtures.message("b\(index)")) }
                try await waitUntil(timeout: 10, "the indexer to catch up") {
                    try await world.int("SELECT count(*) FROM content.messages WHERE search_vector IS NULL") == 0
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await world.store.search("garden", tenant: nil, limit: 100).count == 15)
        }
    }

    @Test("group commit: concurrent jobs' messages each land exactly once, duplicates in flight included, and a retry is a no-op")
    func groupCommittedWrites() async throws {
        try await withContentWorld { world in
            // 40 distinct messages (sharing one attachment per tenant) plus a second
            // job for 10 of them, all at once: the writer batches whatever arrives
            // while a statement is in flight.
            let shared = Self.attachment("terms.csv", "text/csv", Self.csv)
            let payloads = (0..<40).map { index in
                ContentFixtures.json(ContentFixtures.message(
                    "g\(index)", tenant: index % 2 == 0 ? "acme" : "globex",
                    ["subject": "Order \(index) shipped", "attachments": [shared]]))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for payload in payloads + payloads.prefix(10) { group.addTask { try await world.write(payload) } }
                try await group.waitForAll()
            }
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 40)
            #expect(try await world.int("SELECT count(DISTINCT external_id) FROM content.messages") == 40)
            #expect(try await world.int("SELECT count(*) FROM content.bodies") == 80)
            #expect(try await world.int("SELECT count(*) FROM content.message_attachments") == 40)
            #expect(try await world.int("SELECT count(*) FROM content.attachment_blobs") == 2)  // one per tenant
            // Each message's children are its own (subject and tenant match the external_id).
            #expect(try await world.int("""
                SELECT count(*) FROM content.messages m JOIN content.message_attachments a ON a.message_id = m.id
                 WHERE a.tenant_id = m.tenant_id AND m.subject = 'Order ' || substr(m.external_id, 2) || ' shipped'
                """) == 40)
            for index in [0, 7, 39] {
                let stored = try #require(try await world.store.message(externalID: "g\(index)"))
                #expect(stored.message.subject == "Order \(index) shipped")
                #expect(stored.message.attachments.map(\.data) == [Self.csv])
            }
            // A retry of every job (attempt 2) changes nothing.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for payload in payloads { group.addTask { try await world.write(payload, attempt: 2) } }
                try await group.waitForAll()
            }
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 40)
            #expect(try await world.int("SELECT count(*) FROM content.bodies") == 80)
        }
    }

    @Test("one batch statement: outcomes in order; a message the server refuses fails alone; a repeated external_id goes in a later statement")
    func batchStatement() async throws {
        try await withContentWorld { world in
            let codec = ZlibCodec()
            func prepared(_ id: String, subject: String = "Hello") throws -> PreparedMessage {
                try PreparedMessage(ContentMessage(
                    externalID: id, tenantID: "acme", from: "a@acme.example", to: ["b@example.com", "c@example.com"],
                    subject: subject, text: "Body of \(id)",
                    attachments: [.init(filename: "a.csv", contentType: "text/csv", data: Self.csv)]), codec: codec)
            }
            let storedPayload = ContentFixtures.json(ContentFixtures.message("stored"))
            try await world.write(storedPayload)
            let storedAgain = try world.writer.prepare(storedPayload)
            // external_id longer than the table's CHECK allows: the server refuses it.
            let refused = try prepared(String(repeating: "x", count: 300))
            let batch = [try prepared("n1"), storedAgain, refused, try prepared("n2"), try prepared("n1"),
                         try prepared("n2", subject: "Other")]
            let outcomes = try await ContentWriteBatcher.write(batch, database: world.tier)
            #expect(outcomes.count == 6)
            guard case .success(.inserted) = outcomes[0] else { Issue.record("n1: \(outcomes[0])"); return }
            guard case .success(.duplicate) = outcomes[1] else { Issue.record("stored: \(outcomes[1])"); return }
            guard case .failure = outcomes[2] else { Issue.record("refused: \(outcomes[2])"); return }
            guard case .success(.inserted) = outcomes[3] else { Issue.record("n2: \(outcomes[3])"); return }
            guard case .success(.duplicate) = outcomes[4] else { Issue.record("n1 again: \(outcomes[4])"); return }
            guard case .success(.conflict) = outcomes[5] else { Issue.record("n2 changed: \(outcomes[5])"); return }
            #expect(try await world.rows("SELECT external_id FROM content.messages ORDER BY id") == [["stored"], ["n1"], ["n2"]])
            #expect(try await world.int("SELECT count(*) FROM content.message_attachments") == 2)
            #expect(try await world.int("SELECT count(*) FROM content.attachment_blobs") == 1)
            #expect(try await world.store.message(externalID: "n2")?.message.to == ["b@example.com", "c@example.com"])

            // Several messages in one statement, without the refused one.
            let many = try (0..<5).map { try prepared("m\($0)") }
            let written = try await world.store.write(batch: many)
            #expect(written.allSatisfy { if case .inserted = $0 { true } else { false } })
            #expect(try await world.store.write(batch: many) == Array(repeating: .duplicate, count: 5))
            #expect(try await world.int("SELECT count(*) FROM content.bodies WHERE message_id IN (SELECT id FROM content.messages WHERE external_id LIKE 'm%')") == 5)
        }
    }

    @Test("the lane is busy while a write runs and for its quiet period after, to the nanosecond on its clock")
    func laneQuietPeriod() async throws {
        let clock = ManualMonotonicClock()
        let lane = ContentLaneActivity(quietPeriod: .milliseconds(200), clock: clock)
        #expect(!lane.isBusy)
        await lane.counting {
            clock.advance(by: .seconds(5))
            #expect(lane.isBusy)
        }
        clock.advance(by: .milliseconds(200) - .nanoseconds(1))
        #expect(lane.isBusy)
        clock.advance(by: .nanoseconds(1))
        #expect(!lane.isBusy)
    }

    @Test("the indexer waits while the content.write lane is busy, catches up once it is quiet, and waits no longer than its max delay")
    func indexerMakesWay() async throws {
        let settings = ContentSettings(indexBatch: 4, indexInterval: .milliseconds(20), indexMaxDelay: .seconds(2))
        try await withContentWorld(settings: settings) { world in
            let lane = ContentLaneActivity(quietPeriod: .milliseconds(100))
            let indexer = ContentIndexer(database: world.tier, settings: settings, lane: lane, logger: .silent)
            let release = AsyncStream<Void>.makeStream()
            let unindexed = "SELECT count(*) FROM content.messages WHERE search_vector IS NULL"
            try await runningServices([indexer]) {
                // A job holds the lane busy.
                async let held: Void = lane.counting { for await _ in release.stream {} }
                try await Task.sleep(for: .milliseconds(50))
                #expect(lane.isBusy)
                for index in 0..<10 { try await world.write(ContentFixtures.message("w\(index)")) }
                try await Task.sleep(for: .milliseconds(600))
                #expect(try await world.int(unindexed) == 10)  // waited
                release.continuation.finish()
                await held
                try await waitUntil(timeout: 10, "the indexer to catch up after the burst") {
                    try await world.int(unindexed) == 0
                }
                #expect(try await world.store.search("garden", tenant: nil, limit: 100).count == 10)

                // A lane that never goes quiet: the wait ends at the max delay.
                let endless = AsyncStream<Void>.makeStream()
                async let busy: Void = lane.counting { for await _ in endless.stream {} }
                let written = ContinuousClock.now
                for index in 10..<20 { try await world.write(ContentFixtures.message("w\(index)")) }
                try await waitUntil(timeout: 15, "the indexer to stop waiting for a busy lane") {
                    try await world.int(unindexed) == 0
                }
                let lag = written.duration(to: .now)
                #expect(lane.isBusy)
                #expect(lag < .seconds(2) + .seconds(5), "\(lag)")
                endless.continuation.finish()
                await busy
            }
            #expect(try await world.store.search("garden", tenant: nil, limit: 100).count == 20)
        }
    }

    @Test("stats sums raw and stored bytes over the tables")
    func stats() async throws {
        try await withContentWorld { world in
            #expect(try await world.store.stats() == ContentStore.Stats(
                messages: 0, archived: 0, unindexed: 0, rawBytes: 0, storedBytes: 0, bodyRawBytes: 0, bodyStoredBytes: 0,
                attachments: 0, distinctAttachments: 0, attachmentRawBytes: 0, attachmentStoredBytes: 0))
            try await world.write(ContentFixtures.message("s1", ["attachments": [Self.attachment("a.csv", "text/csv", Self.csv)]]))
            try await world.write(ContentFixtures.message("s2", tenant: "globex"))
            let stats = try await world.store.stats()
            #expect(stats.messages == 2)
            #expect(stats.bodyRawBytes == (try await world.int("SELECT sum(raw_bytes) FROM content.bodies")))
            #expect(stats.bodyStoredBytes == (try await world.int("SELECT sum(octet_length(data)) FROM content.bodies")))
            #expect(stats.rawBytes == (try await world.int("SELECT sum(raw_bytes) FROM content.messages")))
            #expect(stats.storedBytes == stats.bodyStoredBytes + (try await world.int("SELECT sum(octet_length(data)) FROM content.attachment_blobs")))
            #expect(stats.storedBytes < stats.rawBytes)
            #expect(try await world.store.stats(tenant: "globex").messages == 1)
        }
    }

    @Test("retention: per-tenant archive, global purge, keep-forever override, orphaned blobs deleted, in batches")
    func retention() async throws {
        let settings = ContentSettings(retention: .seconds(3_600), retentionAction: .purge, purgeBatch: 2)
        try await withContentWorld(settings: settings) { world in
            let shared = Self.attachment("logo.png", "image/png", Self.png)
            let own = Self.attachment("list.csv", "text/csv", Self.csv)
            try await world.write(ContentFixtures.message("a-old", tenant: "a", ["subject": "Quarterly statement"]))
            try await world.write(ContentFixtures.message("a-new", tenant: "a"))
            try await world.write(ContentFixtures.message("b-old1", tenant: "b", ["attachments": [shared]]))
            try await world.write(ContentFixtures.message("b-old2", tenant: "b", ["attachments": [own]]))
            try await world.write(ContentFixtures.message("b-old3", tenant: "b"))
            try await world.write(ContentFixtures.message("b-new", tenant: "b", ["attachments": [shared]]))
            try await world.write(ContentFixtures.message("c-old", tenant: "c"))
            try await world.exec("""
                INSERT INTO content.tenant_retention (tenant_id, retain, action) VALUES
                    ('a', interval '1 day', 'archive'), ('c', NULL, 'purge')
                """)
            try await world.exec("UPDATE content.messages SET created_at = now() - interval '2 days' WHERE external_id IN ('a-old', 'b-old1', 'b-old2', 'b-old3')")
            try await world.exec("UPDATE content.messages SET created_at = now() - interval '400 days' WHERE external_id = 'c-old'")

            // With the global default off only tenant a's own rule applies.
            let off = ContentPurgeHandler(database: world.tier, settings: ContentSettings(purgeBatch: 2))
            #expect(try await off.run() == .init(purged: 0, archived: 1, blobsDeleted: 0))

            let job = ClaimedJob(id: 9, kind: "content.purge", payload: "{}", priority: .low, attempt: 1, maxAttempts: 3)
            try await world.purger.handle(job, context: JobContext(logger: world.logs.logger()))
            #expect(world.logs.messages("content retention applied").first?.metadata["purged"] == "3")
            #expect(try await world.purger.run() == .init(purged: 0, archived: 0, blobsDeleted: 0))

            #expect(try await world.rows("SELECT external_id, archived_at IS NOT NULL FROM content.messages ORDER BY external_id")
                == [["a-new", "f"], ["a-old", "t"], ["b-new", "f"], ["c-old", "f"]])
            #expect(try await world.int("SELECT count(*) FROM content.bodies b JOIN content.messages m ON m.id = b.message_id WHERE m.external_id = 'a-old'") == 0)
            // The CSV only b-old2 used is gone; the logo b-new still links stays.
            #expect(try await world.rows("SELECT tenant_id, sha256 FROM content.attachment_blobs") == [["b", ContentDigest.sha256Hex(Self.png)]])

            let archived = try #require(try await world.store.message(externalID: "a-old"))
            #expect(archived.archivedAt != nil && archived.message.text == nil && archived.message.html == nil)
            #expect(archived.message.subject == "Quarterly statement")
            try await world.indexer.runOnce()
            #expect(try await world.store.search("quarterly", tenant: nil, limit: 5).map(\.externalID) == ["a-old"])
            #expect(try await world.store.search("shovels", tenant: "a", limit: 5).map(\.externalID) == ["a-new"])

            let bad = ClaimedJob(id: 10, kind: "content.purge", payload: #"{"batch": 5}"#, priority: .low, attempt: 1, maxAttempts: 3)
            await #expect(throws: JobFailure.self) { try await world.purger.handle(bad, context: JobContext(logger: .silent)) }
        }
    }

    @Test("purge honours max_messages and a purged external_id can be written again")
    func purgeBound() async throws {
        try await withContentWorld(settings: ContentSettings(retention: .seconds(60), purgeBatch: 10)) { world in
            for index in 0..<5 { try await world.write(ContentFixtures.message("p\(index)")) }
            try await world.exec("UPDATE content.messages SET created_at = now() - interval '1 hour'")
            #expect(try await world.purger.run(maxMessages: 2).purged == 2)
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 3)
            #expect(try await world.purger.run().purged == 3)
            try await world.write(ContentFixtures.message("p0"))
            #expect(try await world.int("SELECT count(*) FROM content.messages") == 1)
        }
    }

    @Test("row-level security: a tenant role reads only its tenant, even after setting jobd.tenant_id")
    func tenantIsolation() async throws {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let tenantRole = "jobd_test_tenant_\(suffix)"
        let appRole = "jobd_test_app_\(suffix)"
        try await withContentWorld { world in
            let attachment = Self.attachment("a.csv", "text/csv", Self.csv)
            try await world.write(ContentFixtures.message("acme-1", tenant: "acme", ["attachments": [attachment]]))
            try await world.write(ContentFixtures.message("acme-2", tenant: "acme"))
            try await world.write(ContentFixtures.message("globex-1", tenant: "globex", ["attachments": [attachment]]))
            for role in [tenantRole, appRole] {
                try await world.exec("CREATE ROLE \(role) NOLOGIN")
                try await world.exec("GRANT USAGE ON SCHEMA content TO \(role)")
                try await world.exec("GRANT SELECT, INSERT ON content.messages, content.bodies, content.attachment_blobs, content.message_attachments TO \(role)")
            }
            try await world.exec("INSERT INTO content.tenant_roles (role_name, tenant_id) VALUES ($1, 'acme')", [tenantRole])

            func visible() async throws -> [[String?]] {
                try await world.rows("""
                    SELECT 'messages', tenant_id, count(*) FROM content.messages GROUP BY tenant_id
                    UNION ALL SELECT 'bodies', tenant_id, count(*) FROM content.bodies GROUP BY tenant_id
                    UNION ALL SELECT 'blobs', tenant_id, count(*) FROM content.attachment_blobs GROUP BY tenant_id
                    UNION ALL SELECT 'links', tenant_id, count(*) FROM content.message_attachments GROUP BY tenant_id
                    ORDER BY 1, 2
                    """)
            }
            let acmeOnly: [[String?]] = [["blobs", "acme", "1"], ["bodies", "acme", "4"], ["links", "acme", "1"], ["messages", "acme", "2"]]

            // The tenant role.
            try await world.exec("SET ROLE \(tenantRole)")
            #expect(try await visible() == acmeOnly)
            try await world.exec("SELECT set_config('jobd.tenant_id', 'globex', false)")
            #expect(try await visible() == acmeOnly)  // the mapping wins over the setting
            #expect(try await world.int("SELECT count(*) FROM content.messages WHERE external_id = 'globex-1'") == 0)
            #expect(try await world.int("SELECT count(*) FROM content.tenant_roles") == 1)
            await #expect {
                try await world.exec("""
                    INSERT INTO content.messages (external_id, tenant_id, from_address, to_addresses, subject, digest, raw_bytes, stored_bytes)
                    VALUES ('forged', 'globex', 'a@b.example', '{c@d.example}', 's', 'd', 0, 0)
                    """)
            } throws: { ($0 as? PostgresError)?.sqlState == "42501" }
            try await world.exec("RESET ROLE")
            try await world.exec("RESET jobd.tenant_id")

            // A shared application role sees the tenant its session names, and nothing otherwise.
            try await world.exec("SET ROLE \(appRole)")
            #expect(try await visible().isEmpty)
            #expect(try await world.int("SELECT count(*) FROM content.tenant_roles") == 0)
            try await world.exec("SELECT set_config('jobd.tenant_id', 'globex', false)")
            #expect(try await visible() == [["blobs", "globex", "1"], ["bodies", "globex", "2"], ["links", "globex", "1"], ["messages", "globex", "1"]])
            try await world.exec("RESET ROLE")
            try await world.exec("RESET jobd.tenant_id")

            // The daemon's own role (here the owner) sees every tenant.
            #expect(try await world.int("SELECT count(DISTINCT tenant_id) FROM content.messages") == 2)
        }
        let admin = PostgresConnection(conninfo: try TestEnvironment.databaseURL(), name: "roles", commandTimeout: 10, logger: .silent)
        try await admin.executeScript("DROP ROLE IF EXISTS \(tenantRole); DROP ROLE IF EXISTS \(appRole)")
        await admin.close()
    }

    @Test("row-level security by membership: a login inheriting a tenant's group role sees that tenant only, whatever jobd.tenant_id says")
    func tenantIsolationByMembership() async throws {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let group = "jobd_test_group_\(suffix)", login = "jobd_test_login_\(suffix)", nested = "jobd_test_nested_\(suffix)"
        try await withContentWorld { world in
            try await world.write(ContentFixtures.message("acme-1", tenant: "acme"))
            try await world.write(ContentFixtures.message("globex-1", tenant: "globex"))
            try await world.exec("CREATE ROLE \(group) NOLOGIN")
            try await world.exec("GRANT USAGE ON SCHEMA content TO \(group)")
            try await world.exec("GRANT SELECT ON content.messages, content.bodies TO \(group)")
            // A login in the group, and a login in a role that is in the group.
            try await world.exec("CREATE ROLE \(login) LOGIN IN ROLE \(group)")
            try await world.exec("CREATE ROLE \(nested)_mid NOLOGIN IN ROLE \(group)")
            try await world.exec("CREATE ROLE \(nested) LOGIN IN ROLE \(nested)_mid")
            try await world.exec("INSERT INTO content.tenant_roles (role_name, tenant_id) VALUES ($1, 'acme')", [group])
            for role in [login, nested] {
                try await world.exec("SET ROLE \(role)")
                #expect(try await world.rows("SELECT DISTINCT tenant_id FROM content.messages") == [["acme"]], "\(role)")
                #expect(try await world.rows("SELECT DISTINCT tenant_id FROM content.bodies") == [["acme"]], "\(role)")
                try await world.exec("SELECT set_config('jobd.tenant_id', 'globex', false)")
                #expect(try await world.rows("SELECT DISTINCT tenant_id FROM content.messages") == [["acme"]], "\(role): the mapping wins")
                #expect(try await world.int("SELECT count(*) FROM content.tenant_roles") == 1)
                try await world.exec("RESET ROLE")
                try await world.exec("RESET jobd.tenant_id")
            }
        }
        let admin = PostgresConnection(conninfo: try TestEnvironment.databaseURL(), name: "roles", commandTimeout: 10, logger: .silent)
        try await admin.executeScript("""
            DROP ROLE IF EXISTS \(login); DROP ROLE IF EXISTS \(nested); DROP ROLE IF EXISTS \(nested)_mid; DROP ROLE IF EXISTS \(group)
            """)
        await admin.close()
    }

    @Test("bytea survives the text protocol both ways, every byte value")
    func byteaRoundTrip() async throws {
        try await withContentWorld { world in
            let bytes = (0...255).map { UInt8($0) } + [0, 0, 0x5C, 0x78]
            let hex = PostgresBytea.encode(bytes)
            #expect(try await world.rows("SELECT length($1::bytea), $1::bytea", [hex]) == [[String(bytes.count), hex]])
            let array = PostgresArray.texts([hex, PostgresBytea.encode([])])
            let back = try await world.rows("SELECT unnest($1::bytea[])", [array]).map { PostgresBytea.decode($0[0] ?? "") }
            #expect(back == [bytes, []])
            #expect(PostgresBytea.decode("\\x0") == nil && PostgresBytea.decode("abc") == nil && PostgresBytea.decode("\\xzz") == nil)
        }
    }
}
