import JobdCore
import JobdPostgres

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
    /// never claimed again. One round trip in the common case.
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
                    updated_at = now(), failed_at = NULL
                WHERE n.channel = EXCLUDED.channel AND n.recipient = EXCLUDED.recipient
                  AND n.subject IS NOT DISTINCT FROM EXCLUDED.subject AND n.body = EXCLUDED.body
                  AND (n.status IN ('pending', 'failed') OR (n.status = 'sending' AND n.sending_until < now()))
                RETURNING n.id, n.tries
                """, params)
            if let row = claimed.rows.first, let id = row[0].flatMap({ Int64($0) }), let tries = row[1].flatMap({ Int($0) }) {
                return .claimed(id: id, try: tries)
            }
            // Not claimable: find out why (rare, so a second statement is fine).
            let found = try await connection.query("""
                SELECT id, status,
                       channel = $2 AND recipient = $3 AND subject IS NOT DISTINCT FROM $4 AND body = $5,
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

    /// Appends the try to the audit trail and moves the notification out of
    /// `sending`, fenced on the claim token. The attempt row is written even when
    /// the fence refuses (it happened); returns whether the status was written.
    /// Idempotent: writing the same record twice changes nothing the second time.
    func finish(_ record: TryRecord) async throws -> Bool {
        let params: [String?] = [
            String(record.notificationID), String(record.tryNumber), String(record.jobID), String(record.jobAttempt),
            record.destination, String(record.startedAt), String(record.durationMs), record.outcome,
            record.statusCode.map(String.init), record.errorCode, record.excerpt, record.newStatus, record.lastError,
            record.claimToken,
        ]
        return try await database.withConnection { connection in
            let result = try await connection.query("""
                WITH attempt AS (
                    INSERT INTO notifications.attempts
                        (notification_id, try, job_id, job_attempt, destination, started_at, duration_ms,
                         outcome, status_code, error_code, excerpt)
                    VALUES ($1::bigint, $2::int, $3::bigint, $4::int, $5, to_timestamp($6::double precision),
                            $7::double precision, $8, $9::int, $10, $11)
                    ON CONFLICT (notification_id, try) DO NOTHING
                )
                UPDATE notifications.notifications SET
                    status = $12, claim_token = NULL, sending_until = NULL, updated_at = now(),
                    last_status_code = $9::int, last_error = $13,
                    sent_at = CASE WHEN $12 = 'sent' THEN now() END,
                    failed_at = CASE WHEN $12 = 'failed' THEN now() END
                WHERE id = $1::bigint AND status = 'sending' AND claim_token = $14
                RETURNING id
                """, params)
            return !result.rows.isEmpty
        }
    }
}
