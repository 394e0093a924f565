import Foundation
import JobdCodec
import JobdContent
import JobdCore
import JobdQueue
import JobdTestSupport
import Testing

/// The shipped mail corpus (Tests/Fixtures/mail-corpus) through the real handler:
/// the product claims 70 % compression, so stored/raw must be at most 0.30.
@Suite("Content corpus", .serialized)
struct ContentCorpusTests {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            struct File: Decodable {
                var file: String
                var content_type: String
            }
            var file: String
            var tenant: String
            var campaign: String?
            var from: String
            var to: [String]
            var attachments: [File]?
        }
        var messages: [Entry]
    }

    /// The corpus as content.write payloads: subject from <title>, the text part
    /// derived from the HTML (as most ESPs generate it).
    static func payloads() throws -> [[String: Any]] {
        let directory = ContentFixtures.corpusDirectory
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("corpus.json")))
        return try manifest.messages.enumerated().map { index, entry in
            let html = try String(contentsOf: directory.appendingPathComponent(entry.file), encoding: .utf8)
            let title = try #require(html.range(of: "<title>").flatMap { open in
                html.range(of: "</title>", range: open.upperBound..<html.endIndex).map { html[open.upperBound..<$0.lowerBound] }
            })
            var payload: [String: Any] = [
                "external_id": "corpus-\(index + 1)", "tenant_id": entry.tenant, "from": entry.from, "to": entry.to,
                "subject": HTMLText.extract(String(title)), "html": html, "text": HTMLText.extract(html),
                "headers": ["X-Mailer": "corpus-fixture", "Message-ID": "<corpus-\(index + 1)@\(entry.tenant).example>"],
            ]
            if let campaign = entry.campaign {
                payload["campaign_id"] = campaign
                payload["headers"] = [
                    "X-Mailer": "corpus-fixture", "Message-ID": "<corpus-\(index + 1)@\(entry.tenant).example>",
                    "List-Unsubscribe": "<https://\(entry.tenant).example/unsubscribe?c=\(campaign)>",
                ]
            }
            payload["attachments"] = try (entry.attachments ?? []).map { file in
                [
                    "filename": URL(fileURLWithPath: file.file).lastPathComponent, "content_type": file.content_type,
                    "data_base64": try Data(contentsOf: directory.appendingPathComponent(file.file)).base64EncodedString(),
                ]
            }
            return payload
        }
    }

    @Test("stored/raw ≤ 0.30 over the corpus, every message reads back intact, search finds them")
    func corpus() async throws {
        let payloads = try Self.payloads()
        #expect(payloads.count >= 20)
        try await withContentWorld { world in
            let started = ContinuousClock.now
            for payload in payloads { try await world.write(payload) }
            let elapsed = ContinuousClock.now - started

            let stats = try await world.store.stats()
            #expect(stats.messages == payloads.count)
            let parts = try await world.rows("""
                SELECT part, sum(raw_bytes), sum(stored_bytes), string_agg(DISTINCT codec, ',' ORDER BY codec)
                  FROM content.bodies GROUP BY part ORDER BY part
                """)
            let html = (raw: Int(parts[0][1] ?? "") ?? 0, stored: Int(parts[0][2] ?? "") ?? 0)
            let text = (raw: Int(parts[1][1] ?? "") ?? 0, stored: Int(parts[1][2] ?? "") ?? 0)
            #expect(parts.map { $0[3] } == ["zlib", "zlib+html"])

            // What the text parts would cost deflated on their own, for the report.
            let codec = ZlibCodec()
            let alone = try payloads.reduce(0) { sum, payload in
                sum + (try codec.compress(Array((payload["text"] as? String ?? "").utf8)).count)
            }
            func ratio(_ stored: Int, _ raw: Int) -> String { String(format: "%.3f", Double(stored) / Double(raw)) }
            print("""
                content corpus: \(stats.messages) messages, raw \(stats.rawBytes) B, stored \(stats.storedBytes) B, \
                stored/raw \(ratio(stats.storedBytes, stats.rawBytes)) \
                (html \(ratio(html.stored, html.raw)), text against html \(ratio(text.stored, text.raw)) \
                [alone it would be \(ratio(alone, text.raw))], attachments \(ratio(stats.attachmentStoredBytes, stats.attachmentRawBytes)); \
                bodies without the html dictionary \(ratio(html.stored + alone, html.raw + text.raw))); \
                \(payloads.count) writes in \(elapsed)
                """)
            #expect(stats.ratio <= 0.30, "stored/raw is \(stats.ratio)")
            #expect(stats.attachments == 3)

            // Every message decompresses to exactly what was sent.
            for payload in payloads {
                let id = try #require(payload["external_id"] as? String)
                let stored = try #require(try await world.store.message(externalID: id))
                let expected = try ContentMessage.parse(JSONPayload.object(ContentFixtures.json(payload), kind: "test"))
                #expect(stored.message == expected, "\(id) did not read back intact")
            }

            #expect(try await world.indexer.runOnce() == payloads.count)
            func top(_ query: String, tenant: String? = nil) async throws -> String? {
                try await world.store.search(query, tenant: tenant, limit: 5).first?.externalID
            }
            #expect(try await top("Innsbruck cancellation") == "corpus-26")
            #expect(try await top("kveik") == "corpus-5")
            #expect(try await top("Nebbiolo wine dinner") == "corpus-14")
            #expect(try await top("\"reset your password\"") == "corpus-3")
            #expect(try await top("sourdough", tenant: "kettle-crumb") == "corpus-9")
            #expect(try await top("sourdough", tenant: "ledgerly") == nil)
            // Words that exist only in markup (CSS, URLs, attributes) are not indexed.
            #expect(try await top("mso-table-lspace") == nil)
            #expect(try await top("utm_campaign") == nil)
        }
    }
}
