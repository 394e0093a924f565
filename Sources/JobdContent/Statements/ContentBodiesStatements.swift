import JobdPostgres

/// `content.bodies`: a message's stored bodies (written by
/// `ContentMessagesStatements.Write`, deleted by its `Expire`).
enum ContentBodiesStatements {
    /// A stored value as its row holds it: the codec, the size before compression,
    /// and the data as `bytea` hex text.
    struct StoredValue: Sendable, Equatable {
        var codec: String
        var rawBytes: Int
        var hex: String
    }

    /// A message's bodies, html before text: a text part may be deflated against the HTML.
    struct OfMessage: PostgresStatement {
        var messageID: Int64

        struct Row: Sendable, Equatable {
            var part: String
            var value: StoredValue
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(messageID)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(part: try row.decode("part"),
                value: StoredValue(codec: try row.decode("codec"), rawBytes: try row.decode("raw_bytes"),
                                   hex: try row.decode("data")))
        }

        static let sql: SQL = """
            SELECT part, codec, raw_bytes, data FROM content.bodies WHERE message_id = $1 ORDER BY part
            """
    }
}
