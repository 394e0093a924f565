import Foundation
@testable import JobdCampaigns
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// One message the SMTP sink accepted, with its raw text.
private struct RawMail: Decodable {
    var rcptTo: [String]
    var headers: [String: String]
    var body: String
    var raw: String
    enum CodingKeys: String, CodingKey {
        case rcptTo = "rcpt_to"
        case headers, body, raw
    }
}

/// Seeds one workspace with an account on `smtpPort`, `count` contacts on one list
/// and a draft campaign; returns the campaign's id.
private func seedCampaign(
    _ world: QueueWorld, smtpPort: Int, count: Int, batchSize: Int = 7, special: [Int: String] = [:],
    unsubscribed: Set<Int> = []
) async throws -> Int64 {
    let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('acme') RETURNING id")!
    let account = try await world.scalar("""
        INSERT INTO oltp.email_accounts (workspace_id, name, from_address, from_name, relay_url, starttls, unsubscribe_url)
        VALUES ($1, 'news', 'news@acme.test', 'Acme News', $2, 'off', 'https://acme.test/unsubscribe') RETURNING id
        """, [workspace, "smtp://127.0.0.1:\(smtpPort)"])!
    let list = try await world.scalar(
        "INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
    try await world.exec("""
        INSERT INTO oltp.contacts (workspace_id, address, name, fields, status)
        SELECT $1, coalesce(($2::text[])[i], 'user' || i || '@example.test'), 'Name <' || i || '>',
               jsonb_build_object('city', 'City' || i),
               CASE WHEN i = ANY($3::int[]) THEN 'unsubscribed' ELSE 'subscribed' END
          FROM generate_series(1, $4::int) i
        """, [workspace, PostgresArray.texts((1...count).map { special[$0] }),
              PostgresArray.integers(unsubscribed), String(count)])
    try await world.exec("""
        INSERT INTO oltp.list_members (list_id, contact_id, workspace_id) SELECT $1, id, $2 FROM oltp.contacts WHERE workspace_id = $2
        """, [list, workspace])
    let campaign = try await world.scalar("""
        INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, html_template, text_template, batch_size)
        VALUES ($1, 'launch', $2, $3, 'Hello {{name}}', '<p>Hi {{name}} from {{city}}</p><a href="{{unsubscribe_url}}">x</a>',
                'Hi {{name}} ({{email}}) from {{city}}', $4)
        RETURNING id
        """, [workspace, account, list, String(batchSize)])!
    return Int64(campaign)!
}

private func campaignDaemonParts(_ world: QueueWorld, settings: CampaignSettings) -> (TierDatabase, TierDatabase, [any JobHandler]) {
    let oltp = TierDatabase(tier: .oltp, size: 4, logger: .silent) { world.database.connection("oltp\($0)") }
    let content = TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("content") }
    return (oltp, content, [
        CampaignPrepareHandler(oltp: oltp, content: content, settings: settings),
        CampaignDeliverHandler(oltp: oltp, settings: settings),
    ])
}

private func withRelay<T>(_ world: QueueWorld, sweepInterval: Duration = .seconds(30), _ body: () async throws -> T) async throws -> T {
    let relay = OutboxRelay(
        oltp: world.database.connection("relay-oltp"), queue: world.database.connection("relay-queue"),
        interval: .milliseconds(100), sweepInterval: sweepInterval, logger: .silent)
    let task = Task { try await relay.run() }
    defer { task.cancel() }
    return try await body()
}

private var testSettings: CampaignSettings {
    var settings = CampaignSettings()
    settings.pageSize = 10
    settings.deferBase = .milliseconds(200)
    settings.pauseRecheck = .milliseconds(200)
    settings.concurrency = 4
    settings.timeout = .seconds(10)
    return settings
}

