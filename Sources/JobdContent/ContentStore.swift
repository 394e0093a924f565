import Foundation
import JobdCodec
import JobdCore
import JobdPostgres
import JobdQueue

/// The content tier's SQL (the statements are in `Statements/`). Every operation is
/// one statement (reads of a single message are three), parameterised, with batches
/// passed as arrays. The store runs on the connection it is given and never hands it out.
public struct ContentStore: Sendable {
    private let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Closes the store's connection.
    public func close() async {
        await connection.close()
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
        let row = try await connection.firstRow(ContentMessagesStatements.Write(prepared: prepared))
        if let id = row?.insertedID { return .inserted(id: id) }
        guard let existing = row?.existingDigest else { return .raced }
        return existing == prepared.digest ? .duplicate : .conflict(existingDigest: existing)
    }

    /// Writes messages with distinct external_ids as `write` writes each, in one
    /// statement (one round trip, one commit); the outcomes are in the same order.
    public func write(batch: [PreparedMessage]) async throws -> [WriteOutcome] {
        let rows = try await connection.rows(ContentMessagesStatements.WriteBatch(prepared: batch))
        guard rows.map(\.n) == Array(1...max(1, batch.count)).prefix(batch.count).map({ $0 }) else {
            throw ReadError.damaged("\(rows.count) rows for \(batch.count) messages")
        }
        return zip(rows, batch).map { row, prepared in
            if let id = row.insertedID { return .inserted(id: id) }
            guard let existing = row.existingDigest else { return .raced }
            return existing == prepared.digest ? .duplicate : .conflict(existingDigest: existing)
        }
    }

    // MARK: - Search index

    /// Fills `search_vector` for up to `limit` messages that have none, in one
    /// statement, and clears the text it was built from. Returns how many it did.
    /// `SKIP LOCKED` lets several daemons index side by side.
    public func indexPending(limit: Int) async throws -> Int {
        try await connection.execute(ContentMessagesStatements.IndexPending(limit: limit))
    }

    /// Ids of messages waiting for the index, for indexing one at a time after a
    /// batch failed.
    public func pendingIDs(limit: Int) async throws -> [Int64] {
        try await connection.rows(ContentMessagesStatements.PendingIDs(limit: limit))
    }

    /// Indexes one message; if its text cannot be indexed, indexes its subject alone
    /// so it leaves the queue. Returns false when even that failed.
    public func indexOne(id: Int64) async throws -> Bool {
        do {
            try await connection.execute(ContentMessagesStatements.IndexOne(id: id))
            return true
        } catch let error as PostgresError where error.kind == .server {
            try await connection.execute(ContentMessagesStatements.IndexSubjectOnly(id: id))
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
        try await connection.rows(ContentMessagesStatements.Search(query: query, tenant: tenant, limit: limit))
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
        guard let head = try await connection.firstRow(ContentMessagesStatements.Head(externalID: externalID)) else {
            return nil
        }
        let bodies = try await connection.rows(ContentBodiesStatements.OfMessage(messageID: head.id))
        let attachments = try await connection.rows(ContentAttachmentsStatements.OfMessage(messageID: head.id))

        var message = ContentMessage(
            externalID: head.externalID, tenantID: head.tenantID, campaignID: head.campaignID, from: head.from,
            to: try Self.decodeStrings(head.toJSON), subject: head.subject,
            headers: try Self.decodeHeaders(head.headersJSON))
        var html: [UInt8]?
        for body in bodies {
            let bytes = try Self.decode(body.value, using: codec, html: html)
            if body.part == "html" { html = bytes }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ReadError.damaged("\(body.part) body is not UTF-8")
            }
            if body.part == "text" { message.text = text } else { message.html = text }
        }
        for attachment in attachments {
            let bytes = try Self.decode(attachment.value, using: codec, html: nil)
            guard ContentDigest.sha256Hex(bytes) == attachment.sha256 else {
                throw ReadError.damaged("attachment \(attachment.filename) does not match its SHA-256")
            }
            message.attachments.append(.init(filename: attachment.filename, contentType: attachment.contentType, data: bytes))
        }
        return StoredMessage(
            id: head.id, message: message, createdAt: head.createdAt, archivedAt: head.archivedAt,
            rawBytes: head.rawBytes, storedBytes: head.storedBytes)
    }

