import Foundation
import JobdCore
import Testing

// MARK: - DurationText

@Suite("DurationText")
struct DurationTextTests {
    @Test(
        "accepted durations",
        arguments: [
            ("1.5", 1.5), ("0", 0), ("30", 30), ("250ms", 0.25), ("30s", 30), ("5m", 300), ("2h", 7_200),
            ("7d", 604_800), ("1w", 604_800), ("1h30m", 5_400), ("1m30s", 90), ("2h0m5s", 7_205),
            ("1.5h", 5_400), (" 10 ", 10), ("\t5m\n", 300), ("10sec", 10), ("2min", 120), ("0.5s", 0.5),
            ("1d12h", 129_600),
        ]
    )
    func accepts(text: String, seconds: Double) throws {
        let value = try #require(DurationText.seconds(text), "\"\(text)\" should parse")
        #expect(abs(value - seconds) < 1e-9, "\"\(text)\" → \(value)")
    }

    @Test(
        "rejected texts",
        arguments: [
            "", " ", "abc", "-1", "-5s", "5x", "m5", "1..2s", "s", "1h30", "5 m", "1h 30m", "5M", "5S",
            "nan", "inf", "-inf", "1,5s", "5s!", "+", ".", "..s", "1e3s",
        ]
    )
    func rejects(text: String) {
        #expect(DurationText.seconds(text) == nil, "\"\(text)\" should be rejected")
    }

    @Test("an overflowing unit product is rejected, not infinite")
    func overflowIsRejected() {
        // A finite number (1e307) times the week factor overflows to +∞.
        let text = "1" + String(repeating: "0", count: 307) + "w"
        let value = DurationText.seconds(text)
        #expect(value == nil, "got \(String(describing: value))")
        // Each part is finite (about 6e307 s), their sum is not: rejected too.
        let part = "1" + String(repeating: "0", count: 302) + "w"
        #expect(DurationText.seconds(part)?.isFinite == true)
        #expect(DurationText.seconds(part + part + part) == nil)
    }

    @Test("a finite huge plain number is accepted as is")
    func hugePlain() {
        #expect(DurationText.seconds("1e300") == 1e300)
    }
}

// MARK: - Redaction

@Suite("Redaction.connectionString")
struct RedactionTests {
    @Test(
        "URIs: secrets never survive, other parts do",
        arguments: [
            ("postgresql://app:s3cret@db.internal:5432/jobs?sslmode=require",
             "postgresql://app:***@db.internal:5432/jobs?sslmode=require"),
            ("postgres://app:s3cret@db/jobs", "postgres://app:***@db/jobs"),
            ("postgresql://app:s3cret@db", "postgresql://app:***@db"),
            ("postgresql://app:p@ss:s3cret@db/jobs", "postgresql://app:***@db/jobs"),
            ("postgresql://db/jobs?password=s3cret", "postgresql://db/jobs?password=***"),
            ("postgresql://db/jobs?password=s3cret&sslmode=require&application_name=jobd",
             "postgresql://db/jobs?password=***&sslmode=require&application_name=jobd"),
            ("postgresql://db/jobs?sslmode=require&password=s3cret", "postgresql://db/jobs?sslmode=require&password=***"),
            ("postgresql://app:s3cret@db/jobs?password=s3cret", "postgresql://app:***@db/jobs?password=***"),
            ("postgresql://db/jobs?sslpassword=s3cret&password=s3cret", "postgresql://db/jobs?sslpassword=***&password=***"),
            ("postgresql://app:s3cret@[::1]:5432/jobs", "postgresql://app:***@[::1]:5432/jobs"),
        ]
    )
    func redactsURIs(input: String, expected: String) {
        let output = Redaction.connectionString(input)
        #expect(output == expected)
        #expect(!output.contains("s3cret"))
        #expect(!output.contains("cret"))
        #expect(output.contains("***"))
    }

