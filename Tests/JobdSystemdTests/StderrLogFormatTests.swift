import Foundation
@testable import JobdSystemd
import Logging
import Testing

@Suite struct StderrLogFormatTests {
    @Test func timestampIsRFC3339UTCWithMilliseconds() {
        #expect(TextLogFormatter.timestamp(epochSeconds: 1_795_600_800, milliseconds: 123) == "2026-11-25T10:00:00.123Z")
        #expect(TextLogFormatter.timestamp(epochSeconds: 951_868_799, milliseconds: 5) == "2000-02-29T23:59:59.005Z")
    }

    @Test func textLineHasSortedMetadataAndQuotesValuesWithSpaces() {
        let line = TextLogFormatter.line(
            timestamp: "2026-11-25T10:00:00.123Z", level: .info, label: "jobd",
            message: "job done", metadata: ["job_id": "42", "note": "two words", "kind": "email"]
        )
        #expect(line == #"2026-11-25T10:00:00.123Z info jobd: job done job_id=42 kind=email note="two words""#)
    }

    @Test func textLineStaysOnOneLine() {
        let line = TextLogFormatter.line(
            timestamp: "T", level: .error, label: "jobd", message: "first\nsecond",
            metadata: ["sql": "SELECT 1;\nSELECT \"x\"", "empty": ""]
        )
        #expect(!line.contains("\n"))
        #expect(line == #"T error jobd: first\nsecond empty="" sql="SELECT 1;\nSELECT \"x\"""#)
    }

    @Test func jsonLineIsOneValidObject() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let line = TextLogFormatter.jsonLine(
            timestamp: "2026-11-25T10:00:00.123Z", level: .warning, label: "jobd",
            message: "quote \" backslash \\ newline \n tab \t bell \u{7}",
            metadata: ["job_id": "42", "retry": .dictionary(["attempt": "3", "queues": .array(["a", "b"])])],
            error: Boom()
        )
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-11-25T10:00:00.123Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "jobd")
        #expect(object["message"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{7}")
        #expect(object["error"] as? String == "boom")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["job_id"] as? String == "42")
        let retry = try #require(metadata["retry"] as? [String: Any])
        #expect(retry["attempt"] as? String == "3")
        #expect(retry["queues"] as? [String] == ["a", "b"])
    }

    @Test func logFormatParsesFromCommandLineSpelling() {
        #expect(LogFormat(rawValue: "journald") == .journald)
        #expect(LogFormat.allCases.map(\.rawValue) == ["auto", "journald", "text", "json"])
    }
}
