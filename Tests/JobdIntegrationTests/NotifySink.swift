import Foundation
import JobdTestSupport

/// One HTTP request the sink received.
struct SinkRequest: Decodable, Sendable {
    var path: String
    var query: String
    var headers: [String: String]
    var body: String
    var receivedAt: Double
    /// The signature recomputed by the sink (Python's hmac) from the secret it was given.
    var signatureExpected: String?
    /// Whether the signature sent matches `signatureExpected` (compared by the sink).
    var signatureValid: Bool?

    enum CodingKeys: String, CodingKey {
        case path, query, headers, body
        case receivedAt = "received_at"
        case signatureExpected = "signature_expected"
        case signatureValid = "signature_valid"
    }
}

/// One SMTP command the sink received, recorded as it arrived.
struct SinkSMTPCommand: Decodable, Sendable {
    /// Numbers the connections.
    var session: Int
    var verb: String
}

/// The commands of one SMTP connection, in order.
struct SinkSMTPSession: Sendable {
    var commands: [String]
    var authSeen: Bool { commands.contains("AUTH") }
}

/// One message the SMTP sink accepted.
struct SinkMail: Decodable, Sendable {
    var mailFrom: String
    var rcptTo: [String]
    var authUser: String?
    var headers: [String: String]
    var subject: String
    var body: String
    var receivedAt: Double

    enum CodingKeys: String, CodingKey {
        case mailFrom = "mail_from"
        case rcptTo = "rcpt_to"
        case authUser = "auth_user"
        case headers, subject, body
        case receivedAt = "received_at"
    }
}

/// `scripts/notify-sink` (Python stdlib HTTP + SMTP servers) on free loopback ports,
/// recording what it receives as JSON lines the test reads back. The sink exits on
/// `stop()`, or by itself when the test process goes away.
final class NotifySink: @unchecked Sendable {
    // @unchecked Sendable: `process` is only touched in `start` and `stop`, which a
    // test calls from its own task; everything else is immutable.
    let httpPort: Int
    let smtpPort: Int
    private let directory: URL
    private let process: Process

    static let scriptPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/notify-sink").path

    private init(httpPort: Int, smtpPort: Int, directory: URL, process: Process) {
        self.httpPort = httpPort
        self.smtpPort = smtpPort
        self.directory = directory
        self.process = process
    }

    static func start(webhookSecret: String? = nil, smtpAuth: String? = nil) async throws -> NotifySink {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobd-sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ready = directory.appendingPathComponent("ready.json").path
        let record = directory.appendingPathComponent("record.jsonl").path
        _ = FileManager.default.createFile(atPath: record, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["python3", scriptPath, "--ready", ready, "--record", record]
        if let webhookSecret { arguments += ["--webhook-secret", webhookSecret] }
        if let smtpAuth { arguments += ["--smtp-auth", smtpAuth] }
        process.arguments = arguments
        try process.run()
        try await waitUntil(timeout: 15, "notify-sink to listen") { FileManager.default.fileExists(atPath: ready) }
        let ports = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: URL(fileURLWithPath: ready)))
        return NotifySink(httpPort: ports["http_port"] ?? 0, smtpPort: ports["smtp_port"] ?? 0, directory: directory, process: process)
    }

    func url(_ pathAndQuery: String) -> String { "http://127.0.0.1:\(httpPort)\(pathAndQuery)" }

    /// Everything received so far, in order of receipt.
    func requests() throws -> [SinkRequest] { try records(kind: "http") }
    func mails() throws -> [SinkMail] { try records(kind: "smtp") }
    func smtpSessions() throws -> [SinkSMTPSession] {
        let commands: [SinkSMTPCommand] = try records(kind: "smtp_command")
        return Dictionary(grouping: commands, by: \.session).sorted { $0.key < $1.key }
            .map { SinkSMTPSession(commands: $0.value.map(\.verb)) }
    }

    func records<T: Decodable>(kind: String) throws -> [T] {
        let text = try String(contentsOf: directory.appendingPathComponent("record.jsonl"), encoding: .utf8)
        let decoder = JSONDecoder()
        // Only whole lines: the sink may be writing the next one right now.
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()
        return try lines.filter { !$0.isEmpty }.compactMap { line in
            let data = Data(line.utf8)
            guard try decoder.decode(SinkRecordKind.self, from: data).kind == kind else { return nil }
            return try decoder.decode(T.self, from: data)
        }
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a SIGTERM the test process ignores (swift-service-lifecycle
            // does) stays ignored in the child.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

private struct SinkRecordKind: Decodable {
    var kind: String
}
