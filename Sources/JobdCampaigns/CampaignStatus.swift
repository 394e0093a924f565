import JobdCore
import JobdPostgres
import JobdQueue

/// Where a campaign stands (`jobd campaign status`).
public struct CampaignStatus: Sendable, Equatable, Codable {
    public var id: Int64
    public var name: String
    public var status: String
    /// List members when the fan-out is still running, else the deliveries made.
    public var recipients: Int
    public var fannedOut: Int
    public var pending: Int
    public var sending: Int
    public var delivered: Int
    public var deferred: Int
    public var bounced: Int
    public var failed: Int
    public var suppressed: Int
    public var cancelled: Int
    /// Delivered per second since the first delivery (nil before two deliveries).
    public var rate: Double?
    /// Seconds until the open deliveries are sent at `rate` (nil without a rate or
    /// when nothing is open).
    public var etaSeconds: Double?
    public var startedAt: String?
    public var finishedAt: String?
    /// What limits the sending rate right now.
    public var limitedBy: RateLimit

    /// What limits a campaign's rate, from what its daemons measured in their last
    /// window (`oltp.campaign_senders`) and its deliveries' states.
    public struct RateLimit: Sendable, Equatable, Codable {
        /// `paused`, `smtp_pool`, `domain_throttle`, `account_throttle`, `database`,
        /// `relay`, `relay_deferrals`, `queue` (no batch running while recipients
        /// wait) or `none` (nothing to send).
        public var reason: String
        public var detail: String

        public init(reason: String, detail: String) {
            self.reason = reason
            self.detail = detail
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, status, recipients, pending, sending, delivered, deferred, bounced, failed, suppressed, cancelled, rate
        case fannedOut = "fanned_out"
        case etaSeconds = "eta_seconds"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case limitedBy = "limited_by"
    }

    public static func load(_ connection: PostgresConnection, id: Int64) async throws -> CampaignStatus? {
        guard let row = try await connection.firstRow(CampaignCampaignsStatements.Status(id: id)) else { return nil }
        let senders = row.status == "sending" ? try await connection.firstRow(CampaignSendersStatements.Senders(id: id)) : nil
        return try await withDomainBacklog(assemble(id: id, row: row, senders: senders), senders: senders, connection)
    }

    /// Under a domain throttle, that domain's recipients go no faster than its rate (per
    /// daemon), whatever the overall rate: the ETA becomes at least their backlog at that
    /// rate. One more statement, only for a campaign a domain throttle limits now.
    static func withDomainBacklog(
        _ status: CampaignStatus, senders: CampaignSendersStatements.Senders.Row?, _ connection: PostgresConnection
    ) async throws -> CampaignStatus {
        guard status.limitedBy.reason == "domain_throttle", let senders, let domain = senders.throttledDomain,
              let backlog = try await connection.firstRow(CampaignSendersStatements.DomainBacklog(id: status.id, domain: domain)),
              let rate = backlog.rate, rate > 0, backlog.open > 0
        else { return status }
        var status = status
        let domainEta = (Double(backlog.open) / (rate * Double(max(1, senders.daemons)))).rounded()
        status.etaSeconds = max(status.etaSeconds ?? 0, domainEta)
        return status
    }

    /// The figures from campaign `id`'s status row and, while it sends, its senders' row.
    static func assemble(
        id: Int64, row: CampaignCampaignsStatements.Status.Row, senders: CampaignSendersStatements.Senders.Row?
    ) -> CampaignStatus {
        var status = CampaignStatus(
            id: id, name: row.name, status: row.status,
            recipients: row.fanoutDone ? row.deliveries : max(row.members, row.deliveries),
            fannedOut: row.deliveries, pending: row.pending, sending: row.sending, delivered: row.sent,
            deferred: row.deferred, bounced: row.bounced, failed: row.failed, suppressed: row.suppressed,
            cancelled: row.cancelled, rate: nil, etaSeconds: nil, startedAt: row.startedAt, finishedAt: row.finishedAt,
            limitedBy: RateLimit(reason: "none", detail: "nothing to send"))
        if let span = row.sendingSpan, span > 0, status.delivered > 1 {
            let rate = Double(status.delivered - 1) / span
            status.rate = (rate * 10).rounded() / 10
            let open = status.recipients - status.delivered - status.bounced - status.failed - status.suppressed - status.cancelled
            if open > 0, ["sending", "scheduled"].contains(status.status) { status.etaSeconds = (Double(open) / rate).rounded() }
        }
        status.limitedBy = limit(row, senders: senders)
        return status
    }

