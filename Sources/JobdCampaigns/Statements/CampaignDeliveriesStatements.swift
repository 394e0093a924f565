import JobdCore
import JobdPostgres

/// `oltp.deliveries` (one row per campaign and contact): what `CampaignStore` runs
/// for a delivery batch.
///
/// Each names the batch's rows by campaign, contacts and the batch (`batch`: the
/// first contact id, as in the job's payload and unique key). The batch is what
/// keeps a statement within the batch's own rows. A campaign the planner's
/// statistics do not know yet is estimated at one open row, so with only
/// `campaign_id` as its index condition each statement would read every open
/// delivery of the campaign (a campaign's delivery quadratic in its size). With
/// `batch = $b`, `deliveries_open_batch_contact_idx` (campaign_id, batch,
/// contact_id) reads one batch whatever the estimate; its contact order matches the
/// primary key's, so the primary key with `campaign_id` alone is never the cheaper
/// plan.
/// A nil batch (a job written before payloads carried it) drops the condition:
/// `$b IS NULL OR d.batch = $b` folds away when planned with the value bound
/// (`.perExecution`), leaving the campaign-wide statement.
enum CampaignDeliveriesStatements {
    /// The batch's deliveries to contacts no longer subscribed become suppressed.
    struct Suppress: PostgresStatement {
        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.deliveries d SET state = 'suppressed', claim_token = NULL, sending_until = NULL, updated_at = now()
              FROM oltp.contacts k
             WHERE d.campaign_id = $1 AND ($3::bigint IS NULL OR d.batch = $3::bigint)
               AND d.contact_id = ANY($2::bigint[]) AND k.id = d.contact_id
               AND k.status <> 'subscribed'
               -- pending, deferred, or sending with its claim lapsed; the open states
               -- spelled as the open index's predicate, which the index then implies.
               AND d.state IN ('pending', 'sending', 'deferred') AND (d.state <> 'sending' OR d.sending_until < now())
            """
        var bindings: PostgresBindings { [.int(id), .intArray(contacts), .int(batch)] }
    }

    /// A claim that lapsed `$3` times (its sender died mid-send each time: the recipient
    /// may be what kills it) is not taken again: the batch's such deliveries become
    /// failed. Bounds a poisonous recipient however often its batch is enqueued again.
    struct FailAbandoned: PostgresStatement {
        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        var maxTries: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.deliveries
               SET state = 'failed', claim_token = NULL, sending_until = NULL, updated_at = now(),
                   last_reply = 'its send was cut short ' || tries || ' times (the sender stopped mid-send)'
             WHERE campaign_id = $1 AND ($4::bigint IS NULL OR batch = $4::bigint)
               AND contact_id = ANY($2::bigint[]) AND state = 'sending' AND sending_until < now()
               AND tries >= $3
            """
        var bindings: PostgresBindings { [.int(id), .intArray(contacts), .int(maxTries), .int(batch)] }
    }

