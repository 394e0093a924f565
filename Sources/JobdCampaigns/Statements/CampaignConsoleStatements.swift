import JobdCore
import JobdPostgres

/// The web console's list of campaigns: the newest ids (each one's figures then come
/// from `CampaignStatus.load`).
enum CampaignConsoleStatements {
    struct RecentIDs: PostgresStatement {
        var limit: Int
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(limit)] }
        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("id") }
        static let sql: SQL = "SELECT id FROM oltp.campaigns ORDER BY id DESC LIMIT $1::int"
    }
}

extension CampaignStatus {
    /// The newest `limit` campaigns with their figures, newest first.
    public static func recent(_ connection: PostgresConnection, limit: Int) async throws -> [CampaignStatus] {
        var list: [CampaignStatus] = []
        for id in try await connection.rows(CampaignConsoleStatements.RecentIDs(limit: max(1, min(limit, 100)))) {
            if let status = try await load(connection, id: id) { list.append(status) }
        }
        return list
    }
}
