import Foundation
import JobdCampaigns
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// A workspace with an account on `smtpPort`, one list of `addresses` and a draft
/// campaign of `batchSize` recipients per job; returns the campaign's id.
private func seedSending(
    _ world: QueueWorld, smtpPort: Int, name: String = "acme", addresses: [String], batchSize: Int = 5
) async throws -> Int64 {
    let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ($1) RETURNING id", [name])!
    let account = try await world.scalar("""
        INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, starttls, unsubscribe_url)
        VALUES ($1, 'news', 'news@acme.test', $2, 'off', 'https://acme.test/unsubscribe') RETURNING id
        """, [workspace, "smtp://127.0.0.1:\(smtpPort)"])!
    let list = try await world.scalar("INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
    try await world.exec("""
        INSERT INTO oltp.contacts (workspace_id, address, name) SELECT $1, a, 'Someone' FROM unnest($2::text[]) a
        """, [workspace, PostgresArray.texts(addresses)])
    try await world.exec("""
        INSERT INTO oltp.list_members (list_id, contact_id, workspace_id) SELECT $1, id, $2 FROM oltp.contacts WHERE workspace_id = $2
        """, [list, workspace])
    let campaign = try await world.scalar("""
        INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template, batch_size)
        VALUES ($1, 'launch', $2, $3, 'Hello', 'Hi {{name}}', $4) RETURNING id
        """, [workspace, account, list, String(batchSize)])!
    return Int64(campaign)!
}

private func sendingParts(_ world: QueueWorld, settings: CampaignSettings) -> (TierDatabase, TierDatabase, [any JobHandler]) {
    let oltp = TierDatabase(tier: .oltp, size: 4, logger: .silent) { world.database.connection("oltp\($0)") }
    let content = TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("content") }
    return (oltp, content, [
        CampaignPrepareHandler(oltp: oltp, content: content, settings: settings),
        CampaignDeliverHandler(oltp: oltp, settings: settings),
    ])
}

private var sendingSettings: CampaignSettings {
    var settings = CampaignSettings()
    settings.pageSize = 20
    settings.deferBase = .milliseconds(200)
    settings.pauseRecheck = .milliseconds(200)
    settings.concurrency = 4
    settings.timeout = .seconds(10)
    settings.throttleWait = .seconds(1)
    return settings
}

private func status(_ world: QueueWorld, _ id: Int64) async throws -> String? {
    try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)])
}

/// The most timestamps in any window of `seconds` (closed at both ends).
private func densest(_ times: [Double], within seconds: Double) -> Int {
    let sorted = times.sorted()
    var best = 0
    var start = 0
    for end in sorted.indices {
        while sorted[end] - sorted[start] > seconds { start += 1 }
        best = max(best, end - start + 1)
    }
    return best
}

