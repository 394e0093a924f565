import Foundation
import JobdCore
import JobdPostgres
import JobdQueue

/// The OLTP tier's campaign SQL. Each operation is one statement, so each is its
/// own transaction: a crash between two of them leaves a state the next run resumes.
/// The statements are in `Statements/` (`CampaignCampaignsStatements`,
/// `CampaignDeliveriesStatements`). A delivery batch's operations take the batch
/// (its first contact id, from the job's payload) besides its contacts: it bounds
/// each statement to the batch's rows in `deliveries_open_batch_contact_idx`; nil
/// (a payload without one) reads by campaign and contacts alone, as correct but
/// reading every open delivery of the campaign when the planner misjudges it. The
/// store borrows its connection (a tier pool's, for one call) and never hands it out.
public struct CampaignStore: Sendable {
    private let connection: PostgresConnection

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
        public var accountID: Int64
        /// The account's own messages per second; nil: no limit.
        public var accountRate: Double?
        /// Rows in `oltp.campaign_attachments`: what the stored content must carry.
        public var attachmentCount: Int
    }

    public func campaign(_ id: Int64) async throws -> Campaign? {
        try await connection.firstRow(CampaignCampaignsStatements.Campaign(id: id))
    }

    /// scheduled → sending; false if the campaign was not scheduled.
    public func start(_ id: Int64) async throws -> Bool {
        try await connection.execute(CampaignCampaignsStatements.Start(id: id)) == 1
    }

    public struct Attachment: Sendable, Equatable {
        public var filename: String
        public var contentType: String
        public var data: [UInt8]
    }

    /// The campaign's attachments from `oltp.campaign_attachments`, in order.
    public func attachments(_ id: Int64) async throws -> [Attachment] {
        try await connection.rows(CampaignAttachmentsStatements.OfCampaign(id: id))
    }

    /// scheduled | sending → paused with `reason`; false if it was neither.
    public func pause(_ id: Int64, reason: String) async throws -> Bool {
        try await connection.execute(CampaignAttachmentsStatements.Pause(id: id, reason: reason)) == 1
    }

    public func setContentRef(_ id: Int64, _ ref: String) async throws {
        try await connection.execute(CampaignCampaignsStatements.SetContentRef(id: id, ref: ref))
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
        try await connection.firstRow(CampaignCampaignsStatements.FanOutPage(id: id, pageSize: pageSize))
            ?? FanOutPage(ran: false, members: 0, deliveries: 0, jobs: 0, done: true)
    }

    /// The fan-out's statement text (`$1` campaign id, `$2` page size), for plan tests.
    public static var fanOutSQL: String { CampaignCampaignsStatements.FanOutPage.sql.text }

    /// Marks the batch's deliveries to contacts no longer subscribed as suppressed.
    public func suppress(_ id: Int64, batch: Int64?, contacts: [Int64]) async throws -> Int {
        try await connection.execute(CampaignDeliveriesStatements.Suppress(id: id, batch: batch, contacts: contacts))
    }

    public struct Claimed: Sendable, Equatable {
        public var recipient: CampaignRecipient
        /// This send's number for the recipient (1 the first time).
        public var tries: Int
    }

    /// The batch's deliveries whose claim lapsed `maxTries` times become failed.
    @discardableResult
    public func failAbandoned(_ id: Int64, batch: Int64?, contacts: [Int64], maxTries: Int) async throws -> Int {
        try await connection.execute(CampaignDeliveriesStatements.FailAbandoned(id: id, batch: batch, contacts: contacts, maxTries: maxTries))
    }

    /// Claims, in one statement under one token, the group's recipients that are to
    /// be sent now (`CampaignDeliveriesStatements.ClaimGroup`'s rule); the others are not returned.
    public func claimGroup(
        _ id: Int64, batch: Int64?, contacts: [Int64], token: String, window: Double, maxTries: Int
    ) async throws -> [Claimed] {
        let rows = try await connection.rows(CampaignDeliveriesStatements.ClaimGroup(
            id: id, batch: batch, contacts: contacts, token: token, window: window, maxTries: maxTries))
        return rows.map { row in
            var fields: [String: JSONValue] = [:]
            if case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(row.fields.utf8)) {
                fields = object
            }
            return Claimed(
                recipient: CampaignRecipient(
                    contactID: row.contact, address: row.address, name: row.name, fields: fields,
                    unsubscribeToken: row.unsubscribeToken ?? ""),
                tries: row.tries)
        }
    }

    /// One send's outcome in a group record: `sent`, `deferred` (tried again after
    /// `retryIn`), `bounced` (the contact becomes bounced), `failed`, or `pending`
    /// (released unsent).
    public struct Outcome: Sendable, Equatable {
        public var contact: Int64
        public var state: String
        public var code: Int?
        public var reply: String?
        public var retryIn: Double

        public init(contact: Int64, state: String, code: Int? = nil, reply: String? = nil, retryIn: Double = 0) {
            self.contact = contact
            self.state = state
            self.code = code
            self.reply = reply
            self.retryIn = retryIn
        }
    }

    /// Records a group's outcomes in one statement, fenced on the group's claim
    /// token: returns how many claims were still held.
    @discardableResult
    public func recordGroup(_ id: Int64, batch: Int64?, token: String, outcomes: [Outcome]) async throws -> Int {
        guard !outcomes.isEmpty else { return 0 }
        return try await connection.firstRow(CampaignDeliveriesStatements.RecordGroup(
            id: id, batch: batch, contacts: outcomes.map(\.contact), token: token, states: outcomes.map(\.state), codes: outcomes.map(\.code),
            replies: outcomes.map { $0.reply.map { Self.bounded($0) } }, retryIn: outcomes.map(\.retryIn))) ?? 0
    }

    /// Seconds until the batch's next open delivery may be tried (0 if one is
    /// pending now), or nil when none of them is open.
    public func nextOpen(_ id: Int64, batch: Int64?, contacts: [Int64]) async throws -> Double? {
        guard let row = try await connection.firstRow(CampaignDeliveriesStatements.NextOpen(id: id, batch: batch, contacts: contacts)),
              row.open > 0 else { return nil }
        return row.wait ?? 0
    }

    /// The domain and domain limit of each of the batch's open deliveries.
    public func recipientLimits(_ id: Int64, account: Int64, batch: Int64?, contacts: [Int64]) async throws -> [RecipientLimit] {
        try await connection.rows(CampaignSendersStatements.RecipientLimits(id: id, account: account, batch: batch, contacts: contacts))
    }

    /// Writes this daemon's report on the campaign (`oltp.campaign_senders`) and
    /// pauses the campaign if its bounce rate passed its threshold: returns the
    /// reason when this call paused it, and the campaign's status before.
    public func report(
        _ id: Int64, daemon: String, window: CampaignSendMonitor.Window, seconds: Double, slots: Int, heldFor: Double? = nil
    ) async throws -> (pausedReason: String?, status: String?) {
        let statement = CampaignSendersStatements.Report(
            id: id, daemon: daemon, window: window, seconds: seconds, slots: slots, heldFor: heldFor)
        let row = try await connection.firstRow(statement)
        return (row?.pausedReason, row?.status)
    }

    /// The batch's unsent deliveries of a cancelled campaign.
    @discardableResult
    public func cancelOpen(_ id: Int64, batch: Int64?, contacts: [Int64]) async throws -> Int {
        try await connection.execute(CampaignDeliveriesStatements.CancelOpen(id: id, batch: batch, contacts: contacts))
    }

    /// sending → sent once the fan-out is done and no delivery is open. Each
    /// delivery outcome is committed before this runs, so the last run to finish
    /// sees every other's outcome.
    @discardableResult
    public func finishIfDone(_ id: Int64) async throws -> Bool {
        try await connection.execute(CampaignCampaignsStatements.FinishIfDone(id: id)) == 1
    }

    static func bounded(_ text: String) -> String {
        guard text.utf8.count > 1_000 else { return text }
        var cut = String(decoding: Array(text.utf8.prefix(1_000)), as: UTF8.self)
        while cut.last == "\u{FFFD}" { cut.removeLast() }
        return cut
    }
}