    @Test(
        "conninfo: secrets never survive, other pairs do",
        arguments: [
            ("host=db port=5432 password=s3cret dbname=jobs", "host=db port=5432 password=*** dbname=jobs"),
            ("password=s3cret host=db", "password=*** host=db"),
            ("host=db password=s3cret", "host=db password=***"),
            ("host=db password='se cret' dbname=jobs", "host=db password=*** dbname=jobs"),
            ("host=db password = s3cret dbname=jobs", "host=db password=*** dbname=jobs"),
            ("host=db password  =  's3 cret' dbname=jobs", "host=db password=*** dbname=jobs"),
            ("host=db password\t=\ts3cret\ndbname=jobs", "host=db password=*** dbname=jobs"),
            (#"host=db password='s3\'cret' user=app"#, "host=db password=*** user=app"),
            ("host=db sslpassword=s3cret password=s3cret user=app", "host=db sslpassword=*** password=*** user=app"),
            ("host=db application_name='my app' password=s3cret", "host=db application_name='my app' password=***"),
        ]
    )
    func redactsConninfo(input: String, expected: String) {
        let output = Redaction.connectionString(input)
        #expect(output == expected)
        #expect(!output.contains("s3cret"))
        #expect(!output.contains("cret"))
        #expect(output.contains("***"))
        #expect(output.contains("host=db"))
    }

    @Test(
        "a conninfo it cannot read is hidden from the first unreadable part on",
        arguments: [
            ("host=db s3cret", "host=db ***"),
            ("s3cret", "***"),
            ("host=db password", "host=db ***"),
        ]
    )
    func unreadableConninfo(input: String, expected: String) {
        let output = Redaction.connectionString(input)
        #expect(output == expected)
        #expect(!output.contains("s3cret"))
    }

    @Test(
        "text without a password is unchanged",
        arguments: [
            "postgresql://app@db:5432/jobs",
            "postgresql://db/jobs?sslmode=require",
            "postgresql:///jobs?host=/var/run/postgresql",
            "host=db port=5432 dbname=jobs user=app",
            "host=db user=password dbname=jobs",
            "",
        ]
    )
    func unchanged(input: String) {
        #expect(Redaction.connectionString(input) == input)
    }

    @Test("a raw '?' in a URI password (libpq reads user info up to the first '@' or '/')")
    func questionMarkInPassword() {
        let output = Redaction.connectionString("postgresql://app:s3cret?x@db/jobs")
        #expect(!output.contains("s3cret"), "\(output)")
        #expect(output == "postgresql://app:***@db/jobs")
    }
}

// MARK: - JSONValue

@Suite("JSONValue")
struct JSONValueTests {
    func decode(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(
        "decoding keeps booleans and numbers apart",
        arguments: [
            ("true", JSONValue.bool(true)), ("false", .bool(false)),
            ("1", .number(1)), ("0", .number(0)), ("-2.5", .number(-2.5)), ("1e3", .number(1_000)),
            ("null", .null), (#""true""#, .string("true")), (#""1""#, .string("1")),
        ]
    )
    func scalars(text: String, expected: JSONValue) throws {
        #expect(try decode(text) == expected)
    }

    @Test("a document decodes field by field with exact types")
    func document() throws {
        let value = try decode(#"{"ok": true, "count": 1, "zero": 0, "name": "x", "none": null, "list": [false, 1, "1"], "nested": {"a": []}}"#)
        #expect(value == .object([
            "ok": .bool(true),
            "count": .number(1),
            "zero": .number(0),
            "name": .string("x"),
            "none": .null,
            "list": .array([.bool(false), .number(1), .string("1")]),
            "nested": .object(["a": .array([])]),
        ]))
        guard case .object(let fields) = value else {
            Issue.record("expected an object")
            return
        }
        #expect(fields["ok"] != .number(1))
        #expect(fields["count"] != .bool(true))
    }

    @Test("encoding round-trips")
    func roundTrip() throws {
        let value = JSONValue.object([
            "b": .bool(true), "n": .number(1.5), "s": .string("é"), "z": .null,
            "a": .array([.number(1), .bool(false), .object([:])]),
        ])
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
        let booleans = try JSONEncoder().encode(JSONValue.array([.bool(true), .number(1)]))
        #expect(String(decoding: booleans, as: UTF8.self) == "[true,1]")
    }

    @Test("invalid JSON throws")
    func invalid() {
        #expect(throws: (any Error).self) { try decode("{") }
        #expect(throws: (any Error).self) { try decode("tru") }
    }

