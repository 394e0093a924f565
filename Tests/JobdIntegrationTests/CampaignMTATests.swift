import Foundation
import JobdCampaigns
import JobdCodec
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// A private Debian Postfix started by `scripts/mta` on a free loopback port,
/// delivering to Maildirs under its own temporary directory.
final class PostfixMTA: Sendable {
    let port: Int
    let directory: URL

    static let scriptPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/mta").path

    static var installed: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/postfix") }
    static var onCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether the test runs: Postfix is installed and we are root (its master must
    /// start as root). On CI it always runs, so a missing Postfix fails there.
    static var runnable: Bool {
        if onCI { return true }
        if !installed {
            FileHandle.standardError.write(Data(
                "\n*** SKIPPED: the real-MTA campaign test needs Debian's postfix (/usr/sbin/postfix is missing; run scripts/setup-deps) ***\n\n".utf8))
            return false
        }
        if geteuid() != 0 {
            FileHandle.standardError.write(Data(
                "\n*** SKIPPED: the real-MTA campaign test must run as root (Postfix's master starts as root) ***\n\n".utf8))
            return false
        }
        return true
    }

    private init(port: Int, directory: URL) {
        self.port = port
        self.directory = directory
    }

    /// Starts Postfix accepting mail for exactly `addresses`.
    static func start(addresses: [String]) throws -> PostfixMTA {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("jobd-mta-\(UUID().uuidString.prefix(8))")
        let output = try run(["start", directory.path] + addresses)
        guard let text = try? String(contentsOf: directory.appendingPathComponent("port"), encoding: .utf8),
              let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw TestFailure("scripts/mta did not start Postfix: \(output)")
        }
        return PostfixMTA(port: port, directory: directory)
    }