    /// A stored message's attachments only, decompressed and verified as by
    /// `message(externalID:)`; nil if no message has that external_id. An archived
    /// message has none left (retention removed them with its bodies).
    public func attachments(externalID: String, codec: ZlibCodec = ZlibCodec()) async throws -> [ContentMessage.Attachment]? {
        guard let head = try await connection.firstRow(ContentMessagesStatements.Head(externalID: externalID)) else {
            return nil
        }
        var out: [ContentMessage.Attachment] = []
        for attachment in try await connection.rows(ContentAttachmentsStatements.OfMessage(messageID: head.id)) {
            let bytes = try Self.decode(attachment.value, using: codec, html: nil)
            guard ContentDigest.sha256Hex(bytes) == attachment.sha256 else {
                throw ReadError.damaged("attachment \(attachment.filename) does not match its SHA-256")
            }
            out.append(.init(filename: attachment.filename, contentType: attachment.contentType, data: bytes))
        }
        return out
    }

    /// No stored value can be larger: payloads are bounded by JOBD_MAX_PAYLOAD_BYTES (at most 256 MiB).
    static let maxRawBytes = 256 << 20

    /// Inflates one stored value, allowing exactly its recorded raw size: a row
    /// whose data would inflate further is reported, never allocated.
    static func decode(
        _ value: ContentBodiesStatements.StoredValue, using codec: ZlibCodec, html: [UInt8]?
    ) throws -> [UInt8] {
        let raw = value.rawBytes
        guard let stored = PostgresBytea.decode(value.hex), (0...maxRawBytes).contains(raw) else {
            throw ReadError.damaged("unreadable bytea or size")
        }
        let bytes: [UInt8]
        switch value.codec {
        case ZlibCodec.name: bytes = try codec.decompress(stored, limit: raw)
        case PreparedMessage.textAgainstHTMLCodec:
            guard let html else { throw ReadError.damaged("a text part deflated against a missing HTML part") }
            bytes = try codec.decompress(stored, limit: raw, dictionary: html)
        case "identity": bytes = stored
        default: throw ReadError.damaged("unknown codec \(value.codec)")
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
        guard let stats = try await connection.firstRow(ContentMessagesStatements.Stats(tenant: tenant)) else {
            throw ReadError.damaged("unexpected stats row")
        }
        return stats
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
        defaultRetention: Duration?, defaultAction: ContentRetentionAction, limit: Int
    ) async throws -> PurgeBatch {
        guard let row = try await connection.firstRow(ContentMessagesStatements.Expire(
            defaultRetention: defaultRetention, defaultAction: defaultAction, limit: limit))
        else {
            throw ReadError.damaged("unexpected expire row")
        }
        let tenants = try Self.decodeStrings(row.tenantsJSON)
        let hashes = try Self.decodeStrings(row.hashesJSON)
        var blobsDeleted = 0
        if !tenants.isEmpty {
            blobsDeleted = try await connection.execute(
                ContentAttachmentsStatements.DeleteOrphanBlobs(tenants: tenants, hashes: hashes))
        }
        return PurgeBatch(purged: row.purged, archived: row.archived, blobsDeleted: blobsDeleted)
    }

    /// Applies retention now, batch after batch on this store's connection, as
    /// `ContentPurgeHandler` does: at most `maxMessages` messages.
    public func purge(settings: ContentSettings, maxMessages: Int = .max) async throws -> PurgeBatch {
        try await Self.purge(settings: settings, maxMessages: maxMessages) { limit in
            try await expire(defaultRetention: settings.retention, defaultAction: settings.retentionAction, limit: limit)
        }
    }

    /// Batches of at most `settings.purgeBatch` (`expire` runs one, given its limit)
    /// until a batch comes back short or `maxMessages` are done. Each batch is its
    /// own transaction, so an interrupted run keeps what it did and the next run
    /// continues.
    static func purge(
        settings: ContentSettings, maxMessages: Int, expire: (_ limit: Int) async throws -> PurgeBatch
    ) async throws -> PurgeBatch {
        var total = PurgeBatch(purged: 0, archived: 0, blobsDeleted: 0)
        while total.total < maxMessages {
            try Task.checkCancellation()
            let limit = min(settings.purgeBatch, maxMessages - total.total)
            let batch = try await expire(limit)
            total.purged += batch.purged
            total.archived += batch.archived
            total.blobsDeleted += batch.blobsDeleted
            if batch.total < limit { break }
        }
        return total
    }
}
