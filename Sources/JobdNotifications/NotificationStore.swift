import JobdCore
import JobdPostgres
import JobdQueue

/// The notifications tier's store (its statements are in `Statements/`): claim a
/// notification for one send, then record the try and its outcome in one fenced
/// round trip.
struct NotificationStore: Sendable {
    let database: TierDatabase

    enum Claim: Sendable, Equatable {
        /// This run owns the notification until the window ends; `try` numbers the send.
        case claimed(id: Int64, try: Int)
        /// Delivered before: do not send again.
        case alreadySent(id: Int64)
        /// Another run is sending it now; ask again in `retryIn` seconds.
        case busy(retryIn: Double)
        /// The key names a different notification (other channel, recipient, subject or body).
        case conflict
    }

    /// One try as the audit trail records it, and the notification's new status.
    struct TryRecord: Sendable, Equatable {
        var notificationID: Int64
        var tryNumber: Int
        var claimToken: String
        var jobID: JobID
        var jobAttempt: Int
        var destination: String
        /// Unix seconds.
        var startedAt: Double
        var durationMs: Double
        var outcome: String
        var statusCode: Int?
        var errorCode: String?
        var excerpt: String
        /// pending | sent | failed
        var newStatus: String
        var lastError: String?
    }

    /// Inserts the notification or takes over an existing row when it may be sent
    /// now: `pending`, `failed` (an operator re-drove its dead job), or `sending`
    /// whose claimant's window has passed (it crashed mid-send). A `sent` row is
    /// never claimed again. An archived row (`notifications.trim` dropped its body)
    /// matches on channel, recipient and subject alone. One round trip in the common case.
    func claim(_ request: NotificationRequest, token: String, jobID: JobID, window: Duration) async throws -> Claim {
        try await database.withConnection { connection in
            let claim = NotificationStatements.Claim(request: request, token: token, window: window.seconds, jobID: jobID)
            if let claimed = try await connection.firstRow(claim) {
                return .claimed(id: claimed.id, try: claimed.tries)
            }
            // Not claimable: find out why (rare, so a second statement is fine).
            guard let row = try await connection.firstRow(NotificationStatements.Unclaimed(request: request)) else {
                return .busy(retryIn: 0)  // deleted in between: just run again
            }
            if row.sameNotification != true { return .conflict }
            switch row.status {
            case "sent": return .alreadySent(id: row.id)
            case "sending": return .busy(retryIn: row.claimLeft ?? 1)
            default: return .busy(retryIn: 0)  // changed in between: run again
            }
        }
    }

    /// Appends the tries to the audit trail and moves their notifications out of
    /// `sending`, each fenced on its claim token, in one statement. An attempt row is
    /// written even when its fence refuses (the try happened). Returns the claim
    /// tokens whose status was written. Idempotent: writing the same record twice
    /// changes nothing the second time.
    func finish(_ records: [TryRecord]) async throws -> Set<String> {
        // jsonb cannot hold NUL, and one bad row would fail the whole batch.
        func clean(_ text: String) -> JSONValue { .string(text.filter { $0 != "\u{0}" }) }
        let rows = records.map { record in
            JSONValue.object([
                "notification_id": .number(Double(record.notificationID)), "try": .number(Double(record.tryNumber)),
                "job_id": .number(Double(record.jobID)), "job_attempt": .number(Double(record.jobAttempt)),
                "destination": .string(record.destination), "started_at": .number(record.startedAt),
                "duration_ms": .number(record.durationMs), "outcome": .string(record.outcome),
                "status_code": record.statusCode.map { .number(Double($0)) } ?? .null,
                "error_code": record.errorCode.map { .string($0) } ?? .null, "excerpt": clean(record.excerpt),
                "new_status": .string(record.newStatus), "last_error": record.lastError.map(clean) ?? .null,
                "claim_token": .string(record.claimToken),
            ])
        }
        let input = JSONValue.array(rows).canonicalText
        return try await database.withConnection { connection in
            Set(try await connection.rows(NotificationStatements.Finish(input: input)))
        }
    }
}

/// Group commit for `NotificationStore.finish`: records submitted while a write is
/// in flight go out together in the next one, so under load many notifications
/// share one statement and one connection hold instead of one each. An idle
/// batcher writes at once (no added latency). A failed write fails its batch's
/// submitters. The batcher's writer is a service of the daemon (see
/// `NotificationSendHandler.services`), so a cancelled job (a drain) cannot stop the
/// recording of a send that happened.
typealias FinishBatcher = GroupCommitBatcher<NotificationStore.TryRecord, Bool>

extension GroupCommitBatcher where Item == NotificationStore.TryRecord, Outcome == Bool {
    /// The outcome of each record: whether its fence held (its status was written).
    convenience init(store: NotificationStore) {
        self.init(maxBatch: 500, onFailure: .failSubmitters) { entries in
            let accepted = try await store.finish(entries.map(\.item))
            return entries.map { accepted.contains($0.item.claimToken) }
        }
    }
}
