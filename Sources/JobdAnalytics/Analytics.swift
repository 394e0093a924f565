import Foundation
import JobdCore

/// A UTC calendar day, `YYYY-MM-DD`: the unit of the daily rollups.
public struct AnalyticsDay: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// Days since 1970-01-01.
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    /// Parses `YYYY-MM-DD` (a real date); nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1...12).contains(month), (1...WallMinute.daysIn(year: year, month: month)).contains(day)
        else { return nil }
        daysSinceEpoch = WallMinute(year: year, month: month, day: day, hour: 0, minute: 0).daysSinceEpoch
    }

    /// The UTC day an instant falls in.
    public init(containing date: Date) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        daysSinceEpoch = WallMinute(secondsSinceEpoch: seconds).daysSinceEpoch
    }

    /// The day before the one `now` falls in: what a rollup without `day` covers.
    public static func yesterday(now: Date) -> AnalyticsDay {
        AnalyticsDay(daysSinceEpoch: AnalyticsDay(containing: now).daysSinceEpoch - 1)
    }

    public var description: String {
        let (year, month, day) = WallMinute.civil(fromDays: daysSinceEpoch)
        return String(format: "%04d-%02d-%02d", year, month, day)
    }

    /// `[start, end)` as ISO 8601 instants, for `$n::timestamptz` parameters.
    public var startISO: String { description + "T00:00:00Z" }
    public var endISO: String { AnalyticsDay(daysSinceEpoch: daysSinceEpoch + 1).startISO }

    public static func < (lhs: AnalyticsDay, rhs: AnalyticsDay) -> Bool { lhs.daysSinceEpoch < rhs.daysSinceEpoch }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let day = AnalyticsDay(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not YYYY-MM-DD"))
        }
        self = day
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One day's rollup across the tiers: what `analytics.rollup` stores in
/// `analytics.daily_*` and `jobd report` prints.
public struct DailyReport: Sendable, Equatable, Codable {
    public struct Jobs: Sendable, Equatable, Codable {
        public var kind: String
        public var outcome: String
        public var attempts: Int
        public var waitP50Ms: Double?, waitP95Ms: Double?, waitP99Ms: Double?
        public var runP50Ms: Double?, runP95Ms: Double?, runP99Ms: Double?
        public init(
            kind: String, outcome: String, attempts: Int, waitP50Ms: Double? = nil, waitP95Ms: Double? = nil,
            waitP99Ms: Double? = nil, runP50Ms: Double? = nil, runP95Ms: Double? = nil, runP99Ms: Double? = nil
        ) {
            self.kind = kind
            self.outcome = outcome
            self.attempts = attempts
            (self.waitP50Ms, self.waitP95Ms, self.waitP99Ms) = (waitP50Ms, waitP95Ms, waitP99Ms)
            (self.runP50Ms, self.runP95Ms, self.runP99Ms) = (runP50Ms, runP95Ms, runP99Ms)
        }
    }

    public struct Events: Sendable, Equatable, Codable {
        public var name: String
        public var events: Int
        public var total: Double
        public var min: Double?, max: Double?, avg: Double?
        public init(name: String, events: Int, total: Double, min: Double?, max: Double?, avg: Double?) {
            self.name = name
            self.events = events
            self.total = total
            (self.min, self.max, self.avg) = (min, max, avg)
        }
    }

    public struct Content: Sendable, Equatable, Codable {
        public var tenantID: String
        public var messages: Int
        public var rawBytes: Int64
        public var storedBytes: Int64
        public var compressionRatio: Double?
        public init(tenantID: String, messages: Int, rawBytes: Int64, storedBytes: Int64, compressionRatio: Double?) {
            self.tenantID = tenantID
            self.messages = messages
            self.rawBytes = rawBytes
            self.storedBytes = storedBytes
            self.compressionRatio = compressionRatio
        }
    }

    public struct Notifications: Sendable, Equatable, Codable {
        public var channel: String
        public var notifications: Int
        public var sent: Int
        public var failed: Int
        public var deliveryRate: Double?
        public var attempts: Int
        public var failedAttempts: Int
        public var latencyP50Ms: Double?, latencyP95Ms: Double?, latencyP99Ms: Double?
        public init(
            channel: String, notifications: Int = 0, sent: Int = 0, failed: Int = 0, deliveryRate: Double? = nil,
            attempts: Int = 0, failedAttempts: Int = 0, latencyP50Ms: Double? = nil, latencyP95Ms: Double? = nil,
            latencyP99Ms: Double? = nil
        ) {
            self.channel = channel
            self.notifications = notifications
            self.sent = sent
            self.failed = failed
            self.deliveryRate = deliveryRate
            self.attempts = attempts
            self.failedAttempts = failedAttempts
            (self.latencyP50Ms, self.latencyP95Ms, self.latencyP99Ms) = (latencyP50Ms, latencyP95Ms, latencyP99Ms)
        }
    }