    @Test(
        "depth",
        arguments: [
            (JSONValue.null, 1), (.bool(true), 1), (.number(3), 1), (.string("x"), 1),
            (.array([]), 1), (.object([:]), 1),
            (.array([.number(1)]), 2), (.object(["a": .null]), 2),
            (.array([.array([.number(1)])]), 3),
            (.object(["a": .object(["b": .array([])])]), 3),
            (.array([.number(1), .array([.array([.array([])])]), .object([:])]), 4),
            (.object(["shallow": .number(1), "deep": .array([.object(["x": .array([.null])])])]), 5),
        ]
    )
    func depth(value: JSONValue, expected: Int) {
        #expect(value.depth == expected)
    }

    @Test("depth of a deeply nested document")
    func deepNesting() throws {
        var value = JSONValue.number(0)
        for _ in 0..<200 { value = .array([value]) }
        #expect(value.depth == 201)
        let text = String(repeating: "[", count: 50) + String(repeating: "]", count: 50)
        #expect(try decode(text).depth == 50)
        let objects = String(repeating: #"{"k":"#, count: 20) + "1" + String(repeating: "}", count: 20)
        #expect(try decode(objects).depth == 21)
    }
}

// MARK: - JobState and JobPriority against the schema

/// The quoted values of one `CHECK (column IN (...))` constraint in `Migrations/queue/0001_queue.sql`.
private func checkConstraintValues(_ name: String) throws -> [String] {
    let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()   // JobdCoreTests
        .deletingLastPathComponent()   // Tests
        .deletingLastPathComponent()   // repository root
    let sql = try String(contentsOf: root.appendingPathComponent("Migrations/queue/0001_queue.sql"), encoding: .utf8)
    let start = try #require(sql.range(of: "CONSTRAINT \(name) CHECK"), "no \(name) in the migration")
    let tail = sql[start.upperBound...]
    let end = try #require(tail.range(of: "))"), "\(name) is not closed")
    let body = tail[..<end.upperBound]
    return body.matches(of: /'([^']*)'/).map { String($0.output.1) }
}

@Suite("JobState and JobPriority")
struct StateAndPriorityTests {
    @Test("promotable and finished states")
    func stateSets() {
        #expect(JobState.promotable == [.available, .retryable])
        #expect(Set(JobState.finished) == [.completed, .dead, .cancelled])
        #expect(JobState.finished.count == 3)
        #expect(Set(JobState.promotable).isDisjoint(with: JobState.finished))
        #expect(!JobState.promotable.contains(.running))
        #expect(!JobState.finished.contains(.running))
        #expect(!JobState.finished.contains(.promoted))
    }

    @Test("state raw values match jobs_state_check")
    func stateMatchesSchema() throws {
        let values = try checkConstraintValues("jobs_state_check")
        #expect(values.count == 7)
        #expect(values == JobState.allCases.map(\.rawValue))
        for value in values {
            #expect(JobState(rawValue: value) != nil, "\(value)")
        }
    }

    @Test("the unique-key index releases exactly the finished states")
    func uniqueIndexMatchesFinished() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sql = try String(contentsOf: root.appendingPathComponent("Migrations/queue/0001_queue.sql"), encoding: .utf8)
        let start = try #require(sql.range(of: "CREATE UNIQUE INDEX jobs_unique_key_idx"))
        let tail = sql[start.upperBound...]
        let end = try #require(tail.range(of: ");"))
        let listed = tail[..<end.upperBound].matches(of: /'([^']*)'/).map { String($0.output.1) }
        #expect(Set(listed) == Set(JobState.finished.map(\.rawValue)))
    }

    @Test("priority raw values match jobs_priority_check")
    func priorityMatchesSchema() throws {
        let values = try checkConstraintValues("jobs_priority_check")
        #expect(values == JobPriority.allCases.map(\.rawValue))
        #expect(values == ["high", "normal", "low"])
    }

    @Test("priorities sort by rank, high first")
    func priorityOrder() {
        #expect(JobPriority.high.rank == 0)
        #expect(JobPriority.normal.rank == 1)
        #expect(JobPriority.low.rank == 2)
        #expect(JobPriority.high < .normal)
        #expect(JobPriority.normal < .low)
        #expect(!(JobPriority.low < .high))
        #expect([JobPriority.low, .high, .normal].sorted() == [.high, .normal, .low])
        #expect(JobPriority.allCases == [.high, .normal, .low])
    }

    @Test("parsing a priority", arguments: JobPriority.allCases)
    func parsePriority(priority: JobPriority) throws {
        #expect(try JobPriority(parsing: priority.rawValue) == priority)
    }

    @Test("a bad priority's message names the value", arguments: ["urgent", "HIGH", "", " low", "2"])
    func badPriority(text: String) {
        do {
            let parsed = try JobPriority(parsing: text)
            Issue.record("\"\(text)\" parsed as \(parsed)")
        } catch {
            #expect(error.message.contains("\"\(text)\""))
            #expect(error.description == error.message)
            #expect(error.message.contains("high, normal, low"))
        }
    }
}

