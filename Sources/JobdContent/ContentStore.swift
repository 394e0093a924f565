import Foundation
import JobdCodec
import JobdCore
import JobdPostgres
import JobdQueue

/// The content tier's SQL. Every operation is one statement (reads of a single
/// message are three), parameterised, with batches passed as arrays.
public struct ContentStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    // MARK: - Write

    public enum WriteOutcome: Sendable, Equatable {
        /// Stored now, as `content.messages.id`.
        case inserted(id: Int64)
        /// Already stored with the same digest: a retry of the same write.
        case duplicate
        /// `external_id` is taken by a message with other content.
        case conflict(existingDigest: String)
        /// Another transaction holds the key but had not committed when this
        /// statement started: try again.
        case raced
    }

    /// Writes the metadata row, body rows, attachment blobs (skipping those the
    /// tenant already has) and attachment links in one statement — one round trip.
    /// `ON CONFLICT (external_id) DO NOTHING` makes a retry a no-op; every child
    /// insert selects from the metadata insert, so a retry inserts no children either.
    public func write(_ prepared: PreparedMessage) async throws -> WriteOutcome {
        let message = prepared.message
        let result = try await connection.query(Self.writeSQL, [
            message.externalID, message.tenantID, message.campaignID, message.from,
            PostgresArray.texts(message.to), message.subject, prepared.headersJSON, prepared.digest,
            String(prepared.rawBytes), String(prepared.storedBytes), String(prepared.links.count), prepared.indexText,
            PostgresArray.texts(prepared.bodies.map(\.part)),
            PostgresArray.texts(prepared.bodies.map(\.codec)),
            PostgresArray.integers(prepared.bodies.map(\.rawBytes)),
            PostgresArray.integers(prepared.bodies.map(\.data.count)),
            PostgresArray.texts(prepared.bodies.map { PostgresBytea.encode($0.data) }),
            PostgresArray.texts(prepared.blobs.map(\.sha256)),
            PostgresArray.texts(prepared.blobs.map(\.codec)),
            PostgresArray.integers(prepared.blobs.map(\.rawBytes)),
            PostgresArray.integers(prepared.blobs.map(\.data.count)),
            PostgresArray.texts(prepared.blobs.map { PostgresBytea.encode($0.data) }),
            PostgresArray.texts(prepared.links.map(\.filename)),
            PostgresArray.texts(prepared.links.map(\.contentType)),
            PostgresArray.texts(prepared.links.map(\.sha256)),
            PostgresArray.integers(prepared.links.map(\.rawBytes)),
        ])
        let row = result.rows.first ?? [nil, nil]
        if let id = row[0].flatMap({ Int64($0) }) { return .inserted(id: id) }
        guard let existing = row[1] else { return .raced }
        return existing == prepared.digest ? .duplicate : .conflict(existingDigest: existing)
    }

    static let writeSQL = """
        WITH msg AS (
            INSERT INTO content.messages (external_id, tenant_id, campaign_id, from_address, to_addresses, subject,
                                          headers, digest, raw_bytes, stored_bytes, attachment_count, index_text)
            VALUES ($1, $2, $3, $4, $5::text[], $6, $7::jsonb, $8, $9::bigint, $10::bigint, $11::integer, $12)
            ON CONFLICT (external_id) DO NOTHING
            RETURNING id, tenant_id
        ), bodies AS (
            INSERT INTO content.bodies (message_id, tenant_id, part, codec, raw_bytes, stored_bytes, data)
            SELECT msg.id, msg.tenant_id, b.part, b.codec, b.raw, b.stored, b.data
              FROM msg, unnest($13::text[], $14::text[], $15::integer[], $16::integer[], $17::bytea[])
                        AS b (part, codec, raw, stored, data)
        ), blobs AS (
            INSERT INTO content.attachment_blobs (tenant_id, sha256, codec, raw_bytes, stored_bytes, data)
            SELECT msg.tenant_id, a.sha256, a.codec, a.raw, a.stored, a.data
              FROM msg, unnest($18::text[], $19::text[], $20::bigint[], $21::bigint[], $22::bytea[])
                        AS a (sha256, codec, raw, stored, data)
            ON CONFLICT (tenant_id, sha256) DO NOTHING
        ), links AS (
            INSERT INTO content.message_attachments (message_id, position, tenant_id, filename, content_type, sha256, raw_bytes)
            SELECT msg.id, l.position, msg.tenant_id, l.filename, l.content_type, l.sha256, l.raw
              FROM msg, unnest($23::text[], $24::text[], $25::text[], $26::bigint[]) WITH ORDINALITY
                        AS l (filename, content_type, sha256, raw, position)
        )
        SELECT (SELECT id FROM msg) AS inserted_id,
               (SELECT digest FROM content.messages WHERE external_id = $1) AS existing_digest
        """

    // MARK: - Search index

    /// Fills `search_vector` for up to `limit` messages that have none, in one
    /// statement, and clears the text it was built from. Returns how many it did.
    /// `SKIP LOCKED` lets several daemons index side by side.
    public func indexPending(limit: Int) async throws -> Int {
        try await connection.query(Self.indexSQL, [String(limit)]).affectedRows
    }

    static let indexSQL = """
        WITH batch AS (
            SELECT id FROM content.messages
             WHERE search_vector IS NULL AND archived_at IS NULL
             ORDER BY id
             LIMIT $1
               FOR UPDATE SKIP LOCKED
        )
        UPDATE content.messages m
           SET search_vector = setweight(to_tsvector('english', m.subject), 'A')
                            || setweight(to_tsvector('english', coalesce(m.index_text, '')), 'B'),
               index_text = NULL
          FROM batch
         WHERE m.id = batch.id
        """

    /// Ids of messages waiting for the index, for indexing one at a time after a
    /// batch failed.
    public func pendingIDs(limit: Int) async throws -> [Int64] {
        try await connection.query("""
            SELECT id FROM content.messages
             WHERE search_vector IS NULL AND archived_at IS NULL
             ORDER BY id LIMIT $1
            """, [String(limit)]).rows.compactMap { $0[0].flatMap { Int64($0) } }
    }

    /// Indexes one message; if its text cannot be indexed, indexes its subject alone
    /// so it leaves the queue. Returns false when even that failed.
    public func indexOne(id: Int64) async throws -> Bool {
        do {
            try await connection.query("""
                UPDATE content.messages
                   SET search_vector = setweight(to_tsvector('english', subject), 'A')
                                    || setweight(to_tsvector('english', coalesce(index_text, '')), 'B'),
                       index_text = NULL
                 WHERE id = $1 AND search_vector IS NULL
                """, [String(id)])
            return true
        } catch let error as PostgresError where error.kind == .server {
            try await connection.query("""
                UPDATE content.messages
                   SET search_vector = setweight(to_tsvector('english', subject), 'A'), index_text = NULL
                 WHERE id = $1 AND search_vector IS NULL
                """, [String(id)])
            return false
        }
    }

    // MARK: - Search

    public struct SearchHit: Sendable, Equatable, Codable {
        public var externalID: String
        public var tenantID: String
        public var campaignID: String?
        public var subject: String
        public var createdAt: String
        public var rank: Double

        enum CodingKeys: String, CodingKey {
            case externalID = "external_id", tenantID = "tenant_id", campaignID = "campaign_id"
            case subject, createdAt = "created_at", rank
        }
    }

    /// Ranked matches for a web-search style query (`invoice -draft "order 42"`).
    public func search(_ query: String, tenant: String?, limit: Int) async throws -> [SearchHit] {
        let result = try await connection.query("""
            SELECT m.external_id, m.tenant_id, m.campaign_id, m.subject,
                   to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
                   ts_rank(m.search_vector, q) AS rank
              FROM content.messages m, websearch_to_tsquery('english', $1) AS q
             WHERE m.search_vector @@ q
               AND ($2::text IS NULL OR m.tenant_id = $2)
             ORDER BY rank DESC, m.id DESC
             LIMIT $3
            """, [query, tenant, String(limit)])
        return result.rows.map { row in
            SearchHit(externalID: row[0] ?? "", tenantID: row[1] ?? "", campaignID: row[2], subject: row[3] ?? "",
                      createdAt: row[4] ?? "", rank: Double(row[5] ?? "") ?? 0)
        }
    }

    // MARK: - Read one message

    public struct StoredMessage: Sendable, Equatable {
        public var id: Int64
        public var message: ContentMessage
        public var createdAt: String
        public var archivedAt: String?
        public var rawBytes: Int
        public var storedBytes: Int
    }

    public enum ReadError: Error, Equatable, CustomStringConvertible {
        case damaged(String)
        public var description: String {
            switch self {
            case .damaged(let reason): "stored content is damaged: \(reason)"
            }
        }
    }

    /// The message with bodies and attachments decompressed and verified (sizes and
    /// attachment SHA-256), or nil if no message has that external_id.
    public func message(externalID: String, codec: ZlibCodec = ZlibCodec()) async throws -> StoredMessage? {
        let head = try await connection.query("""
            SELECT id, external_id, tenant_id, campaign_id, from_address, array_to_json(to_addresses)::text, subject,
                   headers::text,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(archived_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   raw_bytes, stored_bytes
              FROM content.messages WHERE external_id = $1
            """, [externalID])
        guard let row = head.rows.first, let id = row[0].flatMap({ Int64($0) }) else { return nil }
        // html before text: a text part may be deflated against the HTML.
        let bodies = try await connection.query("""
            SELECT part, codec, raw_bytes, data FROM content.bodies WHERE message_id = $1 ORDER BY part
            """, [String(id)])
        let attachments = try await connection.query("""
            SELECT a.filename, a.content_type, a.sha256, b.codec, b.raw_bytes, b.data
              FROM content.message_attachments a
              JOIN content.attachment_blobs b ON b.tenant_id = a.tenant_id AND b.sha256 = a.sha256
             WHERE a.message_id = $1
             ORDER BY a.position
            """, [String(id)])

        var message = ContentMessage(
            externalID: row[1] ?? "", tenantID: row[2] ?? "", campaignID: row[3], from: row[4] ?? "",
            to: try Self.decodeStrings(row[5] ?? "[]"), subject: row[6] ?? "",
            headers: try Self.decodeHeaders(row[7] ?? "{}"))
        var html: [UInt8]?
        for body in bodies.rows {
            let bytes = try Self.decode(body[3], codec: body[1], rawBytes: body[2], using: codec, html: html)
            if body[0] == "html" { html = bytes }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ReadError.damaged("\(body[0] ?? "?") body is not UTF-8")
            }
            if body[0] == "text" { message.text = text } else { message.html = text }
        }
        for attachment in attachments.rows {
            let bytes = try Self.decode(attachment[5], codec: attachment[3], rawBytes: attachment[4], using: codec, html: nil)
            guard ContentDigest.sha256Hex(bytes) == attachment[2] else {
                throw ReadError.damaged("attachment \(attachment[0] ?? "?") does not match its SHA-256")
            }
            message.attachments.append(.init(filename: attachment[0] ?? "", contentType: attachment[1] ?? "", data: bytes))
        }
        return StoredMessage(
            id: id, message: message, createdAt: row[8] ?? "", archivedAt: row[9],
            rawBytes: Int(row[10] ?? "") ?? 0, storedBytes: Int(row[11] ?? "") ?? 0)
    }

    /// No stored value can be larger: payloads are bounded by JOBD_MAX_PAYLOAD_BYTES (at most 256 MiB).
    static let maxRawBytes = 256 << 20

    /// Inflates one stored value, allowing exactly its recorded raw size: a row
    /// whose data would inflate further is reported, never allocated.
    static func decode(
        _ hex: String?, codec name: String?, rawBytes: String?, using codec: ZlibCodec, html: [UInt8]?
    ) throws -> [UInt8] {
        guard let hex, let stored = PostgresBytea.decode(hex), let raw = rawBytes.flatMap({ Int($0) }),
              (0...maxRawBytes).contains(raw)
        else {
            throw ReadError.damaged("unreadable bytea or size")
        }
        let bytes: [UInt8]
        switch name {
        case ZlibCodec.name?: bytes = try codec.decompress(stored, limit: raw)
        case PreparedMessage.textAgainstHTMLCodec?:
            guard let html else { throw ReadError.damaged("a text part deflated against a missing HTML part") }
            bytes = try codec.decompress(stored, limit: raw, dictionary: html)
        case "identity"?: bytes = stored
        default: throw ReadError.damaged("unknown codec \(name ?? "NULL")")
        }
        guard bytes.count == raw else { throw ReadError.damaged("\(bytes.count) bytes where \(raw) were recorded") }
        return bytes
    }

    static func decodeStrings(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    static func decodeHeaders(_ json: String) throws -> [ContentMessage.Header] {
        try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
            .map { ContentMessage.Header(name: $0.key, value: $0.value) }
    }

    // MARK: - Stats

    public struct Stats: Sendable, Equatable, Codable {
        public var messages: Int
        public var archived: Int
        public var unindexed: Int
        /// Bodies plus attachments as received (each attachment counted per message).
        public var rawBytes: Int
        /// Bodies plus distinct attachments as stored (compressed, de-duplicated).
        public var storedBytes: Int
        public var bodyRawBytes: Int
        public var bodyStoredBytes: Int
        public var attachments: Int
        public var distinctAttachments: Int
        public var attachmentRawBytes: Int
        public var attachmentStoredBytes: Int

        public init(
            messages: Int, archived: Int, unindexed: Int, rawBytes: Int, storedBytes: Int, bodyRawBytes: Int,
            bodyStoredBytes: Int, attachments: Int, distinctAttachments: Int, attachmentRawBytes: Int,
            attachmentStoredBytes: Int
        ) {
            self.messages = messages
            self.archived = archived
            self.unindexed = unindexed
            self.rawBytes = rawBytes
            self.storedBytes = storedBytes
            self.bodyRawBytes = bodyRawBytes
            self.bodyStoredBytes = bodyStoredBytes
            self.attachments = attachments
            self.distinctAttachments = distinctAttachments
            self.attachmentRawBytes = attachmentRawBytes
            self.attachmentStoredBytes = attachmentStoredBytes
        }

        /// stored / raw; 0 when empty.
        public var ratio: Double { rawBytes == 0 ? 0 : Double(storedBytes) / Double(rawBytes) }

        enum CodingKeys: String, CodingKey {
            case messages, archived, unindexed
            case rawBytes = "raw_bytes", storedBytes = "stored_bytes"
            case bodyRawBytes = "body_raw_bytes", bodyStoredBytes = "body_stored_bytes"
            case attachments, distinctAttachments = "distinct_attachments"
            case attachmentRawBytes = "attachment_raw_bytes", attachmentStoredBytes = "attachment_stored_bytes"
        }
    }

    /// Totals over the tables (optionally one tenant). Reads only the size
    /// columns, never the compressed data.
    public func stats(tenant: String? = nil) async throws -> Stats {
        let result = try await connection.query("""
            SELECT (SELECT count(*) FROM content.messages WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT count(*) FROM content.messages
                     WHERE archived_at IS NOT NULL AND ($1::text IS NULL OR tenant_id = $1)),
                   (SELECT count(*) FROM content.messages
                     WHERE search_vector IS NULL AND archived_at IS NULL AND ($1::text IS NULL OR tenant_id = $1)),
                   (SELECT coalesce(sum(raw_bytes), 0) FROM content.bodies WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT coalesce(sum(stored_bytes), 0) FROM content.bodies WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT count(*) FROM content.message_attachments WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT coalesce(sum(raw_bytes), 0) FROM content.message_attachments WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT count(*) FROM content.attachment_blobs WHERE $1::text IS NULL OR tenant_id = $1),
                   (SELECT coalesce(sum(stored_bytes), 0) FROM content.attachment_blobs WHERE $1::text IS NULL OR tenant_id = $1)
            """, [tenant])
        let values = (result.rows.first ?? []).map { Int($0 ?? "") ?? 0 }
        guard values.count == 9 else { throw ReadError.damaged("unexpected stats row") }
        return Stats(
            messages: values[0], archived: values[1], unindexed: values[2],
            rawBytes: values[3] + values[6], storedBytes: values[4] + values[8],
            bodyRawBytes: values[3], bodyStoredBytes: values[4],
            attachments: values[5], distinctAttachments: values[7],
            attachmentRawBytes: values[6], attachmentStoredBytes: values[8])
    }

    // MARK: - Retention

    public struct PurgeBatch: Sendable, Equatable {
        public var purged: Int
        public var archived: Int
        public var blobsDeleted: Int
        public var total: Int { purged + archived }

        public init(purged: Int, archived: Int, blobsDeleted: Int) {
            self.purged = purged
            self.archived = archived
            self.blobsDeleted = blobsDeleted
        }
    }

    /// Expires up to `limit` messages, oldest first: each tenant's own retention
    /// (`content.tenant_retention`), else `defaultRetention` (nil: keep). Purged
    /// messages are deleted; archived ones keep their metadata and a subject-only
    /// search vector. Then attachment blobs no message references any more are
    /// deleted. Two statements.
    public func expire(
        defaultRetention: Double?, defaultAction: ContentRetentionAction, limit: Int
    ) async throws -> PurgeBatch {
        let interval = defaultRetention.map { "\(Int($0.rounded(.up))) seconds" }
        let result = try await connection.query(Self.expireSQL, [interval, defaultAction.rawValue, String(limit)])
        let row = result.rows.first ?? []
        guard row.count == 4 else { throw ReadError.damaged("unexpected expire row") }
        let tenants = try Self.decodeStrings(row[2] ?? "[]")
        let hashes = try Self.decodeStrings(row[3] ?? "[]")
        var blobsDeleted = 0
        if !tenants.isEmpty {
            blobsDeleted = try await connection.query(Self.orphanBlobsSQL, [
                PostgresArray.texts(tenants), PostgresArray.texts(hashes),
            ]).affectedRows
        }
        return PurgeBatch(purged: Int(row[0] ?? "") ?? 0, archived: Int(row[1] ?? "") ?? 0, blobsDeleted: blobsDeleted)
    }

    static let expireSQL = """
        WITH expired AS (
            SELECT m.id, coalesce(r.action, $2) AS action
              FROM content.messages m
              LEFT JOIN content.tenant_retention r ON r.tenant_id = m.tenant_id
             WHERE m.archived_at IS NULL
               AND m.created_at < now() - CASE WHEN r.tenant_id IS NULL THEN $1::interval ELSE r.retain END
             ORDER BY m.created_at
             LIMIT $3
               FOR UPDATE OF m SKIP LOCKED
        ), links AS (
            DELETE FROM content.message_attachments a USING expired e WHERE a.message_id = e.id
            RETURNING a.tenant_id, a.sha256
        ), bodies AS (
            DELETE FROM content.bodies b USING expired e WHERE b.message_id = e.id
        ), purged AS (
            DELETE FROM content.messages m USING expired e WHERE m.id = e.id AND e.action = 'purge'
            RETURNING m.id
        ), archived AS (
            UPDATE content.messages m
               SET archived_at = now(), index_text = NULL, attachment_count = 0,
                   search_vector = setweight(to_tsvector('english', m.subject), 'A')
              FROM expired e
             WHERE m.id = e.id AND e.action = 'archive'
            RETURNING m.id
        ), candidates AS (
            SELECT DISTINCT tenant_id, sha256 FROM links
        )
        SELECT (SELECT count(*) FROM purged), (SELECT count(*) FROM archived),
               (SELECT coalesce(json_agg(tenant_id ORDER BY tenant_id, sha256), '[]')::text FROM candidates),
               (SELECT coalesce(json_agg(sha256 ORDER BY tenant_id, sha256), '[]')::text FROM candidates)
        """

    /// Deletes the candidate blobs nothing references. A blob a concurrent write is
    /// linking right now is locked by that write's foreign-key check and skipped.
    static let orphanBlobsSQL = """
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
