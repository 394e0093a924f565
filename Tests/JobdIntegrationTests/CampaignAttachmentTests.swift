import Foundation
import JobdCampaigns
import JobdCodec
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import PropertyBased
import Synchronization
import Testing

/// A message as Python's `email` package (an independent MIME parser) reads it.
struct ParsedMIME: Decodable {
    struct Part: Decodable {
        var type: String
        /// "attachment", "inline" or "" (none).
        var disposition: String
        var filename: String
        /// Text parts decoded to text; "" for others.
        var text: String
        /// SHA-256 (hex) of the decoded bytes.
        var sha256: String
        var size: Int
        var defects: [String]
    }

    /// Content types of every entity in walk order, multiparts included.
    var tree: [String]
    var contentType: String
    var defects: [String]
    var parts: [Part]

    enum CodingKeys: String, CodingKey {
        case tree, defects, parts
        case contentType = "content_type"
    }

    /// The Python that reads one message (stdin or a file) and prints `ParsedMIME` JSON.
    static let script = #"""
import email, email.policy, hashlib, json, sys

def parse(raw):
    message = email.message_from_bytes(raw, policy=email.policy.default)
    tree, parts = [], []
    for part in message.walk():
        tree.append(part.get_content_type())
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        parts.append({"type": part.get_content_type(), "disposition": part.get_content_disposition() or "",
                      "filename": part.get_filename() or "",
                      "text": part.get_content() if part.get_content_maintype() == "text" and not part.get_filename() else "",
                      "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                      "defects": [type(d).__name__ for d in part.defects]})
    return {"tree": tree, "content_type": message.get_content_type(),
            "defects": [type(d).__name__ for d in message.defects], "parts": parts}
"""#

    static func parse(_ raw: [UInt8]) throws -> ParsedMIME {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script + "\nprint(json.dumps(parse(sys.stdin.buffer.read())))"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // Written from another thread: a large message fills the pipe before Python has read it all.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(raw))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("python could not parse the message") }
        return try JSONDecoder().decode(ParsedMIME.self, from: data)
    }
}

/// Bytes that exercise base64: every byte value, then a pseudo-random tail.
func attachmentBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { index in
        if index < 256 { return UInt8(index) }
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

@Suite("Campaign attachments", .serialized)
struct CampaignAttachmentTests {
    let template = CampaignTemplate(
        campaignID: 7, fromAddress: "news@acme.test", fromName: "Acme", subject: "Hi {{name}}",
        html: "<p>Hi {{name}}</p>", text: "Hi {{name}}", unsubscribeURL: "https://acme.test/u")
    let recipient = CampaignRecipient(
        contactID: 42, address: "ada@example.org", name: "Ada", fields: [:], unsubscribeToken: "42.7.abc")

    @Test("multipart/mixed around the alternative body; filenames ASCII, quoted and RFC 2231; bytes as stored")
    func mimeStructure() throws {
        let files: [(String, String, [UInt8])] = [
            ("report Q1.pdf", "application/pdf", attachmentBytes(70_001, seed: 1)),
            ("Übersicht – 2026 €.csv", "text/csv", Array("a,b\r\n1,2\r\n".utf8)),
            ("say \"hi\"; now.txt", "text/plain", attachmentBytes(3, seed: 2)),
            // Values the door refuses, rendered safely all the same.
            ("x\r\nBcc: victim@example.org", "text/html\r\nBcc: victim@example.org", attachmentBytes(100, seed: 3)),
        ]
        let attachments = files.map { CampaignAttachment(filename: $0.0, contentType: $0.1, data: $0.2) }
        let message = CampaignMail.render(template, for: recipient, date: 0, attachments: attachments)
        let lines = message.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 998 })
        #expect(!lines.contains { $0.hasPrefix("Bcc:") }, "a filename or content type injected a header")
        // Every base64 line of the attachments is at most 76 characters.
        let bodyLines = lines.filter { !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || "+/=".contains($0) } }
        #expect(bodyLines.count > 900)
        #expect(bodyLines.allSatisfy { $0.count <= 76 })

        let parsed = try ParsedMIME.parse(Array(message.utf8))
        #expect(parsed.defects.isEmpty && parsed.parts.allSatisfy(\.defects.isEmpty), "\(parsed)")
        #expect(parsed.contentType == "multipart/mixed")
        #expect(parsed.tree == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                                "application/pdf", "text/csv", "text/plain", "application/octet-stream"])
        #expect(parsed.parts[0].text == "Hi Ada" && parsed.parts[0].disposition == "")
        #expect(parsed.parts[1].text == "<p>Hi Ada</p>")
        for (index, file) in files.enumerated() {
            let part = parsed.parts[2 + index]
            #expect(part.disposition == "attachment")
            #expect(part.filename == file.0, "filename \(part.filename.debugDescription)")
            #expect(part.size == file.2.count)
            #expect(part.sha256 == ContentDigest.sha256Hex(file.2), "\(file.0): decoded bytes differ")
        }
        // ASCII names go quoted; any other name (non-ASCII, quotes, controls) as RFC 2231.
        #expect(lines.contains(" filename=\"report Q1.pdf\""))
        #expect(lines.contains(" filename*=utf-8''%C3%9Cbersicht%20%E2%80%93%202026%20%E2%82%AC.csv"))

        // Without attachments the message is the alternative alone, as before.
        let plain = CampaignMail.render(template, for: recipient, date: 0)
        #expect(try ParsedMIME.parse(Array(plain.utf8)).tree == ["multipart/alternative", "text/plain", "text/html"])
    }

    @Test("the door: count, size, total, filename and content type bounded by named checks; only a draft changes")
    func door() async throws {
        try await withWorld { world in
            let (workspace, campaign) = try await seedAttachmentCampaign(world, relayPort: 1)
            func insert(_ position: Int, _ filename: String, _ type: String = "application/pdf", size: Int = 10) async throws {
                try await world.exec("""
                    INSERT INTO oltp.campaign_attachments (campaign_id, workspace_id, position, filename, content_type, data)
                    VALUES ($1, $2, $3, $4, $5, decode(repeat('ab', $6), 'hex'))
                    """, [campaign, workspace, String(position), filename, type, String(size)])
            }
            func refused(_ what: String, _ position: Int, _ filename: String, _ type: String = "application/pdf", size: Int = 10,
                         saying expected: String) async {
                do {
                    try await insert(position, filename, type, size: size)
                    Issue.record("\(what) was accepted")
                } catch let error as PostgresError {
                    #expect(error.message.contains(expected), "\(what): \(error.message)")
                } catch {
                    Issue.record("\(what): \(error)")
                }
            }
            try await insert(1, "Prix 2026 – été.pdf")
            let badNames = [
                "", ".", "..", "  ", "a\r\nBcc: x@y", "a\nb", "a\u{1}b", "a\u{7F}", "a\u{85}b", "../passwd", "a\\b",
                "invoice\u{202E}fdp.exe", "a\u{2028}b", "b\u{2066}", String(repeating: "é", count: 128),
            ]
            for name in badNames {
                await refused("filename \(name.debugDescription)", 2, name, saying: "campaign_attachments_filename_check")
            }
            for type in ["text/html\r\nBcc: x@y", "text", "text/html; charset=utf-8", "/pdf", "application/", "a/b/c",
                         " a/b", "a/" + String(repeating: "b", count: 128), "ap plication/pdf", "té/xt"] {
                await refused("content type \(type.debugDescription)", 2, "a.pdf", type, saying: "campaign_attachments_content_type_check")
            }
            await refused("an empty file", 2, "a.pdf", size: 0, saying: "campaign_attachments_size_check")
            await refused("5,000,001 bytes", 2, "a.pdf", size: 5_000_001, saying: "campaign_attachments_size_check")
            await refused("position 0", 0, "a.pdf", saying: "campaign_attachments_position_check")
            await refused("an eleventh attachment", 11, "a.pdf", saying: "campaign_attachments_position_check")
            try await insert(2, "big.bin", size: 5_000_000)
            await refused("8,000,010 bytes in all", 3, "more.bin", size: 3_000_000, saying: "at most 7000000 in all")
            // Growing a row is counted the same way.
            do {
                try await world.exec("""
                    UPDATE oltp.campaign_attachments SET data = decode(repeat('ab', 2000001), 'hex')
                     WHERE campaign_id = $1 AND position = 1
                    """, [campaign])
                Issue.record("an update past the total was accepted")
            } catch let error as PostgresError {
                #expect(error.message.contains("at most 7000000 in all"), "\(error.message)")
            }
            // Exactly 7,000,000 in all fits.
            try await insert(3, "fits.bin", size: 1_999_990)
            #expect(try await world.int("SELECT count(*) FROM oltp.campaign_attachments") == 3)
            // Another workspace's campaign cannot take it.
            let other = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('other') RETURNING id")!
            await #expect(throws: PostgresError.self) {
                try await world.exec("""
                    INSERT INTO oltp.campaign_attachments (campaign_id, workspace_id, position, filename, content_type, data)
                    VALUES ($1, $2, 4, 'a.pdf', 'application/pdf', '\\x00')
                    """, [campaign, other])
            }
            // Once scheduled, the attachments are fixed.
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled', send_at = now() + interval '1 day' WHERE id = $1", [campaign])
            await refused("an insert after scheduling", 4, "late.pdf", saying: "only a draft can change its attachments")
            for statement in ["DELETE FROM oltp.campaign_attachments WHERE campaign_id = $1",
                              "UPDATE oltp.campaign_attachments SET filename = 'x.pdf' WHERE campaign_id = $1"] {
                do {
                    try await world.exec(statement, [campaign])
                    Issue.record("\(statement) was accepted after scheduling")
                } catch let error as PostgresError {
                    #expect(error.message.contains("only a draft can change its attachments"), "\(error.message)")
                }
            }
            // A campaign deleted with its attachments (the cascade) is not refused.
            try await world.exec("UPDATE oltp.campaigns SET status = 'cancelled' WHERE id = $1", [campaign])
            try await world.exec("DELETE FROM oltp.outbox")
            try await world.exec("DELETE FROM oltp.campaigns WHERE id = $1", [campaign])
            #expect(try await world.int("SELECT count(*) FROM oltp.campaign_attachments") == 0)
        }
    }

    @Test("property: a filename with any forbidden character is refused; other Unicode names are stored as given")
    func filenameProperty() async throws {
        try await withWorld { world in
            let (workspace, campaign) = try await seedAttachmentCampaign(world, relayPort: 1)
            let forbidden: [Character] = ["\u{1}", "\u{9}", "\n", "\r", "\r\n", "\u{1F}", "\u{7F}", "\u{80}", "\u{85}", "\u{9F}",
                                          "/", "\\", "\u{2028}", "\u{2029}", "\u{202A}", "\u{202E}", "\u{2066}", "\u{2069}"]
            let findings = Mutex<[String]>([])
            let cases = Mutex(0)
            await propertyCheck(
                count: 60,
                input: Gen.oneOf(
                    Gen.character(in: "\u{20}"..."\u{7E}"), Gen.character(in: "\u{A0}"..."\u{2000}"),
                    Gen.character(in: "\u{3000}"..."\u{D7FF}"), Gen.character(in: "\u{1F300}"..."\u{1F5FF}")
                ).string(of: 1...60),
                Gen<Character?>.element(of: forbidden).map { $0 ?? "/" }, Gen.int(in: 0...60), Gen.bool
            ) { base, bad, at, poison in
                cases.withLock { $0 += 1 }
                // By scalar: a backslash followed by a combining mark is one Character.
                var name = String(String.UnicodeScalarView(base.unicodeScalars.filter { !["/", "\\", "\u{7F}"].contains($0) }))
                if name.allSatisfy({ $0 == " " || $0 == "." }) { name += "x" }
                if poison {
                    let index = name.index(name.startIndex, offsetBy: min(at, name.count))
                    name.insert(bad, at: index)
                }
                do {
                    try await world.exec("DELETE FROM oltp.campaign_attachments")
                    try await world.exec("""
                        INSERT INTO oltp.campaign_attachments (campaign_id, workspace_id, position, filename, content_type, data)
                        VALUES ($1, $2, 1, $3, 'application/octet-stream', '\\x01')
                        """, [campaign, workspace, name])
                    if poison {
                        findings.withLock { $0.append("accepted \(name.debugDescription)") }
                    } else if try await world.scalar("SELECT filename FROM oltp.campaign_attachments") != name {
                        findings.withLock { $0.append("stored \(name.debugDescription) differently") }
                    }
                } catch let error as PostgresError {
                    if !poison || !error.message.contains("campaign_attachments_filename_check") {
                        findings.withLock { $0.append("\(name.debugDescription): \(error.message)") }
                    }
                } catch {
                    findings.withLock { $0.append("\(name.debugDescription): \(error)") }
                }
            }
            #expect(cases.withLock { $0 } == 60)
            #expect(findings.withLock { $0 }.isEmpty, "\(findings.withLock { $0 })")
        }
    }

    @Test("a campaign whose stored attachments are gone is paused with a reason, and nothing is sent without them")
    func missingAttachments() async throws {
        try await withWorld { world in
            let (workspace, campaign) = try await seedAttachmentCampaign(world, relayPort: 1)
            try await world.exec("""
                INSERT INTO oltp.campaign_attachments (campaign_id, workspace_id, position, filename, content_type, data)
                VALUES ($1, $2, 1, 'terms.pdf', 'application/pdf', '\\x255044462d')
                """, [campaign, workspace])
            var settings = CampaignSettings()
            settings.pageSize = 10
            settings.pauseRecheck = 0.2
            settings.timeout = 5
            let oltp = TierDatabase(tier: .oltp, size: 2, logger: .silent) { world.database.connection("oltp\($0)") }
            let content = TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("content") }
            let prepare = CampaignPrepareHandler(oltp: oltp, content: content, settings: settings)
            let deliver = CampaignDeliverHandler(oltp: oltp, content: content, settings: settings)
            let context = JobContext(logger: .silent)
            let prepareJob = ClaimedJob(
                id: 1, kind: prepare.kind, payload: "{\"campaign_id\": \(campaign)}", priority: .normal, attempt: 1, maxAttempts: 5)
            let ref = "oltp-campaign:\(campaign)"
            let storedAttachments = """
                SELECT count(*) FROM content.message_attachments a JOIN content.messages m ON m.id = a.message_id
                 WHERE m.external_id = $1 AND a.filename = 'terms.pdf'
                """
            // The preparation stores the content with its attachment and fans the list out.
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [campaign])
            try await prepare.handle(prepareJob, context: context)
            #expect(try await world.scalar("SELECT status || ' ' || fanout_done FROM oltp.campaigns WHERE id = $1", [campaign]) == "sending true")
            #expect(try await world.int(storedAttachments, [ref]) == 1)
            let batch = try #require(try await world.scalar(
                "SELECT payload::text FROM oltp.outbox WHERE kind = 'campaign.deliver'"))

            // Retention purges the stored message; then the batch runs.
            try await world.exec("DELETE FROM content.messages WHERE external_id = $1", [ref])
            do {
                try await deliver.handle(
                    ClaimedJob(id: 2, kind: deliver.kind, payload: batch, priority: .normal, attempt: 1, maxAttempts: 5),
                    context: context)
                Issue.record("the batch ran without its attachment")
            } catch let snooze as JobSnooze {
                #expect(snooze.code == "campaign_paused")
            }
            #expect(try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [campaign]) == "paused")
            let reason = try await world.scalar("SELECT pause_reason FROM oltp.campaigns WHERE id = $1", [campaign]) ?? ""
            #expect(reason == "not sent: its 1 attachment(s) are missing from the content tier (\(ref) holds 0)", "\(reason)")
            #expect(try await world.int("""
                SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND (state <> 'pending' OR tries > 0)
                """, [campaign]) == 0, "a recipient was tried without the attachment")
            #expect(try await world.int("SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1", [campaign]) == 3)

            // Resuming prepares again, which stores the content again from the campaign.
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [campaign])
            try await prepare.handle(prepareJob, context: context)
            #expect(try await world.int(storedAttachments, [ref]) == 1)
            #expect(try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [campaign]) == "sending")
            await oltp.close()
            await content.close()
        }
    }
}

/// One workspace, an account relaying to `relayPort`, three subscribed contacts on a
/// list, and a draft campaign: (workspace, campaign) ids.
func seedAttachmentCampaign(_ world: QueueWorld, relayPort: Int) async throws -> (String, String) {
    let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('acme') RETURNING id")!
    let account = try await world.scalar("""
        INSERT INTO oltp.email_accounts (workspace_id, name, from_address, from_name, relay_url, starttls, unsubscribe_url)
        VALUES ($1, 'news', 'news@acme.test', 'Acme News', $2, 'off', 'https://acme.test/unsubscribe') RETURNING id
        """, [workspace, "smtp://127.0.0.1:\(relayPort)"])!
    let list = try await world.scalar("INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
    try await world.exec("""
        INSERT INTO oltp.contacts (workspace_id, address, name)
        SELECT $1, 'user' || i || '@example.test', 'User ' || i FROM generate_series(1, 3) i
        """, [workspace])
    try await world.exec("""
        INSERT INTO oltp.list_members (list_id, contact_id, workspace_id) SELECT $1, id, $2 FROM oltp.contacts WHERE workspace_id = $2
        """, [list, workspace])
    let campaign = try await world.scalar("""
        INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, html_template, text_template)
        VALUES ($1, 'launch', $2, $3, 'Hello', '<p>Hi {{name}}</p>', 'Hi {{name}}') RETURNING id
        """, [workspace, account, list])!
    return (workspace, campaign)
}