    /// Whether a section could be computed: `ok`, `source_missing` (the tier's table
    /// does not exist), `source_invalid` (it lacks an expected column),
    /// `source_trimmed` (retention deleted its source rows before it was rolled up).
    public struct Section: Sendable, Equatable, Codable {
        public var section: String
        public var status: String
        public var detail: String?
        public var sourceRows: Int
        public init(section: String, status: String, detail: String? = nil, sourceRows: Int = 0) {
            self.section = section
            self.status = status
            self.detail = detail
            self.sourceRows = sourceRows
        }
    }

    public var day: AnalyticsDay
    /// False when computed on the fly because the day has not been rolled up.
    public var stored: Bool
    public var jobs: [Jobs] = []
    public var events: [Events] = []
    public var content: [Content] = []
    public var notifications: [Notifications] = []
    public var campaigns: [Campaign] = []
    public var sections: [Section] = []

    public init(day: AnalyticsDay, stored: Bool) {
        self.day = day
        self.stored = stored
    }

    /// The content totals across tenants, with the overall compression ratio.
    public var contentTotal: Content {
        let raw = content.map(\.rawBytes).reduce(0, +)
        let stored = content.map(\.storedBytes).reduce(0, +)
        return Content(
            tenantID: "*", messages: content.map(\.messages).reduce(0, +), rawBytes: raw, storedBytes: stored,
            compressionRatio: stored > 0 ? Double(raw) / Double(stored) : nil)
    }

    /// A plain-text rendering for `jobd report`.
    public func text() -> String {
        var lines: [String] = []
        lines.append("analytics for \(day) (UTC)\(stored ? "" : " — not rolled up yet; computed now from the tiers")")
        for section in sections where section.status != "ok" {
            lines.append("  \(section.section): \(section.status)\(section.detail.map { " (\($0))" } ?? "")")
        }
        func ms(_ value: Double?) -> String {
            guard let value else { return "-" }
            return value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
        }
        func table(_ header: [String], _ rows: [[String]]) {
            let widths = header.indices.map { column in
                ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
            }
            func line(_ cells: [String]) -> String {
                "  " + cells.enumerated().map { index, cell in
                    index == 0 || index == 1 && header[1] == "outcome"
                        ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[index] - cell.count) + cell
                }.joined(separator: "  ")
            }
            lines.append(line(header))
            rows.forEach { lines.append(line($0)) }
        }
        lines.append("")
        lines.append("jobs (attempts finished; wait = due → start, run = handler time; ms)")
        if jobs.isEmpty {
            lines.append("  none")
        } else {
            table(
                ["kind", "outcome", "attempts", "wait p50", "p95", "p99", "run p50", "p95", "p99"],
                jobs.map {
                    [$0.kind, $0.outcome, String($0.attempts), ms($0.waitP50Ms), ms($0.waitP95Ms), ms($0.waitP99Ms),
                     ms($0.runP50Ms), ms($0.runP95Ms), ms($0.runP99Ms)]
                })
        }
        lines.append("")
        lines.append("events (metrics.emit)")
        if events.isEmpty {
            lines.append("  none")
        } else {
            table(["name", "events", "total", "min", "max", "avg"], events.map {
                [$0.name, String($0.events), ms($0.total), ms($0.min), ms($0.max), ms($0.avg)]
            })
        }
        lines.append("")
        lines.append("content (messages stored)")
        if content.isEmpty {
            lines.append("  none")
        } else {
            func ratio(_ value: Double?) -> String { value.map { String(format: "%.2fx", $0) } ?? "-" }
            table(["tenant", "messages", "raw bytes", "stored bytes", "ratio"], ([contentTotal] + content).map {
                [$0.tenantID == "*" ? "(all)" : $0.tenantID, String($0.messages), String($0.rawBytes),
                 String($0.storedBytes), ratio($0.compressionRatio)]
            })
        }
        lines.append("")
        lines.append("notifications (per channel; latency of delivery attempts, ms)")
        if notifications.isEmpty {
            lines.append("  none")
        } else {
            table(
                ["channel", "total", "sent", "failed", "delivery", "attempts", "failed att.", "lat p50", "p95", "p99"],
                notifications.map {
                    [$0.channel, String($0.notifications), String($0.sent), String($0.failed),
                     $0.deliveryRate.map { String(format: "%.1f%%", $0 * 100) } ?? "-", String($0.attempts),
                     String($0.failedAttempts), ms($0.latencyP50Ms), ms($0.latencyP95Ms), ms($0.latencyP99Ms)]
                })
        }
        lines.append("")
        lines.append("campaigns (deliveries whose last change fell on the day; send = fan-out → relay accepted, ms)")
        lines += Self.campaignLines(campaigns)
        return lines.joined(separator: "\n")
    }
}