    /// Claims the deliveries of contacts `$2` of campaign `$1` that are to be sent
    /// now, all under token `$3` for `$4` seconds, in one statement: the rows it
    /// returns are the group's claims (a contact not returned is not to be sent
    /// now). A delivery is claimable when pending, or deferred and due, or `sending`
    /// whose claim lapsed (its sender died mid-send: sent again, with the same
    /// Message-ID) below `$5` tries (see `FailAbandoned`).
    struct ClaimGroup: PostgresStatement {
        struct Row: Sendable {
            var contact: Int64
            var address: String
            var name: String
            /// The contact's fields, JSON text.
            var fields: String
            var tries: Int
            var unsubscribeToken: String?
        }

        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        var token: String
        var window: Double
        var maxTries: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.deliveries d
               SET state = 'sending', claim_token = $3, sending_until = now() + make_interval(secs => $4::float8),
                   tries = d.tries + 1, updated_at = now()
              FROM oltp.contacts k
             WHERE d.campaign_id = $1 AND ($6::bigint IS NULL OR d.batch = $6::bigint)
               AND d.contact_id = ANY($2::bigint[]) AND k.id = d.contact_id AND k.status = 'subscribed'
               AND (d.state = 'pending' OR (d.state = 'deferred' AND d.next_attempt_at <= now())
                    OR (d.state = 'sending' AND d.sending_until < now() AND d.tries < $5))
            RETURNING d.contact_id, k.address, k.name, k.fields::text AS fields, d.tries,
                      oltp.unsubscribe_token(d.contact_id, d.campaign_id) AS unsubscribe_token
            """
        var bindings: PostgresBindings {
            [.int(id), .intArray(contacts), .text(token), .double(window), .int(maxTries), .int(batch)]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                contact: try row.decode("contact_id"), address: try row.decode("address"), name: try row.decode("name"),
                fields: try row.decode("fields"), tries: try row.decode("tries"),
                unsubscribeToken: try row.decode("unsubscribe_token", as: String?.self))
        }
    }

    /// Records what became of a group's sends (`$2` contacts, each with its state,
    /// reply code, reply and retry delay at the same index), fenced on the group's
    /// claim token `$3`; `recorded` counts the rows whose claim was still held.
    /// Bounces mark their contacts bounced; `pending` gives the try back.
    struct RecordGroup: PostgresStatement {
        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        var token: String
        var states: [String]
        var codes: [Int?]
        var replies: [String?]
        var retryIn: [Double]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH o AS (
                SELECT * FROM unnest($2::bigint[], $4::text[], $5::int[], $6::text[], $7::float8[])
                    AS o(contact_id, state, code, reply, retry_in)
            ), d AS (
                UPDATE oltp.deliveries d
                   SET state = o.state, last_code = coalesce(o.code, d.last_code), last_reply = coalesce(o.reply, d.last_reply),
                       claim_token = NULL, sending_until = NULL,
                       tries = CASE WHEN o.state = 'pending' THEN greatest(d.tries - 1, 0) ELSE d.tries END,
                       next_attempt_at = CASE WHEN o.state = 'deferred' THEN now() + make_interval(secs => o.retry_in) END,
                       sent_at = CASE WHEN o.state = 'sent' THEN now() END, updated_at = now()
                  FROM o
                 WHERE d.campaign_id = $1 AND ($8::bigint IS NULL OR d.batch = $8::bigint)
                   AND d.contact_id = o.contact_id AND d.state = 'sending' AND d.claim_token = $3
                RETURNING d.contact_id, o.state
            ), b AS (
                UPDATE oltp.contacts SET status = 'bounced', updated_at = now()
                 WHERE id IN (SELECT contact_id FROM d WHERE state = 'bounced') AND status <> 'bounced'
            )
            SELECT count(*) AS recorded FROM d
            """
        var bindings: PostgresBindings {
            [
                .int(id), .intArray(contacts), .text(token), .textArray(states.map { Optional($0) }),
                .textArray(codes.map { $0.map { String($0) } }), .textArray(replies), .textArray(retryIn.map { Optional(String($0)) }),
                .int(batch),
            ]
        }

        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("recorded") }
    }

    /// The batch's open deliveries (`open`), and the seconds until the first of them
    /// may be tried (`wait`, 0 if one is pending now; NULL when none is open).
    struct NextOpen: PostgresStatement {
        struct Row: Sendable {
            var open: Int
            var wait: Double?
        }

        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT count(*) AS open,
                   greatest(0, extract(epoch FROM min(CASE state WHEN 'pending' THEN now()
                                                                  WHEN 'deferred' THEN next_attempt_at
                                                                  ELSE sending_until END) - now()))::float8 AS wait
              FROM oltp.deliveries
             WHERE campaign_id = $1 AND ($3::bigint IS NULL OR batch = $3::bigint)
               AND contact_id = ANY($2::bigint[]) AND state IN ('pending', 'sending', 'deferred')
            """
        var bindings: PostgresBindings { [.int(id), .intArray(contacts), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(open: try row.decode("open"), wait: try row.decode("wait", as: Double?.self))
        }
    }

    /// The batch's unsent deliveries of a cancelled campaign become cancelled.
    struct CancelOpen: PostgresStatement {
        var id: Int64
        var batch: Int64?
        var contacts: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.deliveries SET state = 'cancelled', updated_at = now()
             WHERE campaign_id = $1 AND ($3::bigint IS NULL OR batch = $3::bigint)
               AND contact_id = ANY($2::bigint[]) AND state IN ('pending', 'deferred')
            """
        var bindings: PostgresBindings { [.int(id), .intArray(contacts), .int(batch)] }
    }
}
