import Foundation
import JobdCore
@testable import JobdSystemd
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct JournalFieldMappingTests {
    @Test func fixedFieldsThenMetadataSortedByKey() {
        let fields = JournalLogHandler.fields(
            level: .warning,
            message: "job failed\nsecond line",
            metadata: [
                "job_id": "42",
                "job.kind": "email",
                "message_id": .string(JobdMessageID.jobDeadLettered.id),
            ],
            file: "jobd/Worker.swift",
            function: "run()",
            line: 17,
            syslogIdentifier: "jobd"
        )
        #expect(fields.map(\.description) == [
            "MESSAGE=job failed\nsecond line",
            "PRIORITY=4",
            "CODE_FILE=jobd/Worker.swift",
            "CODE_LINE=17",
            "CODE_FUNC=run()",
            "SYSLOG_IDENTIFIER=jobd",
            "JOB_KIND=email",
            "JOB_ID=42",
            "MESSAGE_ID=9037d575314d4a17a1e5870dec259411",
        ])
    }

    @Test(arguments: [
        ("job_id", "JOB_ID"),
        ("job.kind", "JOB_KIND"),
        ("message_id", "MESSAGE_ID"),
        ("Tier", "TIER"),
        ("http-status code", "HTTP_STATUS_CODE"),
        ("1st_try", "X_1ST_TRY"),
        ("_PID", "X__PID"),  // a leading "_" would claim a trusted field
        ("", "X_"),
        ("é", "X__"),
    ])
    func metadataKeyBecomesJournalFieldName(key: String, expected: String) {
        #expect(JournalLogHandler.fieldName(forMetadataKey: key) == expected)
    }

    @Test func fieldNamesAreCappedAt64Characters() {
        let name = JournalLogHandler.fieldName(forMetadataKey: String(repeating: "a", count: 100))
        #expect(name == String(repeating: "A", count: 64))
    }

    @Test func metadataCannotOverrideFixedFields() {
        let fields = JournalLogHandler.fields(
            level: .info, message: "real", metadata: ["message": "fake", "priority": "0"],
            file: "f", function: "g", line: 1, syslogIdentifier: "jobd"
        )
        #expect(fields.filter { $0.name == "MESSAGE" }.map(\.value) == ["real"])
        #expect(fields.filter { $0.name == "PRIORITY" }.map(\.value) == ["6"])
        #expect(fields.contains(.init("X_MESSAGE", "fake")))
        #expect(fields.contains(.init("X_PRIORITY", "0")))
    }

    @Test func nestedMetadataFlattensToItsDescription() {
        let nested: Logger.Metadata.Value = .dictionary(["attempt": "3", "queues": .array(["a", "b"])])
        let fields = JournalLogHandler.fields(
            level: .info, message: "m", metadata: ["retry": nested],
            file: "f", function: "g", line: 1, syslogIdentifier: "jobd"
        )
        #expect(fields.last == .init("RETRY", nested.description))
    }

    @Test func errorBecomesErrorField() {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let fields = JournalLogHandler.fields(
            level: .error, message: "m", metadata: [:], error: Boom(),
            file: "f", function: "g", line: 1, syslogIdentifier: "jobd"
        )
        #expect(fields.contains(.init("ERROR", "boom")))
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func levelMapsToSyslogPriority(level: Logger.Level, priority: Int) {
        #expect(JournalLogHandler.priority(level) == priority)
    }

    @Test func messageIDsAre128BitLowercaseHexAndDistinct() {
        let ids = JobdMessageID.allCases.map(\.id)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id)")
        }
        #expect(JobdMessageID.daemonReady.metadata == ["message_id": "b0bfd3ee2a744c70b3f5edcb032dd20b"])
    }
}

// MARK: - Real journald round trip

/// Finds or starts a journald for the round-trip test.
///
/// Without systemd as PID 1, journald still runs when started by hand as root, once
/// /run/systemd/journal exists: it binds /run/systemd/journal/socket (where sd_journal_sendv
/// writes) and stores entries under /run/log/journal/<machine-id>/, which journalctl reads.
enum Journald {
    static let binary = "/lib/systemd/systemd-journald"
    static let socketPath = "/run/systemd/journal/socket"

