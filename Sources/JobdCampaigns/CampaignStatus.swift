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
        let result = try await connection.query("""
            SELECT c.id, c.name, c.status, c.fanout_done,
                   (SELECT count(*) FROM oltp.list_members m WHERE m.list_id = c.list_id),
                   count(d.contact_id),
                   count(*) FILTER (WHERE d.state = 'pending'), count(*) FILTER (WHERE d.state = 'sending'),
                   count(*) FILTER (WHERE d.state = 'sent'), count(*) FILTER (WHERE d.state = 'deferred'),
                   count(*) FILTER (WHERE d.state = 'bounced'), count(*) FILTER (WHERE d.state = 'failed'),
                   count(*) FILTER (WHERE d.state = 'suppressed'), count(*) FILTER (WHERE d.state = 'cancelled'),
                   extract(epoch FROM max(d.sent_at) - min(d.sent_at))::float8,
                   to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(c.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
              FROM oltp.campaigns c LEFT JOIN oltp.deliveries d ON d.campaign_id = c.id
             WHERE c.id = $1
             GROUP BY c.id
            """, [String(id)])
        guard let row = result.rows.first else { return nil }
        func int(_ i: Int) -> Int { Int(row[i] ?? "") ?? 0 }
        let fanoutDone = row[3] == "t"
        var status = CampaignStatus(
            id: id, name: row[1] ?? "", status: row[2] ?? "", recipients: fanoutDone ? int(5) : max(int(4), int(5)),
            fannedOut: int(5), pending: int(6), sending: int(7), delivered: int(8), deferred: int(9), bounced: int(10),
            failed: int(11), suppressed: int(12), cancelled: int(13), rate: nil, etaSeconds: nil,
            startedAt: row[15], finishedAt: row[16])
        if let span = Double(row[14] ?? ""), span > 0, status.delivered > 1 {
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