@Suite("Campaign sending: throttles, auto-pause, what limits the rate, cancel", .serialized)
struct CampaignSendingTests {
    @Test("a domain limit of 4 msg/s paces that domain only; the status names it")
    func domainThrottle() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            // Interleaved, so every batch holds both domains.
            let addresses = (1...40).map { $0 % 2 == 0 ? "user\($0)@fast.test" : "user\($0)@slow.test" }
            let id = try await seedSending(world, smtpPort: sink.smtpPort, addresses: addresses)
            // The operator's limit for every account.
            try await world.exec("INSERT INTO oltp.domain_limits (domain, messages_per_second, burst) VALUES ('slow.test', 4, 1)")
            let (oltp, content, handlers) = sendingParts(world, settings: sendingSettings)
            var reasons: [String] = []
            try await world.running([world.makeDaemon(world.configuration(), handlers: handlers)]) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                try await waitUntil(timeout: 60, "the campaign is sent") {
                    if let now = try await CampaignStatus.load(world.sql, id: id), now.status == "sending" {
                        reasons.append(now.limitedBy.detail)
                    }
                    return try await status(world, id) == "sent"
                }
            }
            let mails = try sink.mails()
            #expect(mails.count == 40)
            let slow = mails.filter { $0.rcptTo.first?.hasSuffix("@slow.test") == true }.map(\.receivedAt).sorted()
            let fast = mails.filter { $0.rcptTo.first?.hasSuffix("@fast.test") == true }.map(\.receivedAt).sorted()
            #expect(slow.count == 20 && fast.count == 20)
            // 20 messages at 4/s with a burst of 1: 19 intervals of 0.25 s at least.
            let slowSpan = slow.last! - slow.first!
            #expect(slowSpan >= 19 * 0.25 * 0.9, "slow.test took \(slowSpan) s")
            #expect(densest(slow, within: 1.0) <= 5, "more than 4/s (+1 burst) to slow.test: \(slow)")
            // The other domain is not held back: done long before slow.test.
            let fastSpan = fast.last! - fast.first!
            #expect(fastSpan < 2.5, "fast.test took \(fastSpan) s")
            #expect(fast.last! < slow.last! - 2, "fast.test finished at \(fast.last! - slow.first!) s, slow.test at \(slowSpan) s")
            #expect(reasons.contains { $0.hasPrefix("domain throttle: slow.test") }, "\(reasons)")
            await oltp.close()
            await content.close()
        }
    }

    @Test("a bounce rate over the threshold pauses the campaign; under it, or under the minimum sample, it does not")
    func bounceAutoPause() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            // 25% bounce, threshold 10% after 50 tried: pauses.
            let bad = try await seedSending(
                world, smtpPort: sink.smtpPort, name: "bad",
                addresses: (1...300).map { $0 % 4 == 0 ? "reject\($0)@bad.test" : "user\($0)@bad.test" })
            // 50% bounce but only 40 recipients (the minimum sample is 50): never pauses.
            let small = try await seedSending(
                world, smtpPort: sink.smtpPort, name: "small",
                addresses: (1...40).map { $0 % 2 == 0 ? "reject\($0)@small.test" : "user\($0)@small.test" })
            // 5% bounce, under the threshold: never pauses.
            let fine = try await seedSending(
                world, smtpPort: sink.smtpPort, name: "fine",
                addresses: (1...100).map { $0 % 20 == 0 ? "reject\($0)@fine.test" : "user\($0)@fine.test" })
            try await world.exec("UPDATE oltp.campaigns SET bounce_threshold = 0.1, bounce_min_sample = 50")
            // The door: the threshold is a share, the sample positive.
            await #expect(throws: PostgresError.self) {
                try await world.exec("UPDATE oltp.campaigns SET bounce_threshold = 1.5 WHERE id = $1", [String(bad)])
            }
            await #expect(throws: PostgresError.self) {
                try await world.exec("UPDATE oltp.campaigns SET bounce_min_sample = 0 WHERE id = $1", [String(bad)])
            }
            let (oltp, content, handlers) = sendingParts(world, settings: sendingSettings)
            try await world.running([world.makeDaemon(world.configuration(), handlers: handlers)]) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled'")
                try await waitUntil(timeout: 60, "the campaigns end") {
                    let states = [try await status(world, bad), try await status(world, small), try await status(world, fine)]
                    return states == ["paused", "sent", "sent"]
                }
                // Paused means paused: at most the sends in flight at the pause (one per
                // SMTP worker) still arrive, then nothing.
                let atPause = try sink.mails().count
                try await Task.sleep(for: .seconds(1.5))
                let settled = try sink.mails().count
                #expect(settled <= atPause + sendingSettings.concurrency, "\(settled) after, \(atPause) at the pause")
                try await Task.sleep(for: .seconds(1))
                #expect(try sink.mails().count == settled)
            }
            let reason = try #require(try await world.scalar("SELECT pause_reason FROM oltp.campaigns WHERE id = $1", [String(bad)]))
            #expect(reason.hasPrefix("bounce rate ") && reason.contains("threshold of 10"), "\(reason)")
            let tried = try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state IN ('sent', 'bounced', 'failed')", [String(bad)])
            let open = try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state IN ('pending', 'deferred')", [String(bad)])
            #expect(tried >= 50, "paused after \(tried) tried")
            #expect(open > 0, "everything was sent before the pause")
            let shown = try #require(try await CampaignStatus.load(world.sql, id: bad))
            #expect(shown.limitedBy.reason == "paused")
            #expect(shown.text.contains("limited by  paused: bounce rate"), "\(shown.text)")
            #expect(try await world.scalar("SELECT pause_reason FROM oltp.campaigns WHERE id = $1", [String(small)]) == nil)
            // Resuming clears the reason; a pause by hand says so.
            try await world.exec("UPDATE oltp.campaigns SET bounce_threshold = 1, status = 'scheduled' WHERE id = $1", [String(bad)])
            #expect(try await world.scalar("SELECT pause_reason FROM oltp.campaigns WHERE id = $1", [String(bad)]) == nil)
            try await world.exec("UPDATE oltp.campaigns SET status = 'paused' WHERE id = $1", [String(bad)])
            #expect(try await world.scalar("SELECT pause_reason FROM oltp.campaigns WHERE id = $1", [String(bad)]) == "paused by request")
            await oltp.close()
            await content.close()
        }
    }

    @Test("with one SMTP worker and many batches, the status names the SMTP pool")
    func poolIsTheLimit() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            // `slow…` recipients take 50 ms each at the sink.
            let id = try await seedSending(
                world, smtpPort: sink.smtpPort, addresses: (1...80).map { "slow\($0)@example.test" }, batchSize: 2)
            var settings = sendingSettings
            settings.concurrency = 1
            let (oltp, content, handlers) = sendingParts(world, settings: settings)
            var seen: [CampaignStatus.RateLimit] = []
            try await world.running([world.makeDaemon(world.configuration(), handlers: handlers)]) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                try await waitUntil(timeout: 60, "the campaign is sent") {
                    if let now = try await CampaignStatus.load(world.sql, id: id), now.status == "sending" {
                        seen.append(now.limitedBy)
                    }
                    return try await status(world, id) == "sent"
                }
            }
            #expect(seen.contains { $0.reason == "smtp_pool" }, "\(seen)")
            #expect(!seen.contains { $0.reason == "domain_throttle" || $0.reason == "account_throttle" }, "\(seen)")
            let done = try #require(try await CampaignStatus.load(world.sql, id: id))
            #expect(done.limitedBy.reason == "none")
            let json = String(decoding: try JSONEncoder().encode(done), as: UTF8.self)
            #expect(json.contains("\"limited_by\""), "\(json)")
            await oltp.close()
            await content.close()
        }
    }

    @Test("cancel mid-campaign: running batches stop, nothing more is sent, the rest is cancelled")
    func cancelMidCampaign() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedSending(world, smtpPort: sink.smtpPort, addresses: (1...30).map { "user\($0)@paced.test" })
            // The account's own limit paces the campaign so that it can be cancelled part-way.
            try await world.exec("UPDATE oltp.email_accounts SET messages_per_second = 3")
            let (oltp, content, handlers) = sendingParts(world, settings: sendingSettings)
            try await world.running([world.makeDaemon(world.configuration(), handlers: handlers)]) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                try await waitUntil(timeout: 30, "some mail") { try sink.mails().count >= 4 }
                // While it is held back, the status says by what.
                try await waitUntil(timeout: 10, "the status names the account throttle") {
                    try await CampaignStatus.load(world.sql, id: id)?.limitedBy.reason == "account_throttle"
                }
                try await world.exec("UPDATE oltp.campaigns SET status = 'cancelled' WHERE id = $1", [String(id)])
                let atCancel = try sink.mails().count
                try await waitUntil(timeout: 30, "no delivery is open") {
                    try await world.int(
                        "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state IN ('pending', 'sending', 'deferred')",
                        [String(id)]) == 0
                }
                let settled = try sink.mails().count
                // At 3/s and a report a second, a running batch sends at most a few more.
                #expect(settled <= atCancel + 4, "\(settled) sent, \(atCancel) at the cancel")
                try await Task.sleep(for: .seconds(1.5))
                #expect(try sink.mails().count == settled)
            }
            let sent = try await world.int("SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state = 'sent'", [String(id)])
            let cancelled = try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state = 'cancelled'", [String(id)])
            #expect(sent == (try sink.mails().count))
            #expect(sent + cancelled == 30 && cancelled > 0, "\(sent) sent, \(cancelled) cancelled")
            #expect(try await status(world, id) == "cancelled")
            await oltp.close()
            await content.close()
        }
    }

    @Test("oltp.domain_limits and the account rate refuse values out of bounds")
    func limitBounds() async throws {
        try await withWorld { world in
            _ = try await seedSending(world, smtpPort: 2525, addresses: ["a@b.test"])
            for bad in [
                "INSERT INTO oltp.domain_limits (domain, messages_per_second) VALUES ('Gmail.com', 5)",
                "INSERT INTO oltp.domain_limits (domain, messages_per_second) VALUES ('gmail.com', 0)",
                "INSERT INTO oltp.domain_limits (domain, messages_per_second, burst) VALUES ('gmail.com', 5, 0)",
                "INSERT INTO oltp.domain_limits (domain, max_transfers) VALUES ('gmail.com', 5000)",
                "INSERT INTO oltp.domain_limits (domain) VALUES ('gmail.com')",
                "UPDATE oltp.email_accounts SET messages_per_second = -1",
            ] {
                await #expect(throws: PostgresError.self, "\(bad)") { try await world.exec(bad) }
            }
            try await world.exec("INSERT INTO oltp.domain_limits (domain, messages_per_second, max_transfers) VALUES ('gmail.com', 5, 2)")
            // One row per domain for all accounts.
            await #expect(throws: PostgresError.self) {
                try await world.exec("INSERT INTO oltp.domain_limits (domain, messages_per_second) VALUES ('gmail.com', 9)")
            }
        }
    }
}
