import JobdCore
import JobdPostgres
import JobdQueue

/// Group commit for `content.write`: the messages of jobs that finish preparing
/// while a write is in flight go out together in the next one, as one statement
/// (`ContentStore.write(batch:)`), so under load many messages share one round
/// trip, one plan and one commit. An idle batcher writes a lone message at once
/// with the single-message statement (no added latency). The writer is a service
/// of the daemon (`ContentWriteHandler.services`), never a job's task.
///
/// Each message's outcome is its own: a statement the server refuses is written
/// again one message at a time, so one bad message fails only its own job. Two
/// jobs with the same external_id never share a statement: the later goes in a
/// statement after the earlier's, and sees it stored (a duplicate or a conflict),
/// as it would one job after the other. A failed connection fails the whole
/// batch's jobs (`tier_unavailable`); each retries, and a message whose statement
/// had committed is then a duplicate, a no-op.
typealias ContentWriteBatcher = GroupCommitBatcher<PreparedMessage, Result<ContentStore.WriteOutcome, any Error>>

extension GroupCommitBatcher where Item == PreparedMessage, Outcome == Result<ContentStore.WriteOutcome, any Error> {
    /// Messages per group-commit batch.
    static var contentMaxBatch: Int { 64 }
    /// Stored bytes one statement carries at most (a larger message goes alone).
    static var contentMaxStatementBytes: Int { 4 << 20 }

    convenience init(database: TierDatabase) {
        self.init(maxBatch: Self.contentMaxBatch, onFailure: .failSubmitters) { entries in
            try await Self.write(entries.map(\.item), database: database)
        }
    }

    /// Writes `messages` in statements of distinct external_ids and bounded size;
    /// outcomes in the same order.
    static func write(_ messages: [PreparedMessage], database: TierDatabase) async throws -> [Outcome] {
        try await DistinctKeyRounds.run(messages, key: \.message.externalID) { round in
            var outcomes: [Outcome] = []
            for chunk in chunks(round) { outcomes += try await writeChunk(chunk, database: database) }
            return outcomes
        }
    }

    /// Consecutive runs of `messages` of at most `contentMaxStatementBytes` stored bytes each.
    static func chunks(_ messages: [PreparedMessage]) -> [[PreparedMessage]] {
        var chunks: [[PreparedMessage]] = [], current: [PreparedMessage] = [], bytes = 0
        for message in messages {
            let size = message.storedBytes + message.indexText.utf8.count
            if !current.isEmpty && bytes + size > contentMaxStatementBytes {
                chunks.append(current)
                current = []
                bytes = 0
            }
            current.append(message)
            bytes += size
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// One statement for the chunk; if the server refuses it, one per message.
    private static func writeChunk(_ chunk: [PreparedMessage], database: TierDatabase) async throws -> [Outcome] {
        try await database.withConnection { connection in
            let store = ContentStore(connection: connection)
            if chunk.count == 1 {
                return [try await .refusable { try await store.write(chunk[0]) }]
            }
            do {
                return try await store.write(batch: chunk).map { .success($0) }
            } catch let error as PostgresError where error.kind == .server {
                var outcomes: [Outcome] = []
                for prepared in chunk { outcomes.append(try await .refusable { try await store.write(prepared) }) }
                return outcomes
            }
        }
    }
}
