import Foundation
import JobdCore
import JobdTestSupport
import Testing

/// The real `jobd` binary, built beside the tests (or JOBD_TEST_BINARY), run as an
/// operator would against a test database.
enum JobdCLI {
    static func binary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["JOBD_TEST_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var candidates: [String] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("jobd").path)
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("jobd").path)
        candidates.append(root.appendingPathComponent(".build/debug/jobd").path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            struct Missing: Error, CustomStringConvertible {
                var description = "the jobd binary was not found beside the tests; run `swift build` first or set JOBD_TEST_BINARY"
            }
            throw Missing()
        }
        return found
    }

    /// Runs `jobd arguments…` with JOBD_DATABASE_URL set; returns the exit status and stdout.
    static func run(_ arguments: [String], databaseURL: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBD_") }
        environment["JOBD_DATABASE_URL"] = databaseURL
        environment["JOBD_LOG_LEVEL"] = "error"
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// What a terminal would act on: ESC, CR, other C0 and C1 controls, bidi overrides and isolates.
private func hasTerminalControls(_ text: String, allowingNewlines: Bool = true) -> Bool {
    text.unicodeScalars.contains { scalar in
        switch scalar.value {
        case 0x0A, 0x09: return !allowingNewlines
        case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

/// ESC sequences that clear the screen and retitle the window, CR that hides what
/// came before, and a right-to-left override.
private let hostile = "\u{1B}[2J\u{1B}]0;owned\u{07}ok\rFAKE\u{202E}txt"
private let hostileShown = #"\x1b[2J\x1b]0;owned\x07ok\rFAKE\u202etxt"#

@Suite("operator output", .serialized)
struct OperatorOutputTests {
    @Test("jobd dead-letter list escapes control characters from stored error text, in text and JSON")
    func deadLetterList() async throws {
        try await withWorld { world in
            let daemon = world.makeDaemon(world.configuration())
            try await world.running([daemon]) {
                // A producer's unknown field name is quoted in the stored error.
                let payload = String(decoding: try JSONSerialization.data(withJSONObject: [hostile: 1]), as: UTF8.self)
                try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)", [payload])
                try await world.waitForState("dead", count: 1)
            }
            #expect(try await world.scalar("SELECT last_error FROM queue.dead_letters")?.contains(hostile) == true)
            let text = try JobdCLI.run(["dead-letter", "list"], databaseURL: world.database.url)
            #expect(text.status == 0)
            #expect(text.output.contains(hostileShown), "\(text.output)")
            #expect(!hasTerminalControls(text.output.replacingOccurrences(of: "\t", with: " ")))
            let json = try JobdCLI.run(["dead-letter", "list", "--json"], databaseURL: world.database.url)
            #expect(json.status == 0)
            #expect(!hasTerminalControls(json.output))
            let rows = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
            #expect((rows?.first?["last_error"] as? String)?.contains(hostile) == true)
        }
    }

    @Test("jobd content get escapes control characters from stored headers and bodies")
    func contentGet() async throws {
        try await withContentWorld { content in
            try await content.write(ContentFixtures.message("ansi-1", [
                "text": "line one\n\(hostile)\nline three", "headers": ["X-Note": "plain"],
            ]))
            let part = try JobdCLI.run(["content", "get", "ansi-1", "--part", "text"], databaseURL: content.database.url)
            #expect(part.status == 0)
            #expect(part.output.contains("line one\n\(hostileShown)\nline three"), "\(part.output)")
            #expect(!hasTerminalControls(part.output))
            let whole = try JobdCLI.run(["content", "get", "ansi-1"], databaseURL: content.database.url)
            #expect(whole.status == 0)
            #expect(whole.output.contains(hostileShown) && !hasTerminalControls(whole.output))
            let json = try JobdCLI.run(["content", "get", "ansi-1", "--json"], databaseURL: content.database.url)
            #expect(json.status == 0 && !hasTerminalControls(json.output))
        }
    }

    @Test("jobd report escapes control characters from stored event names")
    func report() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO analytics.events (job_id, seq, name, value, occurred_at) VALUES (1, 1, $1, 2.5, now())
                """, [hostile])
            let day = try #require(try await world.scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')"))
            let text = try JobdCLI.run(["report", "--day", day], databaseURL: world.database.url)
            #expect(text.status == 0)
            #expect(text.output.contains(hostileShown), "\(text.output)")
            #expect(!hasTerminalControls(text.output))
            let json = try JobdCLI.run(["report", "--day", day, "--json"], databaseURL: world.database.url)
            #expect(json.status == 0 && !hasTerminalControls(json.output))
        }
    }
}