@Suite("Campaigns (OLTP tier)", .serialized)
struct CampaignTests {
    @Test("the door refuses clear-text passwords, bad references and illegal transitions; scheduling enqueues")
    func schemaBounds() async throws {
        try await withWorld { world in
            let sink = 2525
            let id = try await seedCampaign(world, smtpPort: sink, count: 3)
            let workspace = try await world.scalar("SELECT workspace_id FROM oltp.campaigns WHERE id = $1", [String(id)])!
            await #expect(throws: PostgresError.self) {
                try await world.exec("""
                    INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, unsubscribe_url)
                    VALUES ($1, 'x', 'a@b.test', 'smtp://user:secret@relay.test:587', 'https://b.test/u')
                    """, [workspace])
            }
            await #expect(throws: PostgresError.self) {
                try await world.exec("""
                    INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, secret_ref, unsubscribe_url)
                    VALUES ($1, 'x', 'a@b.test', 'smtp://relay.test:587', 'plain-password', 'https://b.test/u')
                    """, [workspace])
            }
            try await world.exec("""
                INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, username, secret_ref, unsubscribe_url)
                VALUES ($1, 'ok', 'a@b.test', 'smtps://relay.test:465', 'me', 'env:RELAY_PASSWORD', 'https://b.test/u')
                """, [workspace])
            await #expect(throws: PostgresError.self) {
                try await world.exec("UPDATE oltp.contacts SET fields = '[1]' WHERE workspace_id = $1", [workspace])
            }
            // draft -> sent is not a transition.
            do {
                try await world.exec("UPDATE oltp.campaigns SET status = 'sent' WHERE id = $1", [String(id)])
                Issue.record("draft -> sent was accepted")
            } catch let error as PostgresError {
                #expect(error.message.contains("cannot go from draft to sent"))
            }
            #expect(try await world.int("SELECT count(*) FROM oltp.outbox") == 0)
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
            #expect(try await world.scalar("SELECT kind || ' ' || payload::text FROM oltp.outbox")
                == "campaign.prepare {\"campaign_id\": \(id)}")
            // What is sent is fixed once scheduled.
            do {
                try await world.exec("UPDATE oltp.campaigns SET subject = 'other' WHERE id = $1", [String(id)])
                Issue.record("a scheduled campaign's subject changed")
            } catch let error as PostgresError {
                #expect(error.message.contains("only a draft can change what it sends"))
            }
        }
    }

    @Test("contact by address, campaign by id and a page of a list are index scans")
    func plans() async throws {
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: 2525, count: 20_000)
            // Many campaigns, as a real workspace has: a one-page table is read whole.
            try await world.exec("""
                INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template)
                SELECT workspace_id, name || i, account_id, list_id, subject, text_template
                  FROM oltp.campaigns CROSS JOIN generate_series(1, 3000) i WHERE id = $1
                """, [String(id)])
            // And several lists over the same contacts.
            try await world.exec("""
                WITH l AS (
                    INSERT INTO oltp.lists (workspace_id, name)
                    SELECT workspace_id, 'segment ' || i FROM oltp.campaigns CROSS JOIN generate_series(1, 4) i WHERE id = $1
                    RETURNING id, workspace_id)
                INSERT INTO oltp.list_members (list_id, contact_id, workspace_id)
                SELECT l.id, k.id, l.workspace_id FROM l JOIN oltp.contacts k ON k.workspace_id = l.workspace_id
                """, [String(id)])
            // And other campaigns' deliveries to the same contacts.
            try await world.exec("""
                INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state)
                SELECT c.id, k.id, k.workspace_id, 'suppressed'
                  FROM oltp.campaigns c JOIN oltp.contacts k ON k.workspace_id = c.workspace_id
                 WHERE c.id IN (SELECT o.id FROM oltp.campaigns o WHERE o.id <> $1 ORDER BY o.id LIMIT 3)
                """, [String(id)])
            try await world.exec("ANALYZE oltp.contacts")
            try await world.exec("ANALYZE oltp.list_members")
            try await world.exec("ANALYZE oltp.campaigns")
            try await world.exec("ANALYZE oltp.deliveries")
            let workspace = try await world.scalar("SELECT workspace_id FROM oltp.campaigns WHERE id = $1", [String(id)])!
            let byAddress = try await world.plan("""
                EXPLAIN SELECT * FROM oltp.contacts WHERE workspace_id = \(workspace) AND lower(address) = lower('User77@example.test')
                """)
            #expect(byAddress.contains("Index Scan using contacts_address_key"), "\(byAddress)")
            let byID = try await world.plan("EXPLAIN SELECT * FROM oltp.campaigns WHERE id = \(id)")
            // Either unique index on id: the primary key or (id, workspace_id), which attachments reference.
            #expect(["campaigns_pkey", "campaigns_id_workspace_key"].contains { index in
                byID.contains("Index Scan using \(index)") || byID.contains("Bitmap Index Scan on \(index)")
            }, "\(byID)")
            // The fan-out's own statement, planned generically as its parameters vary.
            try await world.exec("SET plan_cache_mode = force_generic_plan")
            try await world.exec("PREPARE fan(bigint, int) AS \(CampaignStore.fanOutSQL)")
            let page = try await world.plan("EXPLAIN EXECUTE fan(\(id), 1000)")
            #expect(page.contains("Index Scan using list_members_pkey on list_members")
                || page.contains("Index Only Scan using list_members_pkey on list_members"), "\(page)")
            // Each member's contact by its key (the primary key or the (id, workspace_id) key).
            #expect(page.contains("Index Cond: (id = list_members.contact_id)"), "\(page)")
            #expect(!page.contains("Seq Scan on list_members") && !page.contains("Seq Scan on contacts"), "\(page)")
            // Whether a member has its delivery already: a probe per member, never a
            // (hashed) read of every campaign's deliveries on each page.
            #expect(page.contains("Index Only Scan using deliveries_pkey on deliveries d")
                || page.contains("Index Scan using deliveries_pkey on deliveries d")
                || page.contains("Index Scan using deliveries_contact_idx on deliveries d"), "\(page)")
            #expect(!page.contains("Seq Scan on deliveries"), "\(page)")
            #expect(try await world.scalar(
                "SELECT address FROM oltp.contacts WHERE workspace_id = \(workspace) AND lower(address) = lower('User77@example.test')")
                == "user77@example.test")
        }
    }

    @Test("a workspace role sees only its workspace's rows")
    func rowLevelSecurity() async throws {
        try await withWorld { world in
            let first = try await seedCampaign(world, smtpPort: 2525, count: 4)
            let second = try await seedCampaign(world, smtpPort: 2525, count: 6)
            let ws1 = try await world.scalar("SELECT workspace_id FROM oltp.campaigns WHERE id = $1", [String(first)])!
            let ws2 = try await world.scalar("SELECT workspace_id FROM oltp.campaigns WHERE id = $1", [String(second)])!
            let role = "oltp_ws_\(UInt32.random(in: 0...UInt32.max))"
            try await world.exec("CREATE ROLE \(role) NOLOGIN")
            do {
                try await world.exec("GRANT USAGE ON SCHEMA oltp TO \(role)")
                try await world.exec("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA oltp TO \(role)")
                try await world.exec("INSERT INTO oltp.workspace_roles VALUES ($1, $2)", [role, ws1])
                try await world.exec("SET ROLE \(role)")
                #expect(try await world.int("SELECT count(*) FROM oltp.contacts") == 4)
                #expect(try await world.int("SELECT count(*) FROM oltp.campaigns") == 1)
                #expect(try await world.int("SELECT count(*) FROM oltp.workspaces") == 1)
                // Naming another workspace does not widen a mapped role's view.
                try await world.exec("SET jobd.workspace_id = '\(ws2)'")
                #expect(try await world.int("SELECT count(*) FROM oltp.contacts") == 4)
                // Nor can it write into another workspace.
                await #expect(throws: PostgresError.self) {
                    try await world.exec("INSERT INTO oltp.contacts (workspace_id, address) VALUES ($1, 'x@y.test')", [ws2])
                }
                // It may schedule its own campaign: the trigger writes the outbox for it.
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(first)])
                try await world.exec("RESET ROLE")
                try await world.exec("RESET jobd.workspace_id")
                #expect(try await world.int("SELECT count(*) FROM oltp.outbox") == 1)
                #expect(try await world.int("SELECT count(*) FROM oltp.contacts") == 10)
            } catch {
                _ = try? await world.exec("RESET ROLE")
                _ = try? await world.exec("DROP OWNED BY \(role)")
                _ = try? await world.exec("DROP ROLE \(role)")
                throw error
            }
            try await world.exec("DROP OWNED BY \(role)")
            try await world.exec("DROP ROLE \(role)")
        }
    }

    @Test("oltp.unsubscribe: a valid token unsubscribes, a tampered one does nothing")
    func unsubscribe() async throws {
        try await withWorld { world in
            // RFC 4231 test case 2.
            #expect(try await world.scalar(
                "SELECT encode(oltp.hmac_sha256(convert_to('Jefe', 'UTF8'), convert_to('what do ya want for nothing?', 'UTF8')), 'hex')")
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
            let id = try await seedCampaign(world, smtpPort: 2525, count: 3)
            let contacts = try await world.sql.query("SELECT id FROM oltp.contacts ORDER BY id").rows.compactMap { $0[0] }
            let token = try await world.scalar("SELECT oltp.unsubscribe_token($1, $2)", [contacts[0], String(id)])!
            var tampered = Array(token)
            tampered[tampered.count - 1] = tampered.last == "0" ? "1" : "0"
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [String(tampered)]) == "f")
            // Another contact's id under this signature.
            let moved = contacts[1] + token.drop(while: { $0 != "." })
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [moved]) == "f")
            #expect(try await world.scalar("SELECT oltp.unsubscribe('garbage')") == "f")
            #expect(try await world.int("SELECT count(*) FROM oltp.contacts WHERE status <> 'subscribed'") == 0)
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [token]) == "t")
            #expect(try await world.sql.query("SELECT id FROM oltp.contacts WHERE status = 'unsubscribed'").rows.map { $0[0] }
                == [contacts[0]])
        }
    }

    @Test("a campaign goes out end to end: merge fields, one message each, bounces, deferrals, suppression, status")
    func endToEnd() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(
                world, smtpPort: sink.smtpPort, count: 50,
                special: [10: "reject10@example.test", 20: "tempfailonce20@example.test"], unsubscribed: [3, 4])
            let (oltp, content, handlers) = campaignDaemonParts(world, settings: testSettings)
            let config = world.configuration()
            try await withRelay(world) {
                try await world.running([world.makeDaemon(config, handlers: handlers)]) {
                    try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                    try await waitUntil(timeout: 60, "the campaign is sent") {
                        try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent"
                    }
                }
            }
            let mails: [RawMail] = try sink.records(kind: "smtp")
            let recipients = mails.flatMap(\.rcptTo)
            // 50 − 2 unsubscribed − 1 rejected; the deferred one arrives once, on its second try.
            #expect(recipients.count == 47)
            #expect(Set(recipients).count == recipients.count, "a recipient received two messages")
            #expect(!recipients.contains("user3@example.test") && !recipients.contains("user4@example.test"))
            #expect(recipients.contains("tempfailonce20@example.test"))
            let five = try #require(mails.first { $0.rcptTo == ["user5@example.test"] })
            #expect(five.headers["subject"] == "Hello Name <5>")
            #expect(five.body.contains("Hi Name <5> (user5@example.test) from City5"))
            #expect(five.raw.contains("multipart/alternative"))
            #expect(five.headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click")
            let unsubscribe = try #require(five.headers["list-unsubscribe"])
            #expect(unsubscribe.hasPrefix("<https://acme.test/unsubscribe?token="))
            #expect(unsubscribe.contains("mailto:news@acme.test"))
            // The HTML part escapes the merged name.
            let htmlPart = try #require(five.raw.components(separatedBy: "Content-Type: text/html; charset=utf-8").last)
            let base64 = htmlPart.components(separatedBy: "\r\n\r\n").dropFirst().first?
                .components(separatedBy: "--").first?.replacingOccurrences(of: "\r\n", with: "") ?? ""
            let html = String(decoding: Base64.decode(base64) ?? [], as: UTF8.self)
            #expect(html.contains("<p>Hi Name &lt;5&gt; from City5</p>"), "\(html)")
            // The token in the header works.
            let token = String(unsubscribe.dropFirst("<https://acme.test/unsubscribe?token=".count).prefix { $0 != ">" })
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [token]) == "t")
            #expect(try await world.scalar("SELECT status FROM oltp.contacts WHERE address = 'user5@example.test'") == "unsubscribed")

            #expect(try await world.scalar("SELECT status FROM oltp.contacts WHERE address = 'reject10@example.test'") == "bounced")
            #expect(try await world.scalar(
                "SELECT tries || ' ' || state FROM oltp.deliveries d JOIN oltp.contacts k ON k.id = d.contact_id WHERE k.address = 'tempfailonce20@example.test'")
                == "2 sent")
            let status = try #require(try await CampaignStatus.load(world.sql, id: id))
            #expect(status.status == "sent")
            #expect(status.recipients == 50)
            #expect(status.delivered == 47)
            #expect(status.bounced == 1)
            #expect(status.suppressed == 2)
            #expect(status.pending == 0 && status.deferred == 0 && status.sending == 0)
            // The content was stored once, in the content tier.
            #expect(try await world.int("SELECT count(*) FROM content.messages WHERE campaign_id = $1", [String(id)]) == 1)
            await oltp.close()
            await content.close()
        }
    }

    @Test("a fan-out interrupted and restarted enqueues no recipient twice")
    func fanOutResumes() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: sink.smtpPort, count: 60, batchSize: 4)
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
            try await world.exec("DELETE FROM oltp.outbox")  // the preparation is driven by hand below
            let store = CampaignStore(connection: world.sql)
            #expect(try await store.start(id))
            let first = try await store.fanOutPage(id, pageSize: 10)
            #expect(first.ran && first.deliveries == 10 && first.jobs == 3 && !first.done)
            _ = try await store.fanOutPage(id, pageSize: 10)
            // The worst a crash could leave: the cursor behind rows already written.
            try await world.exec("UPDATE oltp.campaigns SET fanout_cursor = 0 WHERE id = $1", [String(id)])
            let again = try await store.fanOutPage(id, pageSize: 10)
            #expect(again.ran && again.members == 10 && again.deliveries == 0 && again.jobs == 0)
            #expect(try await world.int("SELECT count(*) FROM oltp.outbox") == 6)

            // Daemon 1 runs the rest, is stopped part-way, daemon 2 finishes.
            var settings = testSettings
            settings.pageSize = 5
            let (oltp, content, handlers) = campaignDaemonParts(world, settings: settings)
            try await world.exec("INSERT INTO oltp.outbox (kind, payload, unique_key) VALUES ('campaign.prepare', $1, 'resume')",
                                 ["{\"campaign_id\": \(id)}"])
            let config = world.configuration()
            try await withRelay(world) {
                try await world.running([world.makeDaemon(config, id: "d1", handlers: handlers)]) {
                    try await waitUntil(timeout: 30, "some mail") { try sink.mails().count >= 10 }
                }
                try await world.running([world.makeDaemon(config, id: "d2", handlers: handlers)]) {
                    try await waitUntil(timeout: 60, "the campaign is sent") {
                        try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent"
                    }
                }
            }
            let recipients = try sink.mails().flatMap(\.rcptTo)
            #expect(recipients.count == 60)
            #expect(Set(recipients).count == 60, "a recipient received two messages")
            #expect(try await world.int("SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1", [String(id)]) == 60)
            await oltp.close()
            await content.close()
        }
    }

    @Test("nothing is sent while paused; resume sends every recipient once")
    func pauseResumeCancel() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: sink.smtpPort, count: 30, batchSize: 5)
            let (oltp, content, handlers) = campaignDaemonParts(world, settings: testSettings)
            let config = world.configuration()
            try await withRelay(world) {
                try await world.running([world.makeDaemon(config, handlers: handlers)]) {
                    // Scheduled and paused in one transaction: the preparation finds it paused.
                    try await world.sql.executeScript("""
                        BEGIN;
                        UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = \(id);
                        UPDATE oltp.campaigns SET status = 'paused' WHERE id = \(id);
                        COMMIT;
                        """)
                    try await Task.sleep(for: .seconds(1.5))
                    #expect(try sink.mails().isEmpty)
                    try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                    try await waitUntil(timeout: 60, "the campaign is sent") {
                        try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent"
                    }
                }
            }
            #expect(try sink.mails().count == 30)
            await #expect(throws: PostgresError.self) {
                try await world.exec("UPDATE oltp.campaigns SET status = 'paused' WHERE id = $1", [String(id)])
            }
            await oltp.close()
            await content.close()
        }
    }

    /// Schedules campaign `id` and runs its whole fan-out by hand (no preparation
    /// job), then relays its delivery jobs into the queue; returns the batches.
    private func fanOutByHand(_ world: QueueWorld, _ id: Int64, pageSize: Int = 10) async throws -> [Int64] {
        try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
        try await world.exec("DELETE FROM oltp.outbox")
        let store = CampaignStore(connection: world.sql)
        #expect(try await store.start(id))
        while !(try await store.fanOutPage(id, pageSize: pageSize).done) {}
        let relay = OutboxRelay(
            oltp: world.database.connection("hand-oltp"), queue: world.database.connection("hand-queue"), logger: .silent)
        while try await relay.relayOnce() > 0 {}
        let batches = try await world.sql.query(
            "SELECT DISTINCT batch FROM oltp.deliveries WHERE campaign_id = $1 AND batch IS NOT NULL ORDER BY batch", [String(id)])
        return batches.rows.map { Int64($0[0]!)! }
    }

    @Test("the sweep enqueues again only batches no unfinished job covers; a fan-out without a preparation; sent when all is final")
    func sweepCoversOnlyUncovered() async throws {
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: 2525, count: 30, batchSize: 5, unsubscribed: [2])
            let sweep = DeliverySweep(
                oltp: world.database.connection("sweep-oltp"), queue: world.database.connection("sweep-queue"),
                batchesPerRound: 2)
            // Sending, fan-out not started, no preparation anywhere: one is enqueued, once.
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
            try await world.exec("DELETE FROM oltp.outbox")
            #expect(try await CampaignStore(connection: world.sql).start(id))
            #expect(try await sweep.sweep().preparations == 1)
            #expect(try await sweep.sweep().preparations == 0)
            #expect(try await world.int("SELECT count(*) FROM oltp.outbox WHERE kind = 'campaign.prepare'") == 1)
            try await world.exec("UPDATE oltp.campaigns SET status = 'paused' WHERE id = $1", [String(id)])
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])

            let batches = try await fanOutByHand(world, id)
            // 29 subscribed recipients in batches of 5: 6 batches, each named by its first contact.
            #expect(batches.count == 6)
            let keys = try await world.sql.query(
                "SELECT unique_key FROM queue.jobs WHERE kind = 'campaign.deliver' ORDER BY unique_key", [])
            #expect(Set(keys.rows.map { $0[0]! }) == Set(batches.map { DeliverySweep.deliverKey(campaign: id, batch: $0) }))
            #expect(try await world.int("SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state = 'suppressed' AND batch IS NULL", [String(id)]) == 1)

            // Every batch has a live job: nothing is enqueued (three rounds of two batches).
            var outcome = try await sweep.sweep()
            #expect(outcome.openBatches == 6 && outcome.enqueued == 0 && outcome.finished == 0)
            #expect(try await world.int("SELECT count(*) FROM oltp.outbox") == 0)

            // Batch 3's job is dead-lettered with one recipient sent already: the other
            // four are enqueued again under the batch's key, once.
            let dead = batches[2]
            let deadKey = DeliverySweep.deliverKey(campaign: id, batch: dead)
            try await world.exec("UPDATE queue.jobs SET state = 'dead', finished_at = now() WHERE unique_key = $1", [deadKey])
            try await world.exec("""
                UPDATE oltp.deliveries SET state = 'sent', sent_at = now() WHERE campaign_id = $1 AND contact_id = $2
                """, [String(id), String(dead)])
            outcome = try await sweep.sweep()
            #expect(outcome.openBatches == 6 && outcome.enqueued == 1)
            let row = try await world.sql.query("SELECT unique_key, payload->'contacts', payload->>'batch' FROM oltp.outbox", [])
            #expect(row.rows.count == 1)
            #expect(row.rows.first?[0] == deadKey)
            #expect(row.rows.first?[2] == String(dead))
            let open = try await world.sql.query("""
                SELECT contact_id FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 AND state = 'pending' ORDER BY contact_id
                """, [String(id), String(dead)])
            #expect(row.rows.first?[1] == "[" + open.rows.map { $0[0]! }.joined(separator: ", ") + "]")
            #expect(open.rows.count == 4)
            // The outbox holds it: not again.
            #expect(try await sweep.sweep().enqueued == 0)
            let relay = OutboxRelay(
                oltp: world.database.connection("relay2-oltp"), queue: world.database.connection("relay2-queue"), logger: .silent)
            #expect(try await relay.relayOnce() == 1)
            #expect(try await world.int(
                "SELECT count(*) FROM queue.jobs WHERE unique_key = $1 AND state NOT IN ('completed', 'dead', 'cancelled')", [deadKey]) == 1)
            // The queue holds it now: not again.
            #expect(try await sweep.sweep().enqueued == 0)
            // A copy relayed while the job is unfinished is dropped by the queue.
            try await world.exec("""
                INSERT INTO oltp.outbox (kind, payload, unique_key) SELECT kind, payload, unique_key FROM queue.jobs
                 WHERE unique_key = $1 AND state = 'available'
                """, [deadKey])
            #expect(try await relay.relayOnce() == 1)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE unique_key = $1", [deadKey]) == 2)

            // Every delivery final: the sweep marks the campaign sent.
            try await world.exec("""
                UPDATE oltp.deliveries SET state = 'sent', sent_at = now(), claim_token = NULL, sending_until = NULL
                 WHERE campaign_id = $1 AND state IN ('pending', 'sending', 'deferred')
                """, [String(id)])
            outcome = try await sweep.sweep()
            #expect(outcome.openBatches == 0 && outcome.finished == 1)
            #expect(try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent")
            #expect(try await sweep.sweep().campaigns == 0)
        }
    }

    @Test("a batch's statements read only its batch, with the campaign absent from the planner's statistics")
    func batchStatementsReadOneBatch() async throws {
        try await withWorld { world in
            // The statistics know another campaign's deliveries, not this one's: a new
            // campaign, estimated at one open row (no ANALYZE, nor autovacuum's, after its fan-out).
            // Its deliveries are still open, as in a database whose deliveries are mostly
            // a new campaign's: the open index is then no smaller than the primary key.
            let known = try await seedCampaign(world, smtpPort: 2525, count: 300, batchSize: 100)
            _ = try await fanOutByHand(world, known, pageSize: 1_000)
            try await world.exec("ANALYZE oltp.deliveries")
            try await world.exec("ALTER TABLE oltp.deliveries SET (autovacuum_enabled = false)")
            // Large batches read in groups, and batches as small as a group.
            for batchSize in [200, 10] {
                let id = try await seedCampaign(world, smtpPort: 2525, count: 2_000, batchSize: batchSize)
                // Pages of whole batches (a page's members are numbered into batches of its own).
                let batches = try await fanOutByHand(world, id, pageSize: 1_000)
                #expect(batches.count == 2_000 / batchSize)
                // The fan-out's payloads name their batch.
                #expect(try await world.int("""
                    SELECT count(*) FROM queue.jobs
                     WHERE kind = 'campaign.deliver' AND payload->>'campaign_id' = $1
                       AND unique_key = 'campaign:' || $1 || ':deliver:' || (payload->>'batch')
                    """, [String(id)]) == 2_000 / batchSize)
                let batch = batches[batches.count / 2]
                let members = try await world.sql.query("""
                    SELECT contact_id FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 ORDER BY contact_id
                    """, [String(id), String(batch)]).rows.map { $0[0]! }
                #expect(members.count == batchSize)
                let size = min(50, batchSize)
                let group = "{" + members.prefix(size).joined(separator: ",") + "}"
                // One claimed group, so the record has rows to find.
                _ = try await CampaignStore(connection: world.sql).claimGroup(
                    id, batch: batch, contacts: members.prefix(size).compactMap { Int64($0) }, token: "plan", window: 60, maxTries: 5)

                // Each statement planned with its values bound, as the store runs them.
                try await world.exec("SET plan_cache_mode = force_custom_plan")
                let each = { (value: String) in "{" + Array(repeating: value, count: size).joined(separator: ",") + "}" }
                let statements: [(name: String, sql: String, arguments: String)] = [
                    ("claim", CampaignDeliveriesStatements.ClaimGroup.sql.text, "\(id), '\(group)', 'plan2', 60, 5, \(batch)"),
                    ("record", CampaignDeliveriesStatements.RecordGroup.sql.text,
                     "\(id), '\(group)', 'plan', '\(each("sent"))', '\(each("250"))', '\(each("ok"))', '\(each("0"))', \(batch)"),
                    ("suppress", CampaignDeliveriesStatements.Suppress.sql.text, "\(id), '\(group)', \(batch)"),
                    ("abandoned", CampaignDeliveriesStatements.FailAbandoned.sql.text, "\(id), '\(group)', 5, \(batch)"),
                    ("limits", CampaignSendersStatements.RecipientLimits.sql.text, "\(id), 0, '\(group)', \(batch)"),
                    ("next", CampaignDeliveriesStatements.NextOpen.sql.text, "\(id), '\(group)', \(batch)"),
                    ("cancel", CampaignDeliveriesStatements.CancelOpen.sql.text, "\(id), '\(group)', \(batch)"),
                ]
                for statement in statements {
                    try await world.exec("DEALLOCATE ALL")
                    try await world.exec("PREPARE \(statement.name) AS \(statement.sql)")
                    try await world.exec("BEGIN")
                    let plan = try await world.plan(
                        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE \(statement.name)(\(statement.arguments))")
                    try await world.exec("ROLLBACK")
                    // The scan of oltp.deliveries: its own lines, up to the next plan node.
                    let lines = plan.split(separator: "\n").map(String.init)
                    guard let start = lines.firstIndex(where: { $0.contains("Scan") && $0.contains(" on deliveries") }) else {
                        Issue.record("\(statement.name): no scan of deliveries\n\(plan)")
                        continue
                    }
                    let node = [lines[start]] + lines[(start + 1)...].prefix { !$0.contains("->") }
                    let condition = node.first { $0.contains("Index Cond:") } ?? ""
                    // The index condition names the batch (or the group's contacts, by the
                    // primary key): never the campaign alone.
                    #expect(condition.contains("batch = ") || condition.contains("contact_id = ANY"),
                            "\(statement.name), batches of \(batchSize)\n\(plan)")
                    #expect(!lines.contains { $0.contains("Seq Scan on deliveries") }, "\(statement.name), batches of \(batchSize)\n\(plan)")
                    // Rows the scan read and dropped: at most the batch's others.
                    let removed = node.compactMap { line -> Int? in
                        guard let range = line.range(of: "Rows Removed by Filter: ") else { return nil }
                        return Int(line[range.upperBound...].prefix { $0.isNumber })
                    }.reduce(0, +)
                    #expect(removed <= batchSize, "\(statement.name), batches of \(batchSize): \(removed) rows removed\n\(plan)")
                }
                try await world.exec("RESET plan_cache_mode")
            }
            try await world.exec("ALTER TABLE oltp.deliveries RESET (autovacuum_enabled)")
        }
    }

    @Test("a deliver payload without a batch sends by campaign and contacts; a bad batch is refused, a foreign one sends nothing")
    func deliverPayloadBatch() async throws {
        // Parsing: absent or null → nil; a whole number up to the smallest contact; else payload_invalid.
        #expect(try CampaignPayload.batch(#"{"campaign_id": 3, "contacts": [7, 9]}"#, kind: "k").batch == nil)
        #expect(try CampaignPayload.batch(#"{"campaign_id": 3, "batch": null, "contacts": [7, 9]}"#, kind: "k").batch == nil)
        #expect(try CampaignPayload.batch(#"{"campaign_id": 3, "batch": 7, "contacts": [9, 7]}"#, kind: "k")
            == CampaignPayload.Batch(campaign: 3, batch: 7, contacts: [9, 7]))
        #expect(try CampaignPayload.batch(#"{"campaign_id": 3, "batch": 2, "contacts": [7, 9]}"#, kind: "k").batch == 2)
        for bad in ["0", "-4", "8", "7.5", "\"7\"", "[7]", "true", "1e300"] {
            do {
                _ = try CampaignPayload.batch("{\"campaign_id\": 3, \"batch\": \(bad), \"contacts\": [7, 9]}", kind: "k")
                Issue.record("batch \(bad) was accepted")
            } catch let failure as JobFailure {
                #expect(failure.code == "payload_invalid", "\(bad): \(failure)")
                #expect(failure.message.contains("batch"), "\(bad): \(failure)")
            }
        }

        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: sink.smtpPort, count: 15, batchSize: 5)
            let batches = try await fanOutByHand(world, id)
            #expect(batches.count == 3)
            let oltp = TierDatabase(tier: .oltp, size: 2, logger: .silent) { world.database.connection("oltp\($0)") }
            let deliver = CampaignDeliverHandler(oltp: oltp, settings: testSettings)
            let context = JobContext(logger: .silent)
            func contacts(_ batch: Int64) async throws -> String {
                try await world.sql.query("""
                    SELECT contact_id FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 ORDER BY contact_id
                    """, [String(id), String(batch)]).rows.map { $0[0]! }.joined(separator: ", ")
            }
            func sent(_ batch: Int64) async throws -> Int {
                try await world.int(
                    "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 AND state = 'sent'",
                    [String(id), String(batch)])
            }
            // A job from before payloads carried the batch: its recipients are sent.
            try await deliver.handle(ClaimedJob(
                id: 1, kind: deliver.kind, payload: "{\"campaign_id\": \(id), \"contacts\": [\(try await contacts(batches[0]))]}",
                priority: .normal, attempt: 1, maxAttempts: 5), context: context)
            #expect(try await sent(batches[0]) == 5)
            // Another batch's name over these contacts: none of their rows is read or sent;
            // they stay open for the sweep to enqueue under their own batch.
            try await deliver.handle(ClaimedJob(
                id: 2, kind: deliver.kind,
                payload: "{\"campaign_id\": \(id), \"batch\": \(batches[1]), \"contacts\": [\(try await contacts(batches[2]))]}",
                priority: .normal, attempt: 1, maxAttempts: 5), context: context)
            #expect(try await sent(batches[2]) == 0)
            #expect(try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 AND state = 'pending'",
                [String(id), String(batches[2])]) == 5)
            // Its own batch's name: sent.
            try await deliver.handle(ClaimedJob(
                id: 3, kind: deliver.kind,
                payload: "{\"campaign_id\": \(id), \"batch\": \(batches[2]), \"contacts\": [\(try await contacts(batches[2]))]}",
                priority: .normal, attempt: 1, maxAttempts: 5), context: context)
            #expect(try await sent(batches[2]) == 5)
            let recipients = try sink.mails().flatMap(\.rcptTo)
            #expect(recipients.count == 10 && Set(recipients).count == 10, "\(recipients)")
            await oltp.close()
        }
    }

    @Test("recipients of dead-lettered delivery jobs are delivered once each and the campaign ends sent")
    func deadLetteredBatchesDelivered() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: sink.smtpPort, count: 30, batchSize: 5, unsubscribed: [7])
            let batches = try await fanOutByHand(world, id)
            #expect(batches.count == 6)
            // Two batches' jobs dead-lettered before they ran (as the rescuer's poison
            // limit or spent attempts leave them); in the first, one recipient's claim
            // lapsed mid-send (sent again once) and one lapsed for the last allowed time
            // (failed, never sent again).
            var settings = testSettings
            settings.maxTries = 3
            let deadKeys = batches.prefix(2).map { DeliverySweep.deliverKey(campaign: id, batch: $0) }
            try await world.exec("""
                UPDATE queue.jobs SET state = 'dead', finished_at = now(), last_error = 'rescued too often'
                 WHERE unique_key = ANY($1::text[])
                """, [PostgresArray.texts(deadKeys.map { Optional($0) })])
            let members = try await world.sql.query("""
                SELECT contact_id FROM oltp.deliveries WHERE campaign_id = $1 AND batch = $2 ORDER BY contact_id
                """, [String(id), String(batches[0])]).rows.map { $0[0]! }
            try await world.exec("""
                UPDATE oltp.deliveries SET state = 'sending', claim_token = 'lost', sending_until = now() - interval '1 second',
                       tries = CASE WHEN contact_id = $2 THEN 1 ELSE 3 END
                 WHERE campaign_id = $1 AND contact_id IN ($2, $3)
                """, [String(id), members[1], members[2]])
            let poisoned = try await world.scalar("SELECT address FROM oltp.contacts WHERE id = $1", [members[2]])!

            let (oltp, content, handlers) = campaignDaemonParts(world, settings: settings)
            let config = world.configuration()
            try await withRelay(world, sweepInterval: .milliseconds(300)) {
                try await world.running([world.makeDaemon(config, handlers: handlers)]) {
                    try await waitUntil(timeout: 60, "the campaign is sent") {
                        try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent"
                    }
                }
            }
            let recipients = try sink.mails().flatMap(\.rcptTo)
            // 30 − 1 unsubscribed − 1 whose claim lapsed maxTries times.
            #expect(recipients.count == 28)
            #expect(Set(recipients).count == recipients.count, "a recipient received two messages")
            #expect(!recipients.contains(poisoned))
            #expect(try await world.scalar("""
                SELECT state || ' ' || last_reply FROM oltp.deliveries WHERE campaign_id = $1 AND contact_id = $2
                """, [String(id), members[2]]) == "failed its send was cut short 3 times (the sender stopped mid-send)")
            #expect(try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state = 'sent'", [String(id)]) == 28)
            await oltp.close()
            await content.close()
        }
    }

    @Test("a batch claims its recipients and records their outcomes in groups: few statements, each recipient once")
    func groupedClaimsAndRecords() async throws {
        let sink = try await NotifySink.start()
        defer { sink.stop() }
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: sink.smtpPort, count: 200, batchSize: 200, unsubscribed: [9])
            // Counts the UPDATE statements on oltp.deliveries (statement-level: one per statement, whatever its rows).
            try await world.exec("CREATE TABLE public.delivery_updates (n bigint NOT NULL)")
            try await world.exec("INSERT INTO public.delivery_updates VALUES (0)")
            try await world.exec("""
                CREATE FUNCTION public.count_delivery_updates() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN UPDATE public.delivery_updates SET n = n + 1; RETURN NULL; END $$
                """)
            try await world.exec("""
                CREATE TRIGGER count_delivery_updates AFTER UPDATE ON oltp.deliveries
                    FOR EACH STATEMENT EXECUTE FUNCTION public.count_delivery_updates()
                """)
            let (oltp, content, handlers) = campaignDaemonParts(world, settings: testSettings)
            let config = world.configuration()
            try await withRelay(world) {
                try await world.running([world.makeDaemon(config, handlers: handlers)]) {
                    try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
                    try await waitUntil(timeout: 60, "the campaign is sent") {
                        try await world.scalar("SELECT status FROM oltp.campaigns WHERE id = $1", [String(id)]) == "sent"
                    }
                }
            }
            let recipients = try sink.mails().flatMap(\.rcptTo)
            #expect(recipients.count == 199)
            #expect(Set(recipients).count == recipients.count, "a recipient received two messages")
            #expect(try await world.int(
                "SELECT count(*) FROM oltp.deliveries WHERE campaign_id = $1 AND state = 'sent'", [String(id)]) == 199)
            // One claim and one record per recipient would be 398 statements, plus the
            // batch's suppress and abandoned-claims statements. In groups (4 at first, then
            // about 0.25 s of sends at the rate seen, at most 50) at most one per recipient
            // even if every send took 0.1 s; on an idle host a few dozen.
            let updates = try await world.int("SELECT n FROM public.delivery_updates")
            #expect(updates >= 2 * (199 / 50) && updates <= 201, "\(updates) UPDATE statements on oltp.deliveries")
            await oltp.close()
            await content.close()
        }
    }

    @Test("unsubscribe tokens come from the stored pads: the same HMAC as oltp.hmac_sha256, also after a rotation")
    func unsubscribePads() async throws {
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: 2525, count: 2)
            let contact = try await world.scalar("SELECT min(id) FROM oltp.contacts")!
            /// The pads as RFC 2104 defines them, computed here from the key.
            func expectPads() async throws {
                let key = try #require(try await world.scalar("SELECT encode(key, 'hex') FROM oltp.unsubscribe_key"))
                var bytes: [UInt8] = stride(from: 0, to: key.count, by: 2).map { at in
                    let start = key.index(key.startIndex, offsetBy: at)
                    return UInt8(key[start..<key.index(start, offsetBy: 2)], radix: 16)!
                }
                #expect(bytes.count <= 64)
                bytes += [UInt8](repeating: 0, count: 64 - bytes.count)
                let inner = bytes.map { String(format: "%02x", $0 ^ 0x36) }.joined()
                let outer = bytes.map { String(format: "%02x", $0 ^ 0x5c) }.joined()
                #expect(try await world.scalar("SELECT encode(inner_pad, 'hex') FROM oltp.unsubscribe_key") == inner)
                #expect(try await world.scalar("SELECT encode(outer_pad, 'hex') FROM oltp.unsubscribe_key") == outer)
                let viaLoop = try await world.scalar("""
                    SELECT $1 || '.' || $2 || '.' || encode(oltp.hmac_sha256(key, convert_to('unsubscribe:' || $1 || ':' || $2, 'UTF8')), 'hex')
                      FROM oltp.unsubscribe_key
                    """, [contact, String(id)])
                #expect(try await world.scalar("SELECT oltp.unsubscribe_token($1, $2)", [contact, String(id)]) == viaLoop)
            }
            try await expectPads()
            let before = try await world.scalar("SELECT oltp.unsubscribe_token($1, $2)", [contact, String(id)])!
            // Rotation: the pads follow the key; outstanding tokens stop working.
            try await world.exec("UPDATE oltp.unsubscribe_key SET key = decode(repeat('ab', 20), 'hex')")
            try await expectPads()
            #expect(try await world.scalar("SELECT oltp.unsubscribe_token($1, $2)", [contact, String(id)]) != before)
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [before]) == "f")
            let after = try await world.scalar("SELECT oltp.unsubscribe_token($1, $2)", [contact, String(id)])!
            #expect(try await world.scalar("SELECT oltp.unsubscribe($1)", [after]) == "t")
        }
    }

    @Test("the sweep enqueues again the preparation of a scheduled campaign whose preparation job died, at its send time")
    func sweepRevivesScheduled() async throws {
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: 2525, count: 3)
            try await world.exec("UPDATE oltp.campaigns SET send_at = now() + interval '1 hour' WHERE id = $1", [String(id)])
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
            let relay = OutboxRelay(
                oltp: world.database.connection("relay-oltp"), queue: world.database.connection("relay-queue"), logger: .silent)
            #expect(try await relay.relayOnce() == 1)
            let sweep = DeliverySweep(oltp: world.database.connection("sweep-oltp"), queue: world.database.connection("sweep-queue"))
            // Its preparation waits in the queue: nothing to do.
            var outcome = try await sweep.sweep()
            #expect(outcome.campaigns == 1 && outcome.preparations == 0)
            // The preparation job dies (dead-lettered): one is enqueued again, once, to run at send_at.
            try await world.exec("UPDATE queue.jobs SET state = 'dead', finished_at = now() WHERE kind = 'campaign.prepare'")
            outcome = try await sweep.sweep()
            #expect(outcome.preparations == 1)
            #expect(try await world.scalar("""
                SELECT (o.run_at = c.send_at)::text FROM oltp.outbox o, oltp.campaigns c
                 WHERE c.id = $1 AND o.kind = 'campaign.prepare'
                """, [String(id)]) == "true")
            #expect(try await sweep.sweep().preparations == 0)
            #expect(try await relay.relayOnce() == 1)
            #expect(try await sweep.sweep().preparations == 0)
            #expect(try await world.int(
                "SELECT count(*) FROM queue.jobs WHERE kind = 'campaign.prepare' AND state NOT IN ('completed', 'dead', 'cancelled')") == 1)
        }
    }

    @Test("the sweep prunes the sending reports of finished campaigns once no daemon wrote them for a while")
    func sweepPrunesReports() async throws {
        try await withWorld { world in
            let id = try await seedCampaign(world, smtpPort: 2525, count: 3)
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(id)])
            try await world.exec("DELETE FROM oltp.outbox")
            #expect(try await CampaignStore(connection: world.sql).start(id))
            try await world.exec("""
                INSERT INTO oltp.campaign_senders (campaign_id, daemon, tried, updated_at)
                VALUES ($1, 'old', 5, now() - interval '1 hour'), ($1, 'recent', 5, now())
                """, [String(id)])
            let sweep = DeliverySweep(oltp: world.database.connection("sweep-oltp"), queue: world.database.connection("sweep-queue"))
            // Still sending: its counts decide the auto-pause; nothing is pruned.
            #expect(try await sweep.sweep().prunedReports == 0)
            try await world.exec("UPDATE oltp.campaigns SET status = 'cancelled' WHERE id = $1", [String(id)])
            #expect(try await sweep.sweep().prunedReports == 1)
            #expect(try await world.sql.query(
                "SELECT daemon FROM oltp.campaign_senders WHERE campaign_id = $1", [String(id)]).rows.map { $0[0] } == ["recent"])
        }
    }

    @Test("under a domain throttle the ETA counts that domain's backlog at its rate")
    func etaUnderDomainThrottle() async throws {
        try await withWorld { world in
            var special: [Int: String] = [:]
            for i in stride(from: 1, through: 40, by: 2) { special[i] = "u\(i)@slow.test" }
            let id = try await seedCampaign(world, smtpPort: 2525, count: 40, batchSize: 10, special: special)
            _ = try await fanOutByHand(world, id)
            // The 20 fast recipients went out within a second; the 20 at slow.test wait at 2/s.
            try await world.exec("""
                UPDATE oltp.deliveries d SET state = 'sent', sent_at = now() - (d.contact_id % 20) * interval '50 milliseconds'
                  FROM oltp.contacts k
                 WHERE d.campaign_id = $1 AND k.id = d.contact_id AND k.address NOT LIKE '%@slow.test'
                """, [String(id)])
            try await world.exec("""
                INSERT INTO oltp.domain_limits (domain, messages_per_second, burst) VALUES ('slow.test', 2, 1)
                """)
            try await world.exec("""
                INSERT INTO oltp.campaign_senders (campaign_id, daemon, window_seconds, sends, domain_wait, smtp_time, throttled_domain, slots)
                VALUES ($1, 'd1', 1, 2, 0.9, 0.05, 'slow.test', 4)
                """, [String(id)])
            let status = try #require(try await CampaignStatus.load(world.sql, id: id))
            #expect(status.limitedBy.reason == "domain_throttle")
            #expect(status.delivered == 20)
            // 20 open at slow.test at 2/s: 10 s; the overall rate (20 in under 1 s) alone would say about 1 s.
            #expect(status.etaSeconds == 10, "eta \(String(describing: status.etaSeconds))")
        }
    }
}
