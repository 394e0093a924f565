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

    enum CodingKeys: String, CodingKey {
        case id, name, status, recipients, pending, sending, delivered, deferred, bounced, failed, suppressed, cancelled, rate
        case fannedOut = "fanned_out"
        case etaSeconds = "eta_seconds"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }

    public static func load(_ connection: PostgresConnection, id: Int64) async throws -> CampaignStatus? {
        guard let row = try await connection.firstRow(CampaignCampaignsStatements.Status(id: id)) else { return nil }
        var status = CampaignStatus(
            id: id, name: row.name, status: row.status,
            recipients: row.fanoutDone ? row.deliveries : max(row.members, row.deliveries),
            fannedOut: row.deliveries, pending: row.pending, sending: row.sending, delivered: row.sent,
            deferred: row.deferred, bounced: row.bounced, failed: row.failed, suppressed: row.suppressed,
            cancelled: row.cancelled, rate: nil, etaSeconds: nil, startedAt: row.startedAt, finishedAt: row.finishedAt)
        if let span = row.sendingSpan, span > 0, status.delivered > 1 {
            let rate = Double(status.delivered - 1) / span
            status.rate = (rate * 10).rounded() / 10
            let open = status.recipients - status.delivered - status.bounced - status.failed - status.suppressed - status.cancelled
            if open > 0, ["sending", "scheduled"].contains(status.status) { status.etaSeconds = (Double(open) / rate).rounded() }
        }
        return status
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
        if let startedAt { lines.append("started     \(startedAt)") }
        if let finishedAt { lines.append("finished    \(finishedAt)") }
        return lines.joined(separator: "\n")
    }
}
