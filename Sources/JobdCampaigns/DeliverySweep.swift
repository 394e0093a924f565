import JobdCore
import JobdPostgres

/// Keeps every open delivery of a sending campaign covered by an unfinished
/// `campaign.deliver` job, and every sending campaign moving.
///
/// A delivery job can end while recipients of its batch are still open: it was
/// dead-lettered (killed mid-batch `JOBD_MAX_RESCUES` times, its attempts spent
/// while the OLTP database was down, or dropped by an operator). Nothing else
/// would enqueue them again: the fan-out skips recipients that have a delivery row.
/// One pass, per scheduled campaign: no preparation in the queue or the outbox (its
/// job died) → it is enqueued again, to run at the send time. Per sending campaign:
///   * its open batches (`oltp.deliveries.batch`, one index probe per batch), a
///     page at a time; the queue says which have an unfinished job (their unique
///     key, `campaign:<id>:deliver:<batch>`); each batch without one is enqueued
///     again through the outbox, under that same key, with the batch's recipients
///     open now. A job the queue still holds under the key drops the copy, so a
///     batch is never covered twice by the sweep;
///   * a fan-out not done with no preparation in the queue or the outbox is
///     enqueued again (the preparation continues from its cursor);
///   * a campaign whose fan-out is done and whose every delivery is final is marked
///     `sent` (the batch that finished last may have been the one that died).
/// The sweep sends nothing and claims nothing: a re-enqueued batch claims each
/// recipient as any batch does (pending, deferred and due, or `sending` past its
/// claim window), so no recipient is sent twice outside the claim window.
///
/// Runs inside `OutboxRelay` (one per OLTP database, under its lock), between two
/// relay rounds: no outbox row moves to the queue while a pass looks at both.
/// Cost per pass: two statements per campaign plus two per `batchesPerRound` open
/// batches (10,000 batches of a million-recipient campaign: 40 statements).
public struct DeliverySweep: Sendable {
    let oltp: PostgresConnection
    let queue: PostgresConnection
    let batchesPerRound: Int

    public init(oltp: PostgresConnection, queue: PostgresConnection, batchesPerRound: Int = 500) {
        self.oltp = oltp
        self.queue = queue
        self.batchesPerRound = max(1, batchesPerRound)
    }

    public struct Outcome: Sendable, Equatable {
        /// Scheduled and sending campaigns looked at.
        public var campaigns = 0
        /// Batches with an open delivery.
        public var openBatches = 0
        /// Delivery jobs written to the outbox (batches no unfinished job covered).
        public var enqueued = 0
        /// Preparations written to the outbox.
        public var preparations = 0
        /// Campaigns marked sent.
        public var finished = 0
        /// `oltp.campaign_senders` rows of finished campaigns deleted.
        public var prunedReports = 0
        public init() {}
    }

    public static func deliverKey(campaign: Int64, batch: Int64) -> String {
        "campaign:\(campaign):deliver:\(batch)"
    }

    /// How long a finished campaign's `oltp.campaign_senders` rows are kept after
    /// their last write.
    public static let reportsKeptFor = 600.0

    /// One pass over every scheduled and sending campaign, then the reports of
    /// finished campaigns are pruned.
    @discardableResult
    public func sweep() async throws -> Outcome {
        var outcome = Outcome()
        var after: Int64 = 0
        let campaignsPerRound = 100
        while true {
            let campaigns = try await oltp.rows(CampaignSweepStatements.Sending(after: after, limit: campaignsPerRound))
            for campaign in campaigns {
                try Task.checkCancellation()
                outcome.campaigns += 1
                if campaign.scheduled {
                    try await sweepScheduled(campaign: campaign.id, into: &outcome)
                } else {
                    try await sweep(campaign: campaign.id, fanoutDone: campaign.fanoutDone, into: &outcome)
                }
            }
            guard let last = campaigns.last, campaigns.count == campaignsPerRound else { break }
            after = last.id
        }
        while true {
            try Task.checkCancellation()
            let pruned = try await oltp.firstRow(CampaignSweepStatements.PruneSenders(olderThan: Self.reportsKeptFor, limit: 1_000)) ?? 0
            outcome.prunedReports += pruned
            if pruned < 1_000 { break }
        }
        return outcome
    }

    /// A scheduled campaign moves only through its preparation job (which snoozes
    /// until the send time, then starts the campaign): with none in the queue or
    /// the outbox (the job died), one is enqueued again, to run at the send time.
    private func sweepScheduled(campaign id: Int64, into outcome: inout Outcome) async throws {
        let queued = try await queue.firstRow(CampaignSweepStatements.PrepareQueued(id: id)) ?? true
        if !queued {
            outcome.preparations += try await oltp.firstRow(CampaignSweepStatements.EnqueuePrepare(id: id)) ?? 0
        }
    }

    private func sweep(campaign id: Int64, fanoutDone: Bool, into outcome: inout Outcome) async throws {
        if !fanoutDone {
            let queued = try await queue.firstRow(CampaignSweepStatements.PrepareQueued(id: id)) ?? true
            if !queued {
                outcome.preparations += try await oltp.firstRow(CampaignSweepStatements.EnqueuePrepare(id: id)) ?? 0
            }
        }
        var cursor: Int64 = 0
        var open = 0
        while true {
            try Task.checkCancellation()
            let batches = try await oltp.rows(CampaignSweepStatements.OpenBatches(id: id, after: cursor, limit: batchesPerRound))
            guard let last = batches.last else { break }
            open += batches.count
            let keys = batches.map { Self.deliverKey(campaign: id, batch: $0) }
            let covered = Set(try await queue.rows(CampaignSweepStatements.CoveredKeys(keys: keys)))
            let uncovered = zip(batches, keys).filter { !covered.contains($0.1) }.map(\.0)
            if !uncovered.isEmpty {
                outcome.enqueued += try await oltp.firstRow(CampaignSweepStatements.Enqueue(id: id, batches: uncovered)) ?? 0
            }
            cursor = last
            if batches.count < batchesPerRound { break }
        }
        outcome.openBatches += open
        if fanoutDone, open == 0 {
            let finished = try await oltp.execute(CampaignCampaignsStatements.FinishIfDone(id: id))
            if finished == 1 { outcome.finished += 1 }
        }
    }
}
