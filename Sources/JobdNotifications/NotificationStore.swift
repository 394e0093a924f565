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
        /// Another run is sending it now; ask again after `retryIn` (at least zero).
        case busy(retryIn: Duration)
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
            try await Self.claim(NotificationClaimRequest(request: request, token: token, jobID: jobID, window: window), on: connection)
        }
    }

    /// `claim` for several notifications, each with its own outcome, in order:
    /// distinct keys share one statement (`ClaimBatch`), a key repeated in `claims`
    /// goes in a later statement and finds the earlier one's claim (`busy`), as one
    /// run after the other would. A statement the server refuses is made again one
    /// claim at a time, so a bad row's refusal is its own outcome (`.failure`). A
    /// failed connection throws: no outcome is known.
    func claim(batch claims: [NotificationClaimRequest]) async throws -> [Result<Claim, any Error>] {
        try await DistinctKeyRounds.run(claims, key: \.request.idempotencyKey) { try await claimRound($0) }
    }

    /// Claims of distinct keys: one statement, or one per claim when it is alone or refused.
    private func claimRound(_ round: [NotificationClaimRequest]) async throws -> [Result<Claim, any Error>] {
        try await database.withConnection { connection in
            if round.count == 1 {
                return [try await Result.refusable { try await Self.claim(round[0], on: connection) }]
            }
            let rows: [NotificationStatements.ClaimBatch.Row]
            do {
                rows = try await connection.rows(NotificationStatements.ClaimBatch(claims: round))
            } catch let error as PostgresError where error.kind == .server {
                var outcomes: [Result<Claim, any Error>] = []
                for claim in round { outcomes.append(try await Result.refusable { try await Self.claim(claim, on: connection) }) }
                return outcomes
            }
            let claimed = Dictionary(rows.map { ($0.claimToken, $0) }, uniquingKeysWith: { first, _ in first })
            var outcomes: [Result<Claim, any Error>] = []
            for claim in round {
                if let row = claimed[claim.token] {
                    outcomes.append(.success(.claimed(id: row.id, try: row.tries)))
                } else {
                    outcomes.append(try await Result.refusable { try await Self.unclaimed(claim.request, on: connection) })
                }
            }
            return outcomes
        }
    }

    private static func claim(_ claim: NotificationClaimRequest, on connection: PostgresConnection) async throws -> Claim {
        let statement = NotificationStatements.Claim(
            request: claim.request, token: claim.token, window: claim.window.seconds, jobID: claim.jobID)
        if let claimed = try await connection.firstRow(statement) {
            return .claimed(id: claimed.id, try: claimed.tries)
        }
        return try await unclaimed(claim.request, on: connection)
    }

    /// Why a notification was not claimable (rare, so a second statement is fine).
    private static func unclaimed(_ request: NotificationRequest, on connection: PostgresConnection) async throws -> Claim {
        guard let row = try await connection.firstRow(NotificationStatements.Unclaimed(request: request)) else {
            return .busy(retryIn: .zero)  // deleted in between: just run again
        }
        if row.sameNotification != true { return .conflict }
        switch row.status {
        case "sent": return .alreadySent(id: row.id)
        case "sending": return .busy(retryIn: row.claimLeft.map { TotalConversion.duration(seconds: $0) } ?? .seconds(1))
        default: return .busy(retryIn: .zero)  // changed in between: run again
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

/// One claim as `ClaimBatcher` takes it: the notification, the fresh token that
/// fences this run's send and record, and how long the claim holds.
struct NotificationClaimRequest: Sendable {
    var request: NotificationRequest
    var token: String
    var jobID: JobID
    var window: Duration
}

/// Group commit for the claim before a send: claims submitted while one is being
/// written go out together in the next statement (`NotificationStore.claim(batch:)`),
/// so under load many sends share one round trip and one commit for their claims.
/// An idle batcher writes a lone claim at once with the single statement (no added
/// latency). Each claim keeps its own outcome — claimed (with its try number),
/// already sent, in flight elsewhere, or a conflict — and its own token; the send
/// waits for it. A failed connection fails the batch's submitters (their jobs
/// retry; a claim that had committed holds its row until its window passes, as a
/// single claim's would). The writer is a service of the daemon
/// (`NotificationSendHandler.services`).
typealias ClaimBatcher = GroupCommitBatcher<NotificationClaimRequest, Result<NotificationStore.Claim, any Error>>

extension GroupCommitBatcher where Item == NotificationClaimRequest, Outcome == Result<NotificationStore.Claim, any Error> {
    /// Claims per group-commit batch.
    static var claimMaxBatch: Int { 64 }

    convenience init(claimingWith store: NotificationStore) {
        self.init(maxBatch: Self.claimMaxBatch, onFailure: .failSubmitters) { entries in
            try await store.claim(batch: entries.map(\.item))
        }
    }
}
