import JobdCore
import JobdPostgres

/// `notifications.notifications` and its audit trail `notifications.attempts`: the
/// claim of a notification for one send, the record of each try, and retention.
/// Every statement runs plain (`.perExecution`), as the store always ran them.
public enum NotificationStatements {
    /// `Finish`'s SQL, for tests that prepare it to check its plan.
    public static var finish: String { Finish.sql.text }

    /// Inserts the notification or takes over an existing row when it may be sent
    /// now: `pending`, `failed`, or `sending` whose claimant's window has passed. An
    /// archived row matches on channel, recipient and subject alone and gets its body
    /// back. Returns no row when the notification is not claimable.
    struct Claim: PostgresStatement {
        var request: NotificationRequest
        var token: String
        /// Seconds the claim holds the notification.
        var window: Double
        var jobID: JobID

        struct Row: Sendable, Equatable {
            var id: Int64
            var tries: Int
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(request.idempotencyKey), .text(request.channel.rawValue), .text(request.to), .text(request.subject),
             .text(request.body), .text(token), .double(window), .int(jobID)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), tries: try row.decode("tries"))
        }

        static let sql: SQL = """
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
            """
    }

    /// `Claim` for several notifications in one statement: the same insert or
    /// takeover, row by row, under the same conditions (keep the two in step). The
    /// idempotency keys must be distinct (one statement cannot touch a row twice).
    /// Rows are taken in key order, so two batches (two daemons) lock shared keys in
    /// the same order. Returns a row for each notification claimed, by its token;
    /// none for one not claimable.
    struct ClaimBatch: PostgresStatement {
        var claims: [NotificationClaimRequest]

        struct Row: Sendable, Equatable {
            var id: Int64
            var tries: Int
            var claimToken: String
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.textArray(claims.map(\.request.idempotencyKey)), .textArray(claims.map(\.request.channel.rawValue)),
             .textArray(claims.map(\.request.to)), .textArray(claims.map(\.request.subject)),
             .textArray(claims.map(\.request.body)), .textArray(claims.map(\.token)),
             .intArray(claims.map { TotalConversion.milliseconds($0.window) }), .intArray(claims.map(\.jobID))]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), tries: try row.decode("tries"), claimToken: try row.decode("claim_token"))
        }

        static let sql: SQL = """
            INSERT INTO notifications.notifications AS n
                (idempotency_key, channel, recipient, subject, body, status, tries, claim_token, sending_until, job_id)
            SELECT i.idempotency_key, i.channel, i.recipient, i.subject, i.body, 'sending', 1, i.claim_token,
                   now() + make_interval(secs => i.window_ms / 1000.0::double precision), i.job_id
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
                   AS i (idempotency_key, channel, recipient, subject, body, claim_token, window_ms, job_id)
             ORDER BY i.idempotency_key
            ON CONFLICT (idempotency_key) DO UPDATE SET
                status = 'sending', tries = n.tries + 1, claim_token = EXCLUDED.claim_token,
                sending_until = EXCLUDED.sending_until, job_id = EXCLUDED.job_id,
                updated_at = now(), failed_at = NULL,
                body = CASE WHEN n.archived_at IS NULL THEN n.body ELSE EXCLUDED.body END, archived_at = NULL
            WHERE n.channel = EXCLUDED.channel AND n.recipient = EXCLUDED.recipient
              AND n.subject IS NOT DISTINCT FROM EXCLUDED.subject
              AND (n.body = EXCLUDED.body OR n.archived_at IS NOT NULL)
              AND (n.status IN ('pending', 'failed') OR (n.status = 'sending' AND n.sending_until < now()))
            RETURNING n.id, n.tries, n.claim_token
            """
    }

    /// Why a `Claim` took nothing: the row under the key, whether it names the same
    /// notification, and how long its current claim has left.
    struct Unclaimed: PostgresStatement {
        var request: NotificationRequest

        struct Row: Sendable, Equatable {
            var id: Int64
            var status: String
            /// Same channel, recipient, subject and body (or archived); nil counts as no.
            var sameNotification: Bool?
            /// Seconds until the current claim's window ends (0 when it has).
            var claimLeft: Double?
        }

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.text(request.idempotencyKey), .text(request.channel.rawValue), .text(request.to), .text(request.subject),
             .text(request.body)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), status: try row.decode("status"),
                sameNotification: try row.decode("same_notification", as: Bool?.self),
                claimLeft: try row.decode("claim_left", as: Double?.self))
        }

        static let sql: SQL = """
            SELECT id, status,
                   channel = $2 AND recipient = $3 AND subject IS NOT DISTINCT FROM $4
                       AND (body = $5 OR archived_at IS NOT NULL) AS same_notification,
                   greatest(0, extract(epoch FROM sending_until - now())) AS claim_left
              FROM notifications.notifications WHERE idempotency_key = $1
            """
    }

    /// A batch of tries — the audit rows, and each notification's new status,
    /// fenced by its claim token. `input` is a JSON array of objects with the
    /// columns of the `input` record below. Returns the claim tokens whose status
    /// was written.
    struct Finish: PostgresStatement {
        var input: String

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.jsonb(input)] }

        static func decode(_ row: PostgresRow) throws -> String { try row.decode("claim_token") }

        static let sql: SQL = """
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

    /// Deletes up to `batch` finished notifications (and their tries) that finished
    /// more than `olderThan` ago, through `notifications.trim_finished`, which
    /// is all `jobd_daemon` may delete there. Returns how many it deleted.
    struct TrimFinished: PostgresStatement {
        var olderThan: Duration
        var batch: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("deleted") }

        static let sql: SQL = "SELECT notifications.trim_finished($1::float8, $2::int) AS deleted"
    }

    /// Empties the body of up to `batch` finished notifications older than
    /// `olderThan` and the excerpts of their tries, in one statement.
    /// `updated_at` is left alone: it stays the time the notification finished,
    /// which deletion goes by. Returns how many notifications it archived.
    struct Archive: PostgresStatement {
        var olderThan: Duration
        var batch: Int

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("archived") }

        static let sql: SQL = """
            WITH doomed AS (
                SELECT id FROM notifications.notifications
                 WHERE status IN ('sent', 'failed') AND archived_at IS NULL
                   AND updated_at < now() - make_interval(secs => $1::float8)
                 ORDER BY updated_at
                 LIMIT $2::int
                 FOR UPDATE SKIP LOCKED
            ), archived AS (
                UPDATE notifications.notifications n SET body = '', archived_at = now()
                  FROM doomed d WHERE n.id = d.id
                RETURNING n.id
            ), excerpts AS (
                UPDATE notifications.attempts a SET excerpt = NULL
                  FROM archived x WHERE a.notification_id = x.id AND a.excerpt IS NOT NULL
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM archived) AS archived, (SELECT count(*) FROM excerpts) AS excerpts
            """
    }
}
