import Foundation
import JobdCore
import JobdPostgres
import JobdQueue

/// The OLTP tier's campaign SQL. Each operation is one statement, so each is its
/// own transaction: a crash between two of them leaves a state the next run resumes.
public struct CampaignStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// A campaign with what its sender needs.
    public struct Campaign: Sendable, Equatable {
        public var id: Int64
        public var workspaceID: Int64
        public var status: String
        /// Seconds until `send_at`; ≤ 0 when due.
        public var dueIn: Double
        public var fanoutDone: Bool
        public var contentRef: String?
        public var listID: Int64
        public var template: CampaignTemplate
        public var relayURL: String
        public var username: String?
        public var secretRef: String?
        public var startTLS: String
    }

    public func campaign(_ id: Int64) async throws -> Campaign? {
        let result = try await connection.query("""
            SELECT c.id, c.workspace_id, c.status,
                   coalesce(extract(epoch FROM c.send_at - now()), 0)::float8, c.fanout_done, c.content_ref, c.list_id,
                   c.subject, c.html_template, c.text_template,
                   a.from_address, a.from_name, a.unsubscribe_url, a.relay_url, a.username, a.secret_ref, a.starttls
              FROM oltp.campaigns c JOIN oltp.email_accounts a ON a.id = c.account_id
             WHERE c.id = $1
            """, [String(id)])
        guard let row = result.rows.first, let campaignID = row[0].flatMap({ Int64($0) }),
              let workspaceID = row[1].flatMap({ Int64($0) }), let listID = row[6].flatMap({ Int64($0) })
        else { return nil }
        return Campaign(
            id: campaignID, workspaceID: workspaceID, status: row[2] ?? "", dueIn: Double(row[3] ?? "") ?? 0,
            fanoutDone: row[4] == "t", contentRef: row[5], listID: listID,
            template: CampaignTemplate(
                campaignID: campaignID, fromAddress: row[10] ?? "", fromName: row[11] ?? "", subject: row[7] ?? "",
                html: row[8], text: row[9], unsubscribeURL: row[12] ?? ""),
            relayURL: row[13] ?? "", username: row[14], secretRef: row[15], startTLS: row[16] ?? "try")
    }

    /// scheduled → sending; false if the campaign was not scheduled.
    public func start(_ id: Int64) async throws -> Bool {
        try await connection.query("""
            UPDATE oltp.campaigns SET status = 'sending', started_at = coalesce(started_at, now())
             WHERE id = $1 AND status = 'scheduled'
            """, [String(id)]).affectedRows == 1
    }

    public func setContentRef(_ id: Int64, _ ref: String) async throws {
        try await connection.query(
            "UPDATE oltp.campaigns SET content_ref = $2 WHERE id = $1 AND content_ref IS NULL", [String(id), ref])
    }

    public struct FanOutPage: Sendable, Equatable {
        /// False when the campaign is not `sending` or its fan-out was already done.
        public var ran: Bool
        public var members: Int
        public var deliveries: Int
        public var jobs: Int
        public var done: Bool
    }

    /// Turns the next keyset page of the list into delivery rows and delivery jobs
    /// (in the outbox), and advances the cursor — all in one statement. A member
    /// whose delivery row already exists is skipped, so no recipient is enqueued
    /// twice whatever ran before. The campaign row is locked for the statement, so
    /// two fan-outs of one campaign take turns.
    public func fanOutPage(_ id: Int64, pageSize: Int) async throws -> FanOutPage {
        let result = try await connection.query(Self.fanOutSQL, [String(id), String(pageSize)])
        let row = result.rows.first ?? []
        func int(_ i: Int) -> Int { row.indices.contains(i) ? Int(row[i] ?? "") ?? 0 : 0 }
        return FanOutPage(
            ran: int(0) == 1, members: int(1), deliveries: int(2), jobs: int(3),
            done: row.indices.contains(4) ? row[4] != "f" : true)
    }

    /// `$1` campaign id, `$2` page size.
    public static let fanOutSQL = """
        WITH c AS (
            SELECT id, workspace_id, list_id, fanout_cursor, batch_size FROM oltp.campaigns
             WHERE id = $1 AND status = 'sending' AND NOT fanout_done
             FOR UPDATE
        ), page AS (
            -- The contact's status by primary key per member (a scalar subquery is
            -- never turned into a hash join over the whole contacts table).
            SELECT m.contact_id, (SELECT k.status FROM oltp.contacts k WHERE k.id = m.contact_id) AS status
              FROM c CROSS JOIN LATERAL (
                SELECT contact_id FROM oltp.list_members
                 WHERE list_id = c.list_id AND contact_id > c.fanout_cursor
                 -- The primary key's order: read in order from it, never sorted.
                 ORDER BY list_id, contact_id LIMIT $2) m
        ), ins AS (
            INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state)
            SELECT c.id, p.contact_id, c.workspace_id,
                   CASE WHEN p.status = 'subscribed' THEN 'pending' ELSE 'suppressed' END
              FROM c CROSS JOIN page p
            ON CONFLICT (campaign_id, contact_id) DO NOTHING
            RETURNING contact_id, state
        ), numbered AS (
            SELECT (row_number() OVER (ORDER BY contact_id) - 1) / (SELECT batch_size FROM c) AS n, contact_id
              FROM ins WHERE state = 'pending'
        ), jobs AS (
            INSERT INTO oltp.outbox (kind, payload, unique_key)
            SELECT 'campaign.deliver',
                   jsonb_build_object('campaign_id', $1::bigint, 'contacts', jsonb_agg(contact_id ORDER BY contact_id)),
                   'campaign:' || $1::bigint || ':deliver:' || min(contact_id)
              FROM numbered GROUP BY n
            RETURNING 1
        ), moved AS (
            UPDATE oltp.campaigns
               SET fanout_cursor = coalesce((SELECT max(contact_id) FROM page), fanout_cursor),
                   fanout_done = (SELECT count(*) FROM page) < $2
             WHERE id = (SELECT id FROM c)
            RETURNING fanout_done
        )
        SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM page), (SELECT count(*) FROM ins),
               (SELECT count(*) FROM jobs), coalesce((SELECT fanout_done FROM moved), true)
        """

    /// Marks the batch's deliveries to contacts no longer subscribed as suppressed.
    public func suppress(_ id: Int64, contacts: [Int64]) async throws -> Int {
        try await connection.query("""
            UPDATE oltp.deliveries d SET state = 'suppressed', claim_token = NULL, sending_until = NULL, updated_at = now()
              FROM oltp.contacts k
             WHERE d.campaign_id = $1 AND d.contact_id = ANY($2::bigint[]) AND k.id = d.contact_id
               AND k.status <> 'subscribed'
               AND (d.state IN ('pending', 'deferred') OR (d.state = 'sending' AND d.sending_until < now()))
            """, [String(id), PostgresArray.integers(contacts)]).affectedRows
    }

    public struct Claimed: Sendable, Equatable {
        public var recipient: CampaignRecipient
        /// This send's number for the recipient (1 the first time).
        public var tries: Int
    }

    /// Claims one recipient for sending: pending, deferred and due, or `sending`
    /// whose claim window passed (a run that died mid-send: sent again, with the
    /// same Message-ID). Nil when it is not to be sent now.
    public func claim(_ id: Int64, contact: Int64, token: String, window: Double) async throws -> Claimed? {
        let result = try await connection.query("""
            UPDATE oltp.deliveries d
               SET state = 'sending', claim_token = $3, sending_until = now() + make_interval(secs => $4::float8),
                   tries = d.tries + 1, updated_at = now()
              FROM oltp.contacts k
             WHERE d.campaign_id = $1 AND d.contact_id = $2 AND k.id = d.contact_id AND k.status = 'subscribed'
               AND (d.state = 'pending' OR (d.state = 'deferred' AND d.next_attempt_at <= now())
                    OR (d.state = 'sending' AND d.sending_until < now()))
            RETURNING k.address, k.name, k.fields::text, d.tries, oltp.unsubscribe_token(d.contact_id, d.campaign_id)
            """, [String(id), String(contact), token, String(window)])
        guard let row = result.rows.first else { return nil }
        var fields: [String: JSONValue] = [:]
        if let text = row[2], case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) {
            fields = object
        }
        return Claimed(
            recipient: CampaignRecipient(
                contactID: contact, address: row[0] ?? "", name: row[1] ?? "", fields: fields,
                unsubscribeToken: row[4] ?? ""),
            tries: Int(row[3] ?? "") ?? 1)
    }

    /// What became of one send: `sent`, `deferred` (tried again after `retryIn`),
    /// `bounced` (the contact becomes bounced), `failed`, or `pending` (released
    /// unsent). Fenced on the claim token: false if the claim was lost.
    @discardableResult
    public func record(
        _ id: Int64, contact: Int64, token: String, state: String, code: Int?, reply: String?, retryIn: Double = 0
    ) async throws -> Bool {
        let result = try await connection.query("""
            WITH d AS (
                UPDATE oltp.deliveries
                   SET state = $4, last_code = coalesce($5::int, last_code), last_reply = coalesce($6, last_reply),
                       claim_token = NULL, sending_until = NULL,
                       tries = CASE WHEN $4 = 'pending' THEN greatest(tries - 1, 0) ELSE tries END,
                       next_attempt_at = CASE WHEN $4 = 'deferred' THEN now() + make_interval(secs => $7::float8) END,
                       sent_at = CASE WHEN $4 = 'sent' THEN now() END, updated_at = now()
                 WHERE campaign_id = $1 AND contact_id = $2 AND state = 'sending' AND claim_token = $3
                RETURNING contact_id
            ), b AS (
                UPDATE oltp.contacts SET status = 'bounced', updated_at = now()
                 WHERE $4 = 'bounced' AND id IN (SELECT contact_id FROM d) AND status <> 'bounced'
            )
            SELECT count(*) FROM d
            """, [String(id), String(contact), token, state, code.map(String.init), reply.map { Self.bounded($0) },
                  String(retryIn)])
        return result.rows.first?.first == "1"
    }

    /// Seconds until the batch's next open delivery may be tried (0 if one is
    /// pending now), or nil when none of them is open.
    public func nextOpen(_ id: Int64, contacts: [Int64]) async throws -> Double? {
        let result = try await connection.query("""
            SELECT count(*), greatest(0, extract(epoch FROM min(CASE state WHEN 'pending' THEN now()
                                                                  WHEN 'deferred' THEN next_attempt_at
                                                                  ELSE sending_until END) - now()))::float8
              FROM oltp.deliveries
             WHERE campaign_id = $1 AND contact_id = ANY($2::bigint[]) AND state IN ('pending', 'sending', 'deferred')
            """, [String(id), PostgresArray.integers(contacts)])
        guard let row = result.rows.first, (Int(row[0] ?? "") ?? 0) > 0 else { return nil }
        return Double(row[1] ?? "") ?? 0
    }

    /// The batch's unsent deliveries of a cancelled campaign.
    @discardableResult
    public func cancelOpen(_ id: Int64, contacts: [Int64]) async throws -> Int {
        try await connection.query("""
            UPDATE oltp.deliveries SET state = 'cancelled', updated_at = now()
             WHERE campaign_id = $1 AND contact_id = ANY($2::bigint[]) AND state IN ('pending', 'deferred')
            """, [String(id), PostgresArray.integers(contacts)]).affectedRows
    }

    /// sending → sent once the fan-out is done and no delivery is open. Each
    /// delivery outcome is committed before this runs, so the last run to finish
    /// sees every other's outcome.
    @discardableResult
    public func finishIfDone(_ id: Int64) async throws -> Bool {
        try await connection.query("""
            UPDATE oltp.campaigns SET status = 'sent', finished_at = now()
             WHERE id = $1 AND status = 'sending' AND fanout_done
               AND NOT EXISTS (SELECT 1 FROM oltp.deliveries
                                WHERE campaign_id = $1 AND state IN ('pending', 'sending', 'deferred'))
            """, [String(id)]).affectedRows == 1
    }

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > 1_000 else { return text }
        var cut = String(decoding: Array(text.utf8.prefix(1_000)), as: UTF8.self)
        while cut.last == "\u{FFFD}" { cut.removeLast() }
        return cut
    }
}
