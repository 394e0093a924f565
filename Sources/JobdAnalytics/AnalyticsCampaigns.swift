import Foundation
import JobdCore
import JobdPostgres
import JobdQueue

extension DailyReport {
    /// One campaign's deliveries whose last change fell on the day (or, in a
    /// `CampaignReport`'s total, all of them).
    public struct Campaign: Sendable, Equatable, Codable {
        public var campaignID: Int64
        public var workspaceID: Int64
        public var name: String
        public var recipients: Int
        public var delivered: Int
        public var bounced: Int
        /// Deferred at least once (4xx or no answer), whatever came after.
        public var deferred: Int
        public var suppressed: Int
        public var failed: Int
        /// Pending, sending, deferred or cancelled when counted.
        public var unfinished: Int
        /// delivered / (delivered + bounced + failed); nil when none was attempted to the end.
        public var deliveryRate: Double?
        /// From the delivery row's creation (fan-out) to the relay's acceptance, sent ones only.
        public var sendP50Ms: Double?
        public var sendP99Ms: Double?

        public init(
            campaignID: Int64, workspaceID: Int64, name: String, recipients: Int, delivered: Int, bounced: Int,
            deferred: Int, suppressed: Int, failed: Int, unfinished: Int, deliveryRate: Double? = nil,
            sendP50Ms: Double? = nil, sendP99Ms: Double? = nil
        ) {
            self.campaignID = campaignID
            self.workspaceID = workspaceID
            self.name = name
            self.recipients = recipients
            self.delivered = delivered
            self.bounced = bounced
            self.deferred = deferred
            self.suppressed = suppressed
            self.failed = failed
            self.unfinished = unfinished
            self.deliveryRate = deliveryRate
            self.sendP50Ms = sendP50Ms
            self.sendP99Ms = sendP99Ms
        }
    }

    /// The campaigns table of `jobd report` (names are producers' text: the caller
    /// escapes the whole report for the terminal).
    static func campaignLines(_ campaigns: [Campaign], days: [String]? = nil) -> [String] {
        guard !campaigns.isEmpty else { return ["  none"] }
        func ms(_ value: Double?) -> String {
            guard let value else { return "-" }
            return value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
        }
        var header = ["campaign", "name", "recipients", "delivered", "bounced", "deferred", "suppressed", "failed",
                      "unfinished", "delivery", "send p50", "p99"]
        var rows = campaigns.map {
            [String($0.campaignID), $0.name, String($0.recipients), String($0.delivered), String($0.bounced),
             String($0.deferred), String($0.suppressed), String($0.failed), String($0.unfinished),
             $0.deliveryRate.map { String(format: "%.1f%%", $0 * 100) } ?? "-", ms($0.sendP50Ms), ms($0.sendP99Ms)]
        }
        if let days {
            header.insert("day", at: 0)
            rows = zip(days, rows).map { [$0] + $1 }
        }
        let leftAligned: Set<String> = ["day", "name"]
        let widths = header.indices.map { column in ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            "  " + cells.enumerated().map { index, cell in
                leftAligned.contains(header[index])
                    ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        return [line(header)] + rows.map(line)
    }
}

/// `jobd report --campaign ID`: the whole campaign, counted now from the OLTP tier,
/// and the days the rollup stored for it.
public struct CampaignReport: Sendable, Equatable, Codable {
    public struct Day: Sendable, Equatable, Codable {
        public var day: String
        public var campaign: DailyReport.Campaign
    }

    public var campaignID: Int64
    /// Nil when the OLTP tier has no delivery of the campaign (never sent, or deleted).
    public var total: DailyReport.Campaign?
    public var days: [Day]

    public func text() -> String {
        var lines = ["campaign \(campaignID)" + (total.map { " \"\($0.name)\"" } ?? "")]
        lines.append("")
        lines.append("all deliveries (counted now from the OLTP tier; send = fan-out → relay accepted, ms)")
        lines += DailyReport.campaignLines(total.map { [$0] } ?? [])
        lines.append("")
        lines.append("per day (the rollup's stored rows; a delivery counts on the UTC day of its last change)")
        lines += DailyReport.campaignLines(days.map(\.campaign), days: days.map(\.day))
        return lines.joined(separator: "\n")
    }
}

extension AnalyticsRollup {
    /// The sections this rollup computes: `campaigns` only when an OLTP database is
    /// configured (`jobd run` and `jobd report` always configure one).
    var configuredSections: [String] {
        Self.sectionNames.filter { $0 != "campaigns" || databases.contains(.oltp) }
    }

    /// The `campaigns` section of `day`, read from the OLTP tier.
    func computeCampaigns(_ day: AnalyticsDay) async throws -> DailyReport {
        var part = DailyReport(day: day, stored: false)
        part.sections = [try await guarded("campaigns", tier: .oltp, tables: ["oltp.campaigns", "oltp.deliveries"]) { connection in
            part.campaigns = try await Self.long(connection, AnalyticsCampaignStatements.Daily(
                start: day.startISO, end: day.endISO, campaignID: nil))
            return part.campaigns.map(\.recipients).reduce(0, +)
        }]
        return part
    }

    /// The stored campaign rows of `day`.
    func loadCampaigns(_ day: AnalyticsDay) async throws -> [DailyReport.Campaign] {
        try await databases[.analytics].withConnection {
            try await $0.rows(AnalyticsCampaignStatements.Load(day: day, campaignID: nil))
        }.map(\.campaign)
    }

    /// One campaign: all its deliveries counted now in the OLTP tier, and its stored days.
    public func campaignReport(_ id: Int64) async throws -> CampaignReport {
        let total = try await databases[.oltp].withConnection {
            try await Self.long($0, AnalyticsCampaignStatements.Daily(start: "-infinity", end: "infinity", campaignID: id))
        }.first
        let days = try await databases[.analytics].withConnection {
            try await $0.rows(AnalyticsCampaignStatements.Load(day: nil, campaignID: id))
        }
        return CampaignReport(campaignID: id, total: total, days: days)
    }
}
