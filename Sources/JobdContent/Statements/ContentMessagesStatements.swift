import JobdCore
import JobdPostgres

/// `content.messages`: the write of a whole message (its children ride along in the
/// same statement), the search index, search, a message's head, the tier's totals
/// and retention. Every statement runs plain (`.perExecution`): the write and the
/// reads are one-shot shapes, and `$n IS NULL OR …` filters fold away when the
/// server plans with the values bound.
enum ContentMessagesStatements {
    /// Writes the metadata row, body rows, attachment blobs (skipping those the
    /// tenant already has) and attachment links in one statement.
    /// `ON CONFLICT (external_id) DO NOTHING` makes a retry a no-op; every child
    /// insert selects from the metadata insert, so a retry inserts no children either.
    struct Write: PostgresStatement {
        var prepared: PreparedMessage

        struct Row: Sendable, Equatable {
            /// The new message's id; nil when nothing was inserted.
            var insertedID: Int64?
            /// The digest of the message stored under the external_id (nil: none
            /// committed when the statement started).
            var existingDigest: String?
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            let message = prepared.message
            return [
                .text(message.externalID), .text(message.tenantID), .text(message.campaignID), .text(message.from),
                .textArray(message.to), .text(message.subject), .jsonb(prepared.headersJSON), .text(prepared.digest),
                .int(prepared.rawBytes), .int(prepared.storedBytes), .int(prepared.links.count), .text(prepared.indexText),
                .textArray(prepared.bodies.map(\.part)),
                .textArray(prepared.bodies.map(\.codec)),
                .intArray(prepared.bodies.map(\.rawBytes)),
                .intArray(prepared.bodies.map(\.data.count)),
                .textArray(prepared.bodies.map { PostgresBytea.encode($0.data) }),
                .textArray(prepared.blobs.map(\.sha256)),
                .textArray(prepared.blobs.map(\.codec)),
                .intArray(prepared.blobs.map(\.rawBytes)),
                .intArray(prepared.blobs.map(\.data.count)),
                .textArray(prepared.blobs.map { PostgresBytea.encode($0.data) }),
                .textArray(prepared.links.map(\.filename)),
                .textArray(prepared.links.map(\.contentType)),
                .textArray(prepared.links.map(\.sha256)),
                .intArray(prepared.links.map(\.rawBytes)),
            ]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(insertedID: try row.decode("inserted_id", as: Int64?.self),
                existingDigest: try row.decode("existing_digest", as: String?.self))
        }

