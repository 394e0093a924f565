import JobdCore
import JobdPostgres
import JobdQueue

/// The notifications tier's SQL: claim a notification for one send, then record
/// the try and its outcome in one fenced round trip.
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
    func claim(_ request: NotificationRequest, token: String, jobID: JobID, window: Double) async throws -> Claim {
        let params: [String?] = [
            request.idempotencyKey, request.channel.rawValue, request.to, request.subject, request.body,
            token, String(window), String(jobID),
        ]
        return try await database.withConnection { connection in
            let claimed = try await connection.query("""
                INSERT INTO notifications.notifications AS n
                    (idempotency_key, channel, recipient, subject, body, status, tries, claim_token, sending_until, job_id)
                VALUES ($1, $2, $3, $4, $5, 'sending', 1, $6,
                        now() + make_interval(secs => $7::double precision), $8::bigint)
                ON CONFLICT (idempotency_key) DO UPDATE SET
                    status = 'sending', tries = n.tries + 1, claim_token = EXCLUDED.claim_token,
                    sending_until = EXCLUDED.sending_until, job_id = EXCLUDED.job_id,
                    updated_at = now(), failed_at = NULL,
                    -- An archived row (body dropped by retention) gets its body back
                    -- when it is sent again; otherwise the stored value is kept as is.
                    body = CASE WHEN n.archived_at IS NULL THEN n.body ELSE EXCLUDED.body END, archived_at = NULL
                WHERE n.channel = EXCLUDED.channel AND n.recipient = EXCLUDED.recipient
                  AND n.subject IS NOT DISTINCT FROM EXCLUDED.subject
                  AND (n.body = EXCLUDED.body OR n.archived_at IS NOT NULL)
                  AND (n.status IN ('pending', 'failed') OR (n.status = 'sending' AND n.sending_until < now()))
                RETURNING n.id, n.tries
                """, params)
            if let row = claimed.rows.first, let id = row[0].flatMap({ Int64($0) }), let tries = row[1].flatMap({ Int($0) }) {
                return .claimed(id: id, try: tries)
            }
            // Not claimable: find out why (rare, so a second statement is fine).
            let found = try await connection.query("""
                SELECT id, status,
                       channel = $2 AND recipient = $3 AND subject IS NOT DISTINCT FROM $4
                           AND (body = $5 OR archived_at IS NOT NULL),
                       greatest(0, extract(epoch FROM sending_until - now()))
                  FROM notifications.notifications WHERE idempotency_key = $1
                """, Array(params[0..<5]))
            guard let row = found.rows.first, let id = row[0].flatMap({ Int64($0) }) else {
                return .busy(retryIn: 0)  // deleted in between: just run again
            }
            if row[2] != "t" { return .conflict }
            switch row[1] {
            case "sent": return .alreadySent(id: id)
            case "sending": return .busy(retryIn: row[3].flatMap { Double($0) } ?? 1)
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
            let result = try await connection.query(NotificationStatements.finish, [input])
            return Set(result.rows.compactMap { $0.first ?? nil })
        }
    }
}

/// The notifications tier's statements that tests prepare to check their plans.
public enum NotificationStatements {
    /// `NotificationStore.finish`: a batch of tries — the audit rows, and each
    /// notification's new status, fenced by its claim token.
    public static let finish = """
        WITH input AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
                notification_id bigint, try int, job_id bigint, job_attempt int, destination text,
                started_at double precision, duration_ms double precision, outcome text, status_code int,
                error_code text, excerpt text, new_status text, last_error text, claim_token text)
        ), attempt AS (
            INSERT INTO notifications.attempts
                (notification_id, try, job_id, job_attempt, destination, started_at, duration_ms,
                 outcome, status_code, error_code, excerpt)
            SELECT notification_id, try, job_id, job_attempt, destination, to_timestamp(started_at),
                   duration_ms, outcome, status_code, error_code, excerpt
              FROM input
            ON CONFLICT (notification_id, try) DO NOTHING
        )
        UPDATE notifications.notifications n SET
            status = i.new_status, claim_token = NULL, sending_until = NULL, updated_at = now(),
            last_status_code = i.status_code, last_error = i.last_error,
            sent_at = CASE WHEN i.new_status = 'sent' THEN now() END,
            failed_at = CASE WHEN i.new_status = 'failed' THEN now() END
          FROM input i
         -- Found through the primary key (the ids as an array), fenced by the claim
         -- token alone. With `n.status = 'sending'` the planner took that test as an
         -- index condition on notifications_open_idx and, with statistics from a quiet
         -- moment (one row estimated), scanned every row in `sending` for each batch.
         -- The token stands in for the status: the claim sets it with `sending`, and
         -- this statement, the only other writer of the table, clears it.
         WHERE n.id = ANY (ARRAY(SELECT input.notification_id FROM input))
           AND n.id = i.notification_id AND n.claim_token = i.claim_token
        RETURNING i.claim_token
        """
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
