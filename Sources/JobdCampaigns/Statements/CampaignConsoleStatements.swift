import JobdCore
import JobdPostgres

/// The web console's list of campaigns: the newest campaigns with their delivery
/// figures in one statement.
enum CampaignConsoleStatements {
    /// The newest `limit` campaigns, newest first, each with the columns of
    /// `CampaignCampaignsStatements.Status` (`CampaignStatusColumns`, decoded by `Status`).
    struct Recent: PostgresStatement {
        var limit: Int
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(limit)] }

        static func decode(_ row: PostgresRow) throws -> (id: Int64, status: CampaignCampaignsStatements.Status.Row) {
            (try row.decode("id"), try CampaignCampaignsStatements.Status.decode(row))
        }

        static let sql: SQL = CampaignStatusColumns.select + """

              FROM (SELECT * FROM oltp.campaigns ORDER BY id DESC LIMIT $1::int) c
            """ + CampaignStatusColumns.deliveryCounts + """

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
