import JobdCore
import JobdPostgres

/// The web console's list of campaigns: the newest campaigns with their delivery
/// figures in one statement.
enum CampaignConsoleStatements {
    /// The newest `limit` campaigns, newest first, each with the columns of
    /// `CampaignCampaignsStatements.Status` (decoded by it): each campaign's deliveries
    /// are counted by a LATERAL aggregate over its rows of the deliveries' primary key
    /// (campaign_id, contact_id), so the list costs one statement, not one per campaign.
    struct Recent: PostgresStatement {
        var limit: Int
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(limit)] }

        static func decode(_ row: PostgresRow) throws -> (id: Int64, status: CampaignCampaignsStatements.Status.Row) {
            (try row.decode("id"), try CampaignCampaignsStatements.Status.decode(row))
        }

        static let sql: SQL = """
            SELECT c.id, c.name, c.status, c.fanout_done,
                   (SELECT count(*) FROM oltp.list_members m WHERE m.list_id = c.list_id) AS members,
                   d.deliveries, d.pending, d.sending, d.sent, d.deferred, d.bounced, d.failed, d.suppressed,
                   d.cancelled, d.sending_span,
                   to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS started_at,
                   to_char(c.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS finished_at,
                   c.pause_reason
              FROM (SELECT * FROM oltp.campaigns ORDER BY id DESC LIMIT $1::int) c
              CROSS JOIN LATERAL (
                SELECT count(*) AS deliveries,
                       count(*) FILTER (WHERE x.state = 'pending') AS pending,
                       count(*) FILTER (WHERE x.state = 'sending') AS sending,
                       count(*) FILTER (WHERE x.state = 'sent') AS sent,
                       count(*) FILTER (WHERE x.state = 'deferred') AS deferred,
                       count(*) FILTER (WHERE x.state = 'bounced') AS bounced,
                       count(*) FILTER (WHERE x.state = 'failed') AS failed,
                       count(*) FILTER (WHERE x.state = 'suppressed') AS suppressed,
                       count(*) FILTER (WHERE x.state = 'cancelled') AS cancelled,
                       extract(epoch FROM max(x.sent_at) - min(x.sent_at))::float8 AS sending_span
                  FROM oltp.deliveries x WHERE x.campaign_id = c.id) d
             ORDER BY c.id DESC
            """
    }
}

extension CampaignStatus {
    /// The newest `limit` campaigns with their figures, newest first: one statement for
    /// all of them, plus one for the senders of each campaign that is sending now (and
    /// one more for a campaign a domain throttle limits).
    public static func recent(_ connection: PostgresConnection, limit: Int) async throws -> [CampaignStatus] {
        var list: [CampaignStatus] = []
        for (id, row) in try await connection.rows(CampaignConsoleStatements.Recent(limit: max(1, min(limit, 100)))) {
            let senders = row.status == "sending"
                ? try await connection.firstRow(CampaignSendersStatements.Senders(id: id)) : nil
            list.append(try await withDomainBacklog(assemble(id: id, row: row, senders: senders), senders: senders, connection))
        }
        return list
    }
}