    /// Root is needed to start journald and to read the system journal back.
    static var canTry: Bool {
        Host.isRoot && Host.which("journalctl") != nil && (isAccepting() || access(binary, X_OK) == 0)
    }

    /// True if something is bound to the native journal socket (a stale file refuses).
    static func isAccepting() -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(socketPath.utf8)) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Returns the journald process if this call started it (the caller stops it), nil if one
    /// was already running (left alone).
    static func ensureRunning() throws -> Process? {
        if isAccepting() { return nil }
        try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {  // up to 5 s
            if isAccepting() { return process }
            if !process.isRunning {
                throw StartFailure(description: "\(binary) exited with status \(process.terminationStatus)")
            }
            usleep(50_000)
        }
        stop(process)
        throw StartFailure(description: "\(binary) did not bind \(socketPath) within 5 s")
    }

    static func stop(_ process: Process) {
        if process.isRunning { process.terminate() }  // SIGTERM: journald flushes and exits
        process.waitUntilExit()
    }
}

extension HostTests {
    @Suite struct JournaldRoundTripTests {
        @Test(
            .enabled(
                if: Journald.canTry,
                "SKIPPED: needs root, journalctl, and either a running journald or /lib/systemd/systemd-journald to start"
            )
        )
        func entryWithMetadataReachesJournald() throws {
            let started: Process?
            do {
                started = try Journald.ensureRunning()
            } catch {
                print("SKIPPED journald round trip: journald could not be started: \(error)")
                try Test.cancel("journald could not be started: \(error)")
            }
            defer { if let started { Journald.stop(started) } }

            let jobID = "test-\(getpid())-\(UInt32.random(in: .min ... .max))"
            let messageID = JobdMessageID.jobRescued.id
            let logger = Logger(label: "jobd.test") { JournalLogHandler(label: $0, syslogIdentifier: "jobd-test") }
            let metadata: Logger.Metadata = [
                "job_id": .string(jobID), "job_kind": "email", "message_id": .string(messageID), "job.queue": "default",
            ]
            let logLine: UInt = #line + 1
            logger.notice("journald round trip", metadata: metadata)

            let fields = ["MESSAGE", "PRIORITY", "JOB_ID", "JOB_KIND", "JOB_QUEUE", "MESSAGE_ID",
                          "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC"]
            let journalctl = try #require(Host.which("journalctl"))
            var entry: [String: Any]?
            var lastOutput = Host.Output(status: 0, stdout: "", stderr: "")
            for _ in 0..<50 where entry == nil {  // journald stores asynchronously: poll up to 5 s
                lastOutput = try Host.run(journalctl, [
                    "--no-pager", "-q", "-o", "json", "--output-fields=" + fields.joined(separator: ","),
                    "MESSAGE_ID=\(messageID)", "JOB_ID=\(jobID)",
                ])
                if let line = lastOutput.stdout.split(separator: "\n").first,
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                {
                    entry = object
                } else {
                    usleep(100_000)
                }
            }
            let found = try #require(
                entry, "entry not found in the journal; journalctl said: \(lastOutput.stderr)\(lastOutput.stdout)")
            #expect(found["MESSAGE"] as? String == "journald round trip")
            #expect(found["PRIORITY"] as? String == "5")
            #expect(found["JOB_ID"] as? String == jobID)
            #expect(found["JOB_KIND"] as? String == "email")
            #expect(found["JOB_QUEUE"] as? String == "default")
            #expect(found["MESSAGE_ID"] as? String == messageID)
            #expect(found["SYSLOG_IDENTIFIER"] as? String == "jobd-test")
            #expect((found["CODE_FILE"] as? String)?.hasSuffix("JournalLogHandlerTests.swift") == true)
            #expect(found["CODE_LINE"] as? String == String(logLine))
            #expect(found["CODE_FUNC"] as? String == "entryWithMetadataReachesJournald()")
        }
    }
}
