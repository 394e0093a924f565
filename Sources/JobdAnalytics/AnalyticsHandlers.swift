import Foundation
import JobdCore
import JobdPostgres
import JobdQueue
import Logging

/// `metrics.emit`: records application events in `analytics.events`.
///
/// Payload: one event `{"name": "signup", "value": 1, "tags": {"plan": "pro"},
/// "time": "2026-03-01T12:00:00Z"}` or several `{"events": [{…}, …]}` (at most
/// 1,000). `name` is required (1–200 characters); `value` defaults to 1; `tags` to
/// `{}`; `time` (ISO 8601, or seconds since 1970) to when the job runs — pass it
/// explicitly (e.g. `now()` in the enqueueing SQL) when the exact time matters.
/// Idempotent: event n of job j is stored once however often the job runs.
public struct MetricsEmitHandler: JobHandler {
    public let kind = "metrics.emit"
    let analytics: TierDatabase
    let now: @Sendable () -> Date

    public init(analytics: TierDatabase, now: @escaping @Sendable () -> Date = { Date() }) {
        self.analytics = analytics
        self.now = now
    }

    struct Event: Equatable {
        var name: String
        var value: Double
        var tags: String
        var time: Date
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let events = try Self.decode(job.payload, now: now())
        _ = try await analytics.withConnection { connection in
            try await connection.execute(AnalyticsEventsStatements.Insert(
                jobID: job.id, names: events.map(\.name), values: events.map(\.value), tags: events.map(\.tags),
                times: events.map { Int64(($0.time.timeIntervalSince1970 * 1000).rounded()) }))
        }
    }

    /// Event times a payload may give, in seconds since 1970: 1970-01-01 to
    /// 9999-12-31, so the milliseconds sent to Postgres always fit an Int64.
    static let timeRange: ClosedRange<Double> = 0...253_402_300_799
    /// Largest magnitude of an event's value.
    static let maxValue: Double = 1e18

    static func decode(_ text: String, now: Date) throws -> [Event] {
        let object = try JSONPayload.object(text, kind: "metrics.emit")
        if let list = object["events"] {
            guard object.count == 1 else {
                throw JobFailure.permanent("metrics.emit payload: events must be the only field", code: "payload_invalid")
            }
            guard case .array(let items) = list, (1...1_000).contains(items.count) else {
                throw JobFailure.permanent("metrics.emit payload: events must be a list of 1…1000 events", code: "payload_invalid")
            }
            return try items.enumerated().map { index, item in
                guard case .object(let fields) = item else {
                    throw JobFailure.permanent("metrics.emit payload: events[\(index)] must be an object", code: "payload_invalid")
                }
                return try event(fields, now: now, at: "events[\(index)].")
            }
        }
        return [try event(object, now: now, at: "")]
    }

    private static func event(_ fields: [String: JSONValue], now: Date, at path: String) throws -> Event {
        func invalid(_ message: String) -> JobFailure {
            JobFailure.permanent("metrics.emit payload: \(path)\(message)", code: "payload_invalid")
        }
        var event = Event(name: "", value: 1, tags: "{}", time: now)
        // Code points, as the column's CHECK (length(name) <= 200) counts them: a name
        // of few graphemes but many combining marks must fail here, not in the INSERT.
        guard case .string(let name)? = fields["name"], (1...200).contains(name.unicodeScalars.count) else {
            throw invalid("name must be a string of 1…200 characters")
        }
        event.name = name
        for (key, value) in fields {
            switch key {
            case "name":
                break
            case "value":
                // Bounded so that no day's sum of events can overflow a float8 in the rollup.
                guard case .number(let number) = value, number.isFinite, abs(number) <= Self.maxValue else {
                    throw invalid("value must be a number from -1e18 to 1e18")
                }
                event.value = number
            case "tags":
                guard case .object = value else { throw invalid("tags must be an object") }
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                event.tags = String(decoding: try encoder.encode(value), as: UTF8.self)
            case "time":
                switch value {
                case .number(let seconds) where Self.timeRange.contains(seconds):
                    event.time = Date(timeIntervalSince1970: seconds)
                case .number:
                    throw invalid("time must be from 1970-01-01 to 9999-12-31 (0 to 253402300799 seconds)")
                case .string(let text):
                    guard let date = parseISO8601(text) else { throw invalid("time must be ISO 8601, e.g. 2026-03-01T12:00:00Z") }
                    guard Self.timeRange.contains(date.timeIntervalSince1970) else {
                        throw invalid("time must be from 1970-01-01 to 9999-12-31")
                    }
                    event.time = date
                default:
                    throw invalid("time must be an ISO 8601 string or seconds since 1970")
                }
            default:
                throw invalid("unknown field \"\(key)\" (known: name, value, tags, time)")
            }
        }
        return event
    }

    /// ISO 8601 with or without fractional seconds; also what Postgres prints for a
    /// timestamptz in JSON (`2026-03-01T12:00:00.123+00:00`).
    static func parseISO8601(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

/// `analytics.rollup`: rolls one UTC day up into `analytics.daily_*` (see
/// `AnalyticsRollup`). Payload `{"day": "YYYY-MM-DD"}`; without it, yesterday. The
/// built-in schedule passes the day before its slot, so a late run still rolls up
/// the right day. Re-running a day replaces its rows with the same figures.
public struct AnalyticsRollupHandler: JobHandler {
    public let kind = "analytics.rollup"
    public var isInternal: Bool { true }
    let rollup: AnalyticsRollup
    let now: @Sendable () -> Date

    public init(rollup: AnalyticsRollup, now: @escaping @Sendable () -> Date = { Date() }) {
        self.rollup = rollup
        self.now = now
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let day = try Self.day(from: job.payload, now: now())
        let started = ContinuousClock.now
        let report = try await rollup.rollUp(day)
        let elapsed = started.duration(to: .now)
        context.logger.info("analytics day rolled up", metadata: [
            "day": "\(day)", "job_rows": "\(report.jobs.count)",
            LogKey.durationMs: "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
        ])
    }

    static func day(from payload: String, now: Date) throws -> AnalyticsDay {
        let object = try JSONPayload.object(payload, kind: "analytics.rollup")
        for key in object.keys where key != "day" {
            throw JobFailure.permanent("analytics.rollup payload: unknown field \"\(key)\" (known: day)", code: "payload_invalid")
        }
        guard let value = object["day"] else { return AnalyticsDay.yesterday(now: now) }
        guard case .string(let text) = value, let day = AnalyticsDay(text) else {
            throw JobFailure.permanent("analytics.rollup payload: day must be a date YYYY-MM-DD", code: "payload_invalid")
        }
        return day
    }
}