// MARK: - Small value types

@Suite("Identifiers and codes")
struct IdentifierTests {
    @Test("message ids are 32 distinct lowercase hex digits")
    func messageIDs() {
        let ids = JobdMessageID.allCases.map(\.id)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.count == 32, "\(id)")
            #expect(id.allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
        }
        #expect(JobdMessageID.metadataKey == LogKey.messageID)
    }

    @Test("log keys are distinct snake_case names")
    func logKeys() {
        let keys = [
            LogKey.jobID, LogKey.jobKind, LogKey.jobAttempt, LogKey.jobPriority, LogKey.daemon, LogKey.service,
            LogKey.count, LogKey.error, LogKey.errorCode, LogKey.tier, LogKey.durationMs, LogKey.messageID,
            LogKey.outcome, LogKey.retryIn,
        ]
        #expect(Set(keys).count == keys.count)
        for key in keys {
            #expect(key.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(key)")
        }
    }

    @Test("completion outcomes encode as their raw names")
    func outcomes() throws {
        let data = try JSONEncoder().encode([CompletionOutcome.completed, .retry, .snooze, .dead, .release])
        #expect(String(decoding: data, as: UTF8.self) == #"["completed","retry","snooze","dead","release"]"#)
        #expect(try JSONDecoder().decode(JobState.self, from: Data(#""retryable""#.utf8)) == .retryable)
    }
}

@Suite("Total conversions")
struct TotalConversionTests {
    @Test("seconds to whole units never trap: NaN and negatives are 0, beyond Int64 is the maximum")
    func clampsEverything() {
        let cases: [(Double, Int64)] = [
            (.nan, 0), (-.nan, 0), (.infinity, .max), (-.infinity, 0), (-0.0, 0), (-1, 0),
            (1.5, 1_500_000_000), (9.3e9, .max), (6.4e10, .max), (1e308, .max), (.greatestFiniteMagnitude, .max),
            (9_223_372_036.854775807, .max), (1e9, 1_000_000_000_000_000_000),
        ]
        for (seconds, nanoseconds) in cases {
            #expect(TotalConversion.nanoseconds(seconds) == nanoseconds, "\(seconds)")
        }
        #expect(TotalConversion.microseconds(1e16) == .max)
        #expect(TotalConversion.microseconds(0.25) == 250_000)
        #expect(TotalConversion.milliseconds(.infinity) == Int.max)
        #expect(TotalConversion.milliseconds(2.5) == 2_500)
        #expect(TotalConversion.duration(seconds: .nan) == .zero)
        #expect(TotalConversion.seconds(.nan, in: 0...10) == 0)
        #expect(TotalConversion.seconds(.infinity, in: 0...10, fallback: 3) == 10)
        #expect(TotalConversion.seconds(-.infinity, in: 0...10, fallback: 3) == 0)
        #expect(TotalConversion.seconds(1e300, in: 0...10) == 10)
        #expect(TotalConversion.seconds(nil, in: 1...10) == 1)
        // A peer's or a payload's seconds reach a snooze through `duration(seconds:)`.
        #expect(JobSnooze(for: TotalConversion.duration(seconds: 1e300), code: "test", message: "test").delay == JobSnooze.maxDelay)
        #expect(JobSnooze(for: TotalConversion.duration(seconds: .nan), code: "test", message: "test").delay == .zero)
        #expect(JobSnooze(for: TotalConversion.duration(seconds: .infinity), code: "test", message: "test").delay == JobSnooze.maxDelay)
    }
}
