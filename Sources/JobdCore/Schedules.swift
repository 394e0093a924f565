import Foundation

/// A periodic job: a cron schedule in a time zone that enqueues `kind` once per slot,
/// however many daemons run it (the slot's unique key is `cron:<name>:<slot>`).
///
/// In `JOBD_SCHEDULES` (or `schedules:` in the file: a block string or a list) one entry per
/// line or separated by `;`:
///
///     NAME = MIN HOUR DOM MON DOW [TIME_ZONE] KIND [PAYLOAD]
///     NAME = @daily [TIME_ZONE] KIND [PAYLOAD]
///     NAME = off
///
/// e.g. `nightly-digest = 0 6 * * MON-FRI Europe/Berlin digest.send {"to": "ops"}`.
/// The time zone defaults to UTC. The payload is a JSON object (default `{}`) in
/// which the strings `${slot}`, `${slot_date}` and `${previous_date}` become the
/// slot's UTC time (ISO 8601), its UTC date and the UTC date before it — so a job
/// that runs late still knows which period it is for. An entry with the name of a
/// built-in schedule replaces it; `NAME = off` removes it.
public struct ScheduledJob: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var cron: CronSchedule
    public var kind: String
    /// A JSON object, possibly with `${…}` placeholders.
    public var payload: String

    public init(name: String, cron: CronSchedule, kind: String, payload: String = "{}") {
        self.name = name
        self.cron = cron
        self.kind = kind
        self.payload = payload
    }

    public var description: String { "\(name) = \(cron.expression) \(cron.timeZone.identifier) \(kind) \(payload)" }

    /// The key that makes a slot's job unique across daemons.
    public func uniqueKey(for slot: Date) -> String { "cron:\(name):\(Self.isoTime(slot))" }

    /// The payload with the slot's placeholders filled in.
    public func payload(for slot: Date) -> String {
        let seconds = Int64(slot.timeIntervalSince1970.rounded(.down))
        let today = WallMinute(secondsSinceEpoch: seconds)
        let yesterday = WallMinute(secondsSinceEpoch: seconds - 86_400)
        return payload
            .replacingOccurrences(of: "${slot}", with: Self.isoTime(slot))
            .replacingOccurrences(of: "${slot_date}", with: Self.isoDate(today))
            .replacingOccurrences(of: "${previous_date}", with: Self.isoDate(yesterday))
    }

    /// `2026-03-29T01:00:00Z`.
    public static func isoTime(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let wall = WallMinute(secondsSinceEpoch: seconds)
        let second = Int(seconds - wall.secondsSinceEpoch)
        return isoDate(wall) + "T" + pad(wall.hour) + ":" + pad(wall.minute) + ":" + pad(second) + "Z"
    }

    static func isoDate(_ wall: WallMinute) -> String {
        String(wall.year) + "-" + pad(wall.month) + "-" + pad(wall.day)
    }

    private static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    // MARK: Built-in schedules

    /// Rolls up yesterday (UTC) at 00:15 UTC, and prunes finished jobs every hour
    /// (hourly keeps each prune small: a day of completed jobs at full speed is
    /// hundreds of millions of rows). The retention jobs run hourly too, at minutes
    /// of their own; `analytics.trim` daily, after the rollup.
    public static let defaults: [ScheduledJob] = [
        ScheduledJob(
            name: "analytics-rollup", cron: try! CronSchedule("15 0 * * *"), kind: "analytics.rollup",
            payload: #"{"day": "${previous_date}"}"#),
        ScheduledJob(name: "queue-prune", cron: try! CronSchedule("30 * * * *"), kind: "queue.prune"),
        ScheduledJob(name: "queue-trim", cron: try! CronSchedule("40 * * * *"), kind: "queue.trim"),
        ScheduledJob(name: "notifications-trim", cron: try! CronSchedule("50 * * * *"), kind: "notifications.trim"),
        ScheduledJob(name: "analytics-trim", cron: try! CronSchedule("45 0 * * *"), kind: "analytics.trim"),
    ]

    /// Content retention (`content.purge`) every hour at :20, built in once
    /// `JOBD_CONTENT_RETENTION` is set: without it no message expires unless a
    /// tenant has its own row in `content.tenant_retention`, and such a setup names
    /// its schedule itself.
    public static let contentPurge = ScheduledJob(
        name: "content-purge", cron: try! CronSchedule("20 * * * *"), kind: "content.purge")

    /// The built-in schedules for a configuration: `defaults`, plus `content-purge`
    /// when content retention is configured.
    public static func builtIns(contentRetention: Bool) -> [ScheduledJob] {
        contentRetention ? defaults + [contentPurge] : defaults
    }

    // MARK: Parsing

    /// One parsed entry: a schedule, or `NAME = off`.
    public enum Entry: Sendable, Equatable {
        case job(ScheduledJob)
        case off(String)

        public var name: String {
            switch self {
            case .job(let job): job.name
            case .off(let name): name
            }
        }
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The built-in schedules with `text`'s entries applied (replace by name, `off` removes).
    public static func resolve(_ text: String?, defaults: [ScheduledJob] = defaults) throws(ParseError) -> [ScheduledJob] {
        var result = defaults
        for entry in try parseList(text ?? "") {
            result.removeAll { $0.name == entry.name }
            if case .job(let job) = entry { result.append(job) }
        }
        return result
    }

    public static func parseList(_ text: String) throws(ParseError) -> [Entry] {
        var entries: [Entry] = []
        for raw in splitEntries(text) {
            let entry = try parseEntry(raw)
            guard !entries.contains(where: { $0.name == entry.name }) else {
                throw ParseError(message: "schedule \"\(entry.name)\" is given twice")
            }
            entries.append(entry)
        }
        return entries
    }

    public static func parseEntry(_ text: String) throws(ParseError) -> Entry {
        guard let equals = text.firstIndex(of: "=") else {
            throw ParseError(message: "\"\(text)\": expected NAME = CRON [TIME_ZONE] KIND [PAYLOAD]")
        }
        let name = String(text[..<equals]).trimmingSpaces()
        guard (1...64).contains(name.count),
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else { throw ParseError(message: "schedule name \"\(name)\": use 1-64 letters, digits, - _ .") }
        var rest = Substring(text[text.index(after: equals)...])
        func token() -> String? {
            while let first = rest.first, first.isWhitespace { rest.removeFirst() }
            guard !rest.isEmpty, rest.first != "{" else { return nil }
            let end = rest.firstIndex(where: \.isWhitespace) ?? rest.endIndex
            defer { rest = rest[end...] }
            return String(rest[..<end])
        }
        guard let first = token() else { throw ParseError(message: "schedule \(name): nothing after =") }
        if first.lowercased() == "off" {
            guard token() == nil, String(rest).trimmingSpaces().isEmpty else {
                throw ParseError(message: "schedule \(name): nothing may follow off")
            }
            return .off(name)
        }
        var cronFields = [first]
        if !first.hasPrefix("@") {
            for _ in 0..<4 {
                guard let field = token() else { throw ParseError(message: "schedule \(name): expected 5 cron fields") }
                cronFields.append(field)
            }
        }
        guard var kind = token() else { throw ParseError(message: "schedule \(name): missing the job kind") }
        var zone = TimeZone(identifier: "UTC")!
        if let named = TimeZone(identifier: kind), kind.contains("/") || kind.uppercased() == kind {
            // The token after the fields is a time zone when it names one (`UTC`,
            // `Europe/Berlin`); kinds are lower-case words like `analytics.rollup`.
            zone = named
            guard let next = token() else { throw ParseError(message: "schedule \(name): missing the job kind") }
            kind = next
        } else if kind.contains("/") {
            throw ParseError(message: "schedule \(name): unknown time zone \"\(kind)\"")
        }
        guard (1...128).contains(kind.count) else { throw ParseError(message: "schedule \(name): bad kind \"\(kind)\"") }
        let cron: CronSchedule
        do {
            cron = try CronSchedule(cronFields.joined(separator: " "), timeZone: zone)
        } catch {
            throw ParseError(message: "schedule \(name): \(error.message)")
        }
        let payloadText = String(rest).trimmingSpaces()
        let payload = payloadText.isEmpty ? "{}" : payloadText
        guard case .object = try? JSONDecoder().decode(JSONValue.self, from: Data(payload.utf8)) else {
            throw ParseError(message: "schedule \(name): the payload must be a JSON object, got \(payload)")
        }
        return .job(ScheduledJob(name: name, cron: cron, kind: kind, payload: payload))
    }

    /// Splits on newlines and `;` outside JSON strings and objects.
    static func splitEntries(_ text: String) -> [String] {
        var entries: [String] = []
        var current = ""
        var depth = 0, inString = false, escaped = false
        for ch in text {
            if inString {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false }
            } else if ch == "\"" && depth > 0 {
                inString = true
            } else if ch == "{" || ch == "[" {
                depth += 1
            } else if ch == "}" || ch == "]" {
                depth = max(0, depth - 1)
            } else if depth == 0 && (ch == ";" || ch.isNewline) {
                entries.append(current)
                current = ""
                continue
            }
            current.append(ch)
        }
        entries.append(current)
        return entries.map { $0.trimmingSpaces() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
}
