import JobdPostgres

/// `oltp.campaign_attachments`, read by the preparation, and the pause a delivery
/// writes when the content tier no longer holds them.
enum CampaignAttachmentsStatements {
    /// Campaign `$1`'s attachments in their order, the data as `bytea` hex text.
    struct OfCampaign: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT filename, content_type, data FROM oltp.campaign_attachments
             WHERE campaign_id = $1
             ORDER BY position
            """
        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> CampaignStore.Attachment {
            let hex: String = try row.decode("data")
            guard let data = PostgresBytea.decode(hex) else {
                throw PostgresDecodingError(.malformed, column: "data", type: "bytea")
            }
            return CampaignStore.Attachment(filename: try row.decode("filename"), contentType: try row.decode("content_type"), data: data)
        }
    }

    /// scheduled | sending → paused, `pause_reason` `$2` (at most 500 characters).
    struct Pause: PostgresStatement {
        var id: Int64
        var reason: String
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.campaigns SET status = 'paused', pause_reason = left($2, 500)
             WHERE id = $1 AND status IN ('scheduled', 'sending')
            """
        var bindings: PostgresBindings { [.int(id), .text(reason)] }
    }
}
