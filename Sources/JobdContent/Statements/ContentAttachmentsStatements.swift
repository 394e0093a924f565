import JobdPostgres

/// `content.message_attachments` and `content.attachment_blobs`: a message's links
/// to its attachments, and the de-duplicated blobs they name (written by
/// `ContentMessagesStatements.Write`).
enum ContentAttachmentsStatements {
    /// A message's attachments in their order, with their blobs.
    struct OfMessage: PostgresStatement {
        var messageID: Int64

        struct Row: Sendable, Equatable {
            var filename: String
            var contentType: String
            var sha256: String
            var value: ContentBodiesStatements.StoredValue
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(messageID)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(filename: try row.decode("filename"), contentType: try row.decode("content_type"),
                sha256: try row.decode("sha256"),
                value: .init(codec: try row.decode("codec"), rawBytes: try row.decode("raw_bytes"),
                             hex: try row.decode("data")))
        }

        static let sql: SQL = """
            SELECT a.filename, a.content_type, a.sha256, b.codec, b.raw_bytes, b.data
              FROM content.message_attachments a
              JOIN content.attachment_blobs b ON b.tenant_id = a.tenant_id AND b.sha256 = a.sha256
             WHERE a.message_id = $1
             ORDER BY a.position
            """
    }

    /// Deletes the candidate blobs nothing references (the pairs `tenants[i]`,
    /// `hashes[i]`). A blob a concurrent write is linking right now is locked by that
    /// write's foreign-key check and skipped.
    struct DeleteOrphanBlobs: PostgresStatement {
        var tenants: [String]
        var hashes: [String]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.textArray(tenants), .textArray(hashes)] }

        static let sql: SQL = """
            DELETE FROM content.attachment_blobs b
             WHERE (b.tenant_id, b.sha256) IN (
                    SELECT x.tenant_id, x.sha256
                      FROM content.attachment_blobs x
                      JOIN unnest($1::text[], $2::text[]) AS c (tenant_id, sha256)
                        ON x.tenant_id = c.tenant_id AND x.sha256 = c.sha256
                     WHERE NOT EXISTS (SELECT 1 FROM content.message_attachments a
                                        WHERE a.tenant_id = x.tenant_id AND a.sha256 = x.sha256)
                       FOR UPDATE OF x SKIP LOCKED)
            """
    }
}
