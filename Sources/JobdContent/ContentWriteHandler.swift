import JobdCodec
import JobdCore
import JobdQueue
import Logging
import ServiceLifecycle

/// `content.write`: stores one whole email in the content tier (payload documented
/// on `ContentMessage`). Idempotent by `external_id`: the same message again is a
/// no-op; another message under the same `external_id` is dead-lettered
/// (`external_id_conflict`). A content database that cannot be reached fails the
/// job as `tier_unavailable`, which retries with backoff while other kinds flow.
///
/// The handler parses and compresses in the job's task, then hands the message to
/// a group-commit writer (`ContentWriteBatcher`) that stores the messages of
/// concurrent jobs in one statement; that writer is the handler's service, so the
/// daemon (or a test calling `handle` directly) runs `services` meanwhile. Each job
/// is counted on `lane` while it runs, so the search indexer can make way.
public struct ContentWriteHandler: JobHandler {
    public let kind = "content.write"
    let codec: ZlibCodec
    /// This process's content.write activity, which `ContentIndexer` reads.
    public let lane: ContentLaneActivity
    private let writes: ContentWriteBatcher

    public init(
        database: TierDatabase, compressionLevel: Int = ContentSettings.defaults.compressionLevel,
        lane: ContentLaneActivity = ContentLaneActivity()
    ) {
        self.codec = ZlibCodec(level: compressionLevel)
        self.lane = lane
        writes = ContentWriteBatcher(database: database)
    }

    /// The group-commit writer; the daemon runs it while its pools run.
    public var services: [any Service] { [writes.service] }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        try await lane.counting { try await store(job, context: context) }
    }

    private func store(_ job: ClaimedJob, context: JobContext) async throws {
        let prepared = try prepare(job.payload)
        let outcome = try await writes.submitAndWait(prepared).get()
        switch outcome {
        case .inserted(let id):
            context.logger.debug("content stored", metadata: [
                "content_id": "\(id)", "raw_bytes": "\(prepared.rawBytes)", "stored_bytes": "\(prepared.storedBytes)",
            ])
        case .duplicate:
            context.logger.debug("content already stored", metadata: ["external_id": "\(prepared.message.externalID)"])
        case .conflict:
            throw JobFailure.permanent(
                "external_id \"\(prepared.message.externalID)\" is already stored with different content",
                code: "external_id_conflict")
        case .raced:
            throw JobFailure.transient(
                "another write of external_id \"\(prepared.message.externalID)\" was committing; retrying",
                code: "content_write_raced")
        }
    }

    /// Parses, validates and encodes the payload; every problem with it is permanent.
    public func prepare(_ payload: String) throws -> PreparedMessage {
        let object = try JSONPayload.object(payload, kind: kind)
        let message: ContentMessage
        do {
            message = try ContentMessage.parse(object)
        } catch {
            throw JobFailure.permanent(error.description, code: "payload_invalid")
        }
        return try PreparedMessage(message, codec: codec)
    }
}

/// `content.purge`: applies retention — each tenant's (`content.tenant_retention`),
/// else `JOBD_CONTENT_RETENTION` — purging or archiving expired messages in batches
/// of `JOBD_CONTENT_PURGE_BATCH` until none are left (or `max_messages` is reached).
/// Meant to be scheduled periodically (e.g. hourly); safe to run twice at once.
///
/// Payload (optional): `{"max_messages": N}` bounds one run (default: no bound).
public struct ContentPurgeHandler: JobHandler {
    public let kind = "content.purge"
    public var isInternal: Bool { true }
    let database: TierDatabase
    let settings: ContentSettings

    public init(database: TierDatabase, settings: ContentSettings) {
        self.database = database
        self.settings = settings
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        var maxMessages = Int.max
        for (key, value) in try JSONPayload.object(job.payload, kind: kind) {
            switch key {
            case "max_messages":
                maxMessages = try JSONPayload.integer(value, field: key, kind: kind, range: 1...100_000_000)
            default:
                throw JobFailure.permanent(
                    "\(kind) payload: unknown field \"\(key)\" (known: max_messages)", code: "payload_invalid")
            }
        }
        let report = try await run(maxMessages: maxMessages)
        context.logger.info("content retention applied", metadata: [
            "purged": "\(report.purged)", "archived": "\(report.archived)", "blobs_deleted": "\(report.blobsDeleted)",
        ])
    }

    /// Batches until a batch comes back short (see `ContentStore.purge`), each on a
    /// connection of the tier's pool taken for that batch alone.
    public func run(maxMessages: Int = .max) async throws -> ContentStore.PurgeBatch {
        let database = database
        let settings = settings
        return try await ContentStore.purge(settings: settings, maxMessages: maxMessages) { limit in
            try await database.withConnection { connection in
                try await ContentStore(connection: connection).expire(
                    defaultRetention: settings.retention, defaultAction: settings.retentionAction, limit: limit)
            }
        }
    }
}