    /// The reason, from the campaign's state and its daemons' last windows.
    static func limit(_ row: CampaignCampaignsStatements.Status.Row, senders: CampaignSendersStatements.Senders.Row?) -> RateLimit {
        switch row.status {
        case "paused":
            return RateLimit(reason: "paused", detail: "paused: " + (row.pauseReason ?? "paused by request"))
        case "sending":
            break
        case "scheduled":
            return RateLimit(reason: "none", detail: "nothing yet: waiting for the send time or the preparation")
        default:
            return RateLimit(reason: "none", detail: "nothing: the campaign is \(row.status)")
        }
        let waiting = row.pending + row.sending
        guard let senders, senders.daemons > 0 else {
            if waiting + row.deferred == 0 {
                return row.fanoutDone
                    ? RateLimit(reason: "none", detail: "nothing: no recipient is open")
                    : RateLimit(reason: "queue", detail: "the fan-out: no delivery is enqueued yet")
            }
            if waiting == 0 {
                return RateLimit(reason: "relay_deferrals", detail: "the relay's deferrals: \(row.deferred) recipients wait for a retry")
            }
            return RateLimit(reason: "queue", detail: "the queue: no delivery batch is running (waiting for workers)")
        }
        if senders.sends > 0, Double(senders.deferrals) >= 0.2 * Double(senders.sends) {
            return RateLimit(
                reason: "relay_deferrals",
                detail: "the relay's deferrals: \(senders.deferrals) of the last \(senders.sends) sends were deferred")
        }
        let parts: [(String, Double, String)] = [
            ("smtp_pool", senders.poolWait, "SMTP pool: all \(senders.slots) SMTP workers busy (JOBD_CAMPAIGN_CONCURRENCY)"),
            ("domain_throttle", senders.domainWait, "domain throttle: \(senders.throttledDomain ?? "?") (oltp.domain_limits)"),
            ("account_throttle", senders.accountWait, "account throttle: the account's messages_per_second"),
            ("database", senders.database, "the database: statements of the OLTP tier"),
            ("relay", senders.smtp, "the relay: SMTP transactions"),
        ]
        let total = parts.map(\.1).reduce(0, +)
        guard total > 0, let top = parts.max(by: { $0.1 < $1.1 }) else {
            return RateLimit(reason: "none", detail: "nothing measured in the last window")
        }
        let share = Int((100 * top.1 / total).rounded())
        return RateLimit(reason: top.0, detail: "\(top.2), \(share)% of the sending time")
    }

    /// The text `jobd campaign status` prints.
    public var text: String {
        var lines = [
            "campaign \(id) \"\(name)\": \(status)",
            "recipients  \(recipients) (\(fannedOut) fanned out)",
            "pending     \(pending + sending)",
            "delivered   \(delivered)",
            "deferred    \(deferred)",
            "bounced     \(bounced)",
            "suppressed  \(suppressed)",
        ]
        if failed > 0 { lines.append("failed      \(failed)") }
        if cancelled > 0 { lines.append("cancelled   \(cancelled)") }
        lines.append("rate        " + (rate.map { "\($0)/s" } ?? "-"))
        lines.append("eta         " + (etaSeconds.map { "\(Int($0)) s" } ?? "-"))
        lines.append("limited by  \(limitedBy.detail)")
        if let startedAt { lines.append("started     \(startedAt)") }
        if let finishedAt { lines.append("finished    \(finishedAt)") }
        return lines.joined(separator: "\n")
    }
}