        static let sql: SQL = """
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
    }

    /// Writes several messages as `Write` writes one, in one statement (group commit
    /// of concurrent jobs' writes). The external_ids must be distinct: a message's
    /// children are matched to it by external_id. Returns one row per message, `n`
    /// being its 1-based position in `prepared`; a message already stored (a retry)
    /// inserts nothing, as in `Write`.
    struct WriteBatch: PostgresStatement {
        var prepared: [PreparedMessage]

        struct Row: Sendable, Equatable {
            /// 1-based position in `prepared`.
            var n: Int
            var insertedID: Int64?
            var existingDigest: String?
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            var bodyOwners: [Int] = [], blobOwners: [Int] = [], linkOwners: [Int] = [], linkPositions: [Int] = []
            for (index, message) in prepared.enumerated() {
                bodyOwners += Array(repeating: index + 1, count: message.bodies.count)
                blobOwners += Array(repeating: index + 1, count: message.blobs.count)
                linkOwners += Array(repeating: index + 1, count: message.links.count)
                linkPositions += Array(1...max(1, message.links.count)).prefix(message.links.count)
            }
            let bodies = prepared.flatMap(\.bodies), blobs = prepared.flatMap(\.blobs), links = prepared.flatMap(\.links)
            return [
                .textArray(prepared.map(\.message.externalID)), .textArray(prepared.map(\.message.tenantID)),
                .textArray(prepared.map(\.message.campaignID)), .textArray(prepared.map(\.message.from)),
                .textArray(prepared.map { JSONValue.array($0.message.to.map { .string($0) }).canonicalText }),
                .textArray(prepared.map(\.message.subject)), .textArray(prepared.map(\.headersJSON)),
                .textArray(prepared.map(\.digest)), .intArray(prepared.map(\.rawBytes)),
                .intArray(prepared.map(\.storedBytes)), .intArray(prepared.map(\.links.count)),
                .textArray(prepared.map(\.indexText)),
                .intArray(bodyOwners),
                .textArray(bodies.map(\.part)),
                .textArray(bodies.map(\.codec)),
                .intArray(bodies.map(\.rawBytes)),
                .intArray(bodies.map(\.data.count)),
                .textArray(bodies.map { PostgresBytea.encode($0.data) }),
                .intArray(blobOwners),
                .textArray(blobs.map(\.sha256)),
                .textArray(blobs.map(\.codec)),
                .intArray(blobs.map(\.rawBytes)),
                .intArray(blobs.map(\.data.count)),
                .textArray(blobs.map { PostgresBytea.encode($0.data) }),
                .intArray(linkOwners),
                .intArray(linkPositions),
                .textArray(links.map(\.filename)),
                .textArray(links.map(\.contentType)),
                .textArray(links.map(\.sha256)),
                .intArray(links.map(\.rawBytes)),
            ]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(n: try row.decode("n"), insertedID: try row.decode("inserted_id", as: Int64?.self),
                existingDigest: try row.decode("existing_digest", as: String?.self))
        }

        static let sql: SQL = """
            WITH input AS (
                SELECT *
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                              $8::text[], $9::bigint[], $10::bigint[], $11::integer[], $12::text[]) WITH ORDINALITY
                       AS i (external_id, tenant_id, campaign_id, from_address, to_json, subject, headers, digest,
                             raw_bytes, stored_bytes, attachment_count, index_text, n)
            ), msg AS (
                INSERT INTO content.messages (external_id, tenant_id, campaign_id, from_address, to_addresses, subject,
                                              headers, digest, raw_bytes, stored_bytes, attachment_count, index_text)
                SELECT i.external_id, i.tenant_id, i.campaign_id, i.from_address,
                       ARRAY(SELECT jsonb_array_elements_text(i.to_json::jsonb)), i.subject, i.headers, i.digest,
                       i.raw_bytes, i.stored_bytes, i.attachment_count, i.index_text
                  FROM input i
                 ORDER BY i.n
                ON CONFLICT (external_id) DO NOTHING
                RETURNING id, tenant_id, external_id
            ), ins AS (
                SELECT msg.id, msg.tenant_id, i.n FROM msg JOIN input i ON i.external_id = msg.external_id
            ), bodies AS (
                INSERT INTO content.bodies (message_id, tenant_id, part, codec, raw_bytes, stored_bytes, data)
                SELECT ins.id, ins.tenant_id, b.part, b.codec, b.raw, b.stored, b.data
                  FROM unnest($13::bigint[], $14::text[], $15::text[], $16::integer[], $17::integer[], $18::bytea[])
                            AS b (n, part, codec, raw, stored, data)
                  JOIN ins ON ins.n = b.n
            ), blobs AS (
                INSERT INTO content.attachment_blobs (tenant_id, sha256, codec, raw_bytes, stored_bytes, data)
                SELECT DISTINCT ON (ins.tenant_id, a.sha256) ins.tenant_id, a.sha256, a.codec, a.raw, a.stored, a.data
                  FROM unnest($19::bigint[], $20::text[], $21::text[], $22::bigint[], $23::bigint[], $24::bytea[])
                            AS a (n, sha256, codec, raw, stored, data)
                  JOIN ins ON ins.n = a.n
                 ORDER BY ins.tenant_id, a.sha256, a.n
                ON CONFLICT (tenant_id, sha256) DO NOTHING
            ), links AS (
                INSERT INTO content.message_attachments (message_id, position, tenant_id, filename, content_type, sha256, raw_bytes)
                SELECT ins.id, l.position, ins.tenant_id, l.filename, l.content_type, l.sha256, l.raw
                  FROM unnest($25::bigint[], $26::integer[], $27::text[], $28::text[], $29::text[], $30::bigint[])
                            AS l (n, position, filename, content_type, sha256, raw)
                  JOIN ins ON ins.n = l.n
            )
            SELECT i.n, ins.id AS inserted_id,
                   (SELECT m.digest FROM content.messages m WHERE m.external_id = i.external_id) AS existing_digest
              FROM input i LEFT JOIN ins ON ins.n = i.n
             ORDER BY i.n
            """
    }

    /// The messages the search index is waiting for: not yet indexed, not archived.
    /// Begins and ends with a line break, so it composes between lines.
    static let waitingForIndex: SQL = """