    func stop() {
        _ = try? Self.run(["stop", directory.path])
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every message delivered so far, parsed by Python's `email` package (an
    /// independent MIME parser), grouped by mailbox (`user@domain`).
    func mailboxes() throws -> [String: [DeliveredMail]] {
        let script = #"""
import email, email.policy, hashlib, json, os, sys
base = sys.argv[1]
out = {}
for domain in sorted(os.listdir(base)):
    for user in sorted(os.listdir(os.path.join(base, domain))):
        new = os.path.join(base, domain, user, "new")
        if not os.path.isdir(new):
            continue
        box = out.setdefault(user + "@" + domain, [])
        for name in sorted(os.listdir(new)):
            raw = open(os.path.join(new, name), "rb").read()
            message = email.message_from_bytes(raw, policy=email.policy.default)
            parts = []
            for part in message.walk():
                if part.is_multipart():
                    continue
                data = part.get_payload(decode=True) or b""
                parts.append({"type": part.get_content_type(), "charset": part.get_content_charset() or "",
                              "content": part.get_content() if part.get_content_maintype() == "text" else "",
                              "filename": part.get_filename() or "", "disposition": part.get_content_disposition() or "",
                              "sha256": hashlib.sha256(data).hexdigest()})
            box.append({"headers": {k.lower(): str(v) for k, v in message.items()},
                        "header_count": {k.lower(): len(message.get_all(k)) for k in message.keys()},
                        "content_type": message.get_content_type(),
                        "raw": raw.decode("utf-8", "replace"), "parts": parts})
print(json.dumps(out))
"""#
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, directory.appendingPathComponent("mail").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("reading the Maildirs failed") }
        return try JSONDecoder().decode([String: [DeliveredMail]].self, from: data)
    }

    var log: String { (try? String(contentsOf: directory.appendingPathComponent("maillog"), encoding: .utf8)) ?? "" }

    @discardableResult
    private static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [scriptPath] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

struct DeliveredMail: Decodable {
    struct Part: Decodable {
        var type: String
        var charset: String
        var content: String
        var filename: String
        var disposition: String
        /// SHA-256 (hex) of the decoded bytes.
        var sha256: String
    }

    var headers: [String: String]
    var headerCount: [String: Int]
    var contentType: String
    var raw: String
    var parts: [Part]

    enum CodingKeys: String, CodingKey {
        case headers, raw, parts
        case headerCount = "header_count"
        case contentType = "content_type"
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("Campaigns through a real MTA", .serialized)
struct CampaignMTATests {
    @Test("a campaign delivered through Postfix: one message per subscribed recipient in its Maildir, headers and parts as sent",
          .enabled(if: PostfixMTA.runnable, "SKIPPED: Debian's postfix is not installed or we are not root"))
    func throughPostfix() async throws {
        // Five contacts on the list, one unsubscribed; one more whose mailbox Postfix
        // does not know (its 550 makes a bounce).
        let subscribed = ["ann@example.test", "bob@example.test", "cy@example.test", "dee@example.test"]
        let unsubscribed = "eve@example.test"
        let unknown = "nobody@example.test"
        let mta = try PostfixMTA.start(addresses: subscribed + [unsubscribed])
        defer { mta.stop() }
        try await withWorld { world in
            let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('acme') RETURNING id")!
            let account = try await world.scalar("""
                INSERT INTO oltp.email_accounts (workspace_id, name, from_address, from_name, relay_url, starttls, unsubscribe_url)
                VALUES ($1, 'news', 'news@acme.test', 'Acme News', $2, 'off', 'https://acme.test/unsubscribe') RETURNING id
                """, [workspace, "smtp://127.0.0.1:\(mta.port)"])!
            let list = try await world.scalar(
                "INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
            let addresses = subscribed + [unsubscribed, unknown]
            try await world.exec("""
                INSERT INTO oltp.contacts (workspace_id, address, name, fields, status)
                SELECT $1, a, initcap(split_part(a, '@', 1)) || ' <&' || i || '>', jsonb_build_object('city', 'City' || i),
                       CASE WHEN a = $3 THEN 'unsubscribed' ELSE 'subscribed' END
                  FROM unnest($2::text[]) WITH ORDINALITY AS t(a, i)
                """, [workspace, PostgresArray.texts(addresses.map { Optional($0) }), unsubscribed])
            try await world.exec("""
                INSERT INTO oltp.list_members (list_id, contact_id, workspace_id)
                SELECT $1, id, $2 FROM oltp.contacts WHERE workspace_id = $2
                """, [list, workspace])
            let id = try await world.scalar("""
                INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, html_template, text_template, batch_size)
                VALUES ($1, 'launch', $2, $3, 'Hello {{name}}, news for {{city}}',
                        '<p>Hi {{name}} from {{city}}</p><a href="{{unsubscribe_url}}">unsubscribe</a>',
                        'Hi {{name}} ({{email}}) from {{city}}', 2)
                RETURNING id
                """, [workspace, account, list])!
            // Two attachments: a binary one with an ASCII name, a text one with a non-ASCII name.
            let pdf = attachmentBytes(150_000, seed: 5)
            let csv = Array("name,city\r\nAnn,Zürich\r\n".utf8)
            try await world.exec("""
                INSERT INTO oltp.campaign_attachments (campaign_id, workspace_id, position, filename, content_type, data)
                VALUES ($1, $2, 1, 'price list.pdf', 'application/pdf', $3::bytea),
                       ($1, $2, 2, 'Städte – 2026.csv', 'text/csv', $4::bytea)
                """, [id, workspace, PostgresBytea.encode(pdf), PostgresBytea.encode(csv)])

            var settings = CampaignSettings()
            settings.pageSize = 4
            settings.deferBase = .milliseconds(200)
            settings.concurrency = 2
            settings.timeout = .seconds(10)
            let oltp = TierDatabase(tier: .oltp, size: 2, logger: .silent) { world.database.connection("oltp\($0)") }
            let content = TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("content") }
            let handlers: [any JobHandler] = [
                CampaignPrepareHandler(oltp: oltp, content: content, settings: settings),
                CampaignDeliverHandler(oltp: oltp, content: content, settings: settings),
            ]
            let relay = OutboxRelay(
                oltp: world.database.connection("relay-oltp"), queue: world.database.connection("relay-queue"),
                interval: .milliseconds(100), logger: .silent)
            let relayTask = Task { try await relay.run() }
            defer { relayTask.cancel() }
            try await world.running([world.makeDaemon(world.configuration(), handlers: handlers)]) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [id])
                try await waitUntil(timeout: 60, "the campaign is sent") {
                    try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [id]) == "sent"
                }
            }
            // The relay accepted four messages; Postfix delivers them to the Maildirs
            // shortly after (its queue manager runs on its own).
            var boxes: [String: [DeliveredMail]] = [:]
            try await waitUntil(timeout: 30, "Postfix delivers four messages") {
                boxes = try mta.mailboxes()
                return boxes.values.map(\.count).reduce(0, +) >= 4
            }
            try await Task.sleep(for: .milliseconds(500)) // anything extra would show up by now
            boxes = try mta.mailboxes()

            #expect(boxes.keys.sorted() == subscribed, "mailboxes with mail: \(boxes.keys.sorted())\n\(mta.log)")
            for (index, address) in subscribed.enumerated() {
                let mails = boxes[address] ?? []
                #expect(mails.count == 1, "\(address) received \(mails.count) messages")
                guard let mail = mails.first else { continue }
                let number = index + 1
                let name = address.split(separator: "@")[0].capitalized + " <&\(number)>"
                let h = mail.headers
                #expect(h["from"] == "Acme News <news@acme.test>")
                #expect(h["to"] == address || h["to"] == "<\(address)>", "To: \(h["to"] ?? "-")")
                #expect(h["subject"] == "Hello \(name), news for City\(number)")
                #expect(h["date"].map { $0.range(of: #"^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"#, options: .regularExpression) != nil } == true,
                        "Date: \(h["date"] ?? "-")")
                let contactID = try await world.scalar("SELECT id FROM oltp.contacts WHERE address = $1", [address])!
                #expect(h["message-id"]?.hasPrefix("<c\(id).r\(contactID).") == true, "Message-ID: \(h["message-id"] ?? "-")")
                #expect(h["message-id"]?.hasSuffix("@acme.test>") == true)
                #expect(h["list-unsubscribe-post"] == "List-Unsubscribe=One-Click")
                let unsubscribe = h["list-unsubscribe"] ?? ""
                #expect(unsubscribe.hasPrefix("<https://acme.test/unsubscribe?token=\(contactID).\(id)."), "\(unsubscribe)")
                #expect(unsubscribe.contains(", <mailto:news@acme.test?subject=unsubscribe%20"))
                // Postfix added its own trace headers and did not add a second of ours.
                #expect(h["delivered-to"] == address)
                #expect(h["received"]?.contains("by mta.jobd.test (Postfix)") == true)
                for header in ["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"] {
                    #expect(mail.headerCount[header] == 1, "\(header) appears \(mail.headerCount[header] ?? 0) times")
                }
                // The body, then the attachments as stored, read from the content tier.
                #expect(mail.contentType == "multipart/mixed")
                #expect(mail.parts.map(\.type) == ["text/plain", "text/html", "application/pdf", "text/csv"])
                #expect(mail.parts.prefix(2).allSatisfy { $0.charset == "utf-8" && $0.disposition == "" })
                #expect(mail.parts.dropFirst(2).map(\.disposition) == ["attachment", "attachment"])
                #expect(mail.parts.dropFirst(2).map(\.filename) == ["price list.pdf", "Städte – 2026.csv"])
                #expect(mail.parts.dropFirst(2).map(\.sha256) == [ContentDigest.sha256Hex(pdf), ContentDigest.sha256Hex(csv)],
                        "attachment bytes differ from the stored ones")
                let text = mail.parts.first { $0.type == "text/plain" }?.content ?? ""
                let html = mail.parts.first { $0.type == "text/html" }?.content ?? ""
                #expect(text.contains("Hi \(name) (\(address)) from City\(number)"), "\(text)")
                let escaped = name.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                    .replacingOccurrences(of: ">", with: "&gt;")
                #expect(html.contains("<p>Hi \(escaped) from City\(number)</p>"), "\(html)")
                #expect(!html.contains("<&"), "unescaped merge value in HTML: \(html)")
                // The unsubscribe link in the HTML is the header's URL, and it works.
                let token = String(unsubscribe.dropFirst("<https://acme.test/unsubscribe?token=".count).prefix { $0 != ">" })
                #expect(html.contains("href=\"https://acme.test/unsubscribe?token=\(token)\""))
                if index == 0 {
                    #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [token]) == "t")
                    #expect(try await world.scalar("SELECT status FROM oltp.contacts WHERE address = $1", [address]) == "unsubscribed")
                }
            }
            // Postfix's 550 for the unknown mailbox made a bounce; the unsubscribed
            // contact was never offered to the MTA.
            #expect(try await world.scalar("SELECT status FROM oltp.contacts WHERE address = $1", [unknown]) == "bounced")
            #expect(try await world.scalar("""
                SELECT d.last_code FROM oltp.deliveries d JOIN oltp.contacts k ON k.id = d.contact_id WHERE k.address = $1
                """, [unknown]) == "550")
            #expect(!mta.log.contains("to=<\(unsubscribed)>"), "the unsubscribed contact reached the MTA")
            let status = try #require(try await CampaignStatus.load(world.sql, id: Int64(id)!))
            #expect(status.recipients == 6)
            #expect(status.delivered == 4)
            #expect(status.bounced == 1)
            #expect(status.suppressed == 1)
            await oltp.close()
            await content.close()
        }
    }
}