        SELECT id FROM content.messages
         WHERE search_vector IS NULL AND archived_at IS NULL

        """

    /// Fills `search_vector` for up to `limit` waiting messages and clears the text
    /// it was built from. `SKIP LOCKED` lets several daemons index side by side.
    struct IndexPending: PostgresStatement {
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(limit)] }

        static let sql: SQL = "WITH batch AS (" + waitingForIndex + """
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
    }

    /// Ids of up to `limit` waiting messages, oldest first.
    struct PendingIDs: PostgresStatement {
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(limit)] }

        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("id") }

        static let sql: SQL = waitingForIndex + " ORDER BY id LIMIT $1"
    }

    /// Indexes one message, subject and text.
    struct IndexOne: PostgresStatement {
        var id: Int64

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id)] }

        static let sql: SQL = """
            UPDATE content.messages
               SET search_vector = setweight(to_tsvector('english', subject), 'A')
                                || setweight(to_tsvector('english', coalesce(index_text, '')), 'B'),
                   index_text = NULL
             WHERE id = $1 AND search_vector IS NULL
            """
    }

    /// Indexes one message by its subject alone (its text could not be indexed).
    struct IndexSubjectOnly: PostgresStatement {
        var id: Int64

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(id)] }

        static let sql: SQL = """
            UPDATE content.messages
               SET search_vector = setweight(to_tsvector('english', subject), 'A'), index_text = NULL
             WHERE id = $1 AND search_vector IS NULL
            """
    }

    /// Ranked matches for a web-search style query, optionally of one tenant.
    struct Search: PostgresStatement {
        var query: String
        var tenant: String?
        var limit: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(query), .text(tenant), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> ContentStore.SearchHit {
            ContentStore.SearchHit(
                externalID: try row.decode("external_id"), tenantID: try row.decode("tenant_id"),
                campaignID: try row.decode("campaign_id", as: String?.self), subject: try row.decode("subject"),
                createdAt: try row.decode("created_at"), rank: try row.decode("rank"))
        }

        static let sql: SQL = """
            SELECT m.external_id, m.tenant_id, m.campaign_id, m.subject,
                   to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
                   ts_rank(m.search_vector, q) AS rank
              FROM content.messages m, websearch_to_tsquery('english', $1) AS q
             WHERE m.search_vector @@ q
               AND ($2::text IS NULL OR m.tenant_id = $2)
             ORDER BY rank DESC, m.id DESC
             LIMIT $3
            """
    }

    /// One message's metadata row, by external_id.
    struct Head: PostgresStatement {
        var externalID: String

        struct Row: Sendable, Equatable {
            var id: Int64
            var externalID: String
            var tenantID: String
            var campaignID: String?
            var from: String
            /// `to_addresses` as a JSON array of strings.
            var toJSON: String
            var subject: String
            /// `headers` as a JSON object.
            var headersJSON: String
            var createdAt: String
            var archivedAt: String?
            var rawBytes: Int
            var storedBytes: Int
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(externalID)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), externalID: try row.decode("external_id"), tenantID: try row.decode("tenant_id"),
                campaignID: try row.decode("campaign_id", as: String?.self), from: try row.decode("from_address"),
                toJSON: try row.decode("to_addresses"), subject: try row.decode("subject"),
                headersJSON: try row.decode("headers"), createdAt: try row.decode("created_at"),
                archivedAt: try row.decode("archived_at", as: String?.self),
                rawBytes: try row.decode("raw_bytes"), storedBytes: try row.decode("stored_bytes"))
        }

        static let sql: SQL = """
            SELECT id, external_id, tenant_id, campaign_id, from_address, array_to_json(to_addresses)::text AS to_addresses,
                   subject, headers::text AS headers,
                   to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
                   to_char(archived_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS archived_at,
                   raw_bytes, stored_bytes
              FROM content.messages WHERE external_id = $1
            """
    }

    /// Totals over the tier's four tables (optionally one tenant); reads only the
    /// size columns, never the compressed data.
    struct Stats: PostgresStatement {
        var tenant: String?

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.text(tenant)] }

        static func decode(_ row: PostgresRow) throws -> ContentStore.Stats {
            let bodyRaw: Int = try row.decode("body_raw_bytes"), bodyStored: Int = try row.decode("body_stored_bytes")
            let attachmentRaw: Int = try row.decode("attachment_raw_bytes")
            let attachmentStored: Int = try row.decode("attachment_stored_bytes")
            return ContentStore.Stats(
                messages: try row.decode("messages"), archived: try row.decode("archived"),
                unindexed: try row.decode("unindexed"),
                rawBytes: bodyRaw + attachmentRaw, storedBytes: bodyStored + attachmentStored,
                bodyRawBytes: bodyRaw, bodyStoredBytes: bodyStored,
                attachments: try row.decode("attachments"), distinctAttachments: try row.decode("distinct_attachments"),
                attachmentRawBytes: attachmentRaw, attachmentStoredBytes: attachmentStored)
        }

        static let sql: SQL = """
            SELECT (SELECT count(*) FROM content.messages WHERE $1::text IS NULL OR tenant_id = $1) AS messages,
                   (SELECT count(*) FROM content.messages
                     WHERE archived_at IS NOT NULL AND ($1::text IS NULL OR tenant_id = $1)) AS archived,
                   (SELECT count(*) FROM content.messages
                     WHERE search_vector IS NULL AND archived_at IS NULL AND ($1::text IS NULL OR tenant_id = $1)) AS unindexed,
                   (SELECT coalesce(sum(raw_bytes), 0) FROM content.bodies WHERE $1::text IS NULL OR tenant_id = $1) AS body_raw_bytes,
                   (SELECT coalesce(sum(stored_bytes), 0) FROM content.bodies WHERE $1::text IS NULL OR tenant_id = $1) AS body_stored_bytes,
                   (SELECT count(*) FROM content.message_attachments WHERE $1::text IS NULL OR tenant_id = $1) AS attachments,
                   (SELECT coalesce(sum(raw_bytes), 0) FROM content.message_attachments WHERE $1::text IS NULL OR tenant_id = $1) AS attachment_raw_bytes,
                   (SELECT count(*) FROM content.attachment_blobs WHERE $1::text IS NULL OR tenant_id = $1) AS distinct_attachments,
                   (SELECT coalesce(sum(stored_bytes), 0) FROM content.attachment_blobs WHERE $1::text IS NULL OR tenant_id = $1) AS attachment_stored_bytes
            """
    }

    /// Expires up to `limit` messages, oldest first: each tenant's own retention
    /// (`content.tenant_retention`), else `defaultRetention` (nil: keep). Purged
    /// messages are deleted; archived ones keep their metadata and a subject-only
    /// search vector. Returns the counts and the (tenant, sha256) pairs whose links
    /// went, as two JSON arrays in the same order — the candidates for
    /// `ContentAttachmentsStatements.DeleteOrphanBlobs`.
    struct Expire: PostgresStatement {
        /// nil: no default retention. At most `ContentSettings.maximumRetention`, so
        /// `now()` minus it stays inside timestamptz's range.
        var defaultRetention: Duration?
        var defaultAction: ContentRetentionAction
        var limit: Int

        struct Row: Sendable, Equatable {
            var purged: Int
            var archived: Int
            var tenantsJSON: String
            var hashesJSON: String
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [defaultRetention.map { .seconds($0) } ?? .null, .text(defaultAction.rawValue), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(purged: try row.decode("purged"), archived: try row.decode("archived"),
                tenantsJSON: try row.decode("tenants"), hashesJSON: try row.decode("hashes"))
        }

        static let sql: SQL = """
            WITH expired AS (
                SELECT m.id, coalesce(r.action, $2) AS action
                  FROM content.messages m
                  LEFT JOIN content.tenant_retention r ON r.tenant_id = m.tenant_id
                 WHERE m.archived_at IS NULL
                   AND m.created_at < now() - CASE WHEN r.tenant_id IS NULL THEN make_interval(secs => $1::float8) ELSE r.retain END
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
            SELECT (SELECT count(*) FROM purged) AS purged, (SELECT count(*) FROM archived) AS archived,
                   (SELECT coalesce(json_agg(tenant_id ORDER BY tenant_id, sha256), '[]')::text FROM candidates) AS tenants,
                   (SELECT coalesce(json_agg(sha256 ORDER BY tenant_id, sha256), '[]')::text FROM candidates) AS hashes
            """
    }
}
