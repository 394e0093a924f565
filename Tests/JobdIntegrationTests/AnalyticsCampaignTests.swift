import Foundation
@testable import JobdAnalytics
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

/// The rollup's `campaigns` section: read from the OLTP tier (its own database
/// here), stored in the analytics tier, and `jobd report --campaign`'s figures.
@Suite("Analytics per campaign", .serialized)
struct AnalyticsCampaignTests {
    /// Seeds two campaigns in `oltp` with deliveries in known states and times;
    /// returns their ids.
    static func seed(_ oltp: PostgresConnection) async throws -> (Int64, Int64) {
        try await oltp.executeScript("""
            INSERT INTO oltp.workspaces (name) VALUES ('acme'), ('zeta');
            INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, starttls, unsubscribe_url)
            SELECT id, 'news', 'news@' || name || '.test', 'smtp://127.0.0.1:25', 'off', 'https://x.test/u' FROM oltp.workspaces;
            INSERT INTO oltp.lists (workspace_id, name) SELECT id, 'all' FROM oltp.workspaces;
            INSERT INTO oltp.contacts (workspace_id, address)
            SELECT w.id, 'c' || g || '@' || w.name || '.test' FROM oltp.workspaces w, generate_series(1, 20) g;
            INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template)
            SELECT w.id, 'launch ' || w.name, a.id, l.id, 'Hi', 'Hello'
              FROM oltp.workspaces w JOIN oltp.email_accounts a ON a.workspace_id = w.id JOIN oltp.lists l ON l.workspace_id = w.id
             ORDER BY w.id;
            """)
        let acme = Int64(try await oltp.int("SELECT c.id FROM oltp.campaigns c JOIN oltp.workspaces w ON w.id = c.workspace_id WHERE w.name = 'acme'"))
        let zeta = Int64(try await oltp.int("SELECT c.id FROM oltp.campaigns c JOIN oltp.workspaces w ON w.id = c.workspace_id WHERE w.name = 'zeta'"))
        // (contact number, state, tries, created_at, updated_at, sent_at)
        try await oltp.executeScript("""
            CREATE TEMP TABLE seed (campaign text, n int, state text, tries int, created timestamptz, updated timestamptz, sent timestamptz);
            -- acme on 2026-01-10: ten sent 1..10 s after their fan-out, first try.
            INSERT INTO seed SELECT 'acme', g, 'sent', 1, '2026-01-10T10:00:00Z', '2026-01-10T10:00:00Z'::timestamptz + g * interval '1 second',
                                    '2026-01-10T10:00:00Z'::timestamptz + g * interval '1 second' FROM generate_series(1, 10) g;
            INSERT INTO seed VALUES
                ('acme', 11, 'bounced',    1, '2026-01-10T10:00:00Z', '2026-01-10T11:00:00Z', NULL),
                ('acme', 12, 'suppressed', 0, '2026-01-10T10:00:00Z', '2026-01-10T10:00:00Z', NULL),
                ('acme', 13, 'failed',     5, '2026-01-10T10:00:00Z', '2026-01-10T15:00:00Z', NULL),
                ('acme', 14, 'deferred',   1, '2026-01-10T10:00:00Z', '2026-01-10T23:59:59.999Z', NULL),
                -- deferred on the 10th, sent on the 11th: counts on the 11th
                ('acme', 15, 'sent',       2, '2026-01-10T10:00:00Z', '2026-01-11T00:00:10Z', '2026-01-11T00:00:10Z'),
                ('zeta', 1,  'sent',       1, '2026-01-10T08:00:00Z', '2026-01-10T08:00:01Z', '2026-01-10T08:00:01Z'),
                ('zeta', 2,  'sent',       1, '2026-01-10T08:00:00Z', '2026-01-10T08:00:03Z', '2026-01-10T08:00:03Z'),
                -- the day before: not in the 10th
                ('zeta', 3,  'bounced',    1, '2026-01-09T08:00:00Z', '2026-01-09T23:59:59Z', NULL);
            INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state, tries, created_at, updated_at, sent_at)
            SELECT c.id, k.id, w.id, s.state, s.tries, s.created, s.updated, s.sent
              FROM seed s JOIN oltp.workspaces w ON w.name = s.campaign
              JOIN oltp.campaigns c ON c.workspace_id = w.id
              JOIN oltp.contacts k ON k.workspace_id = w.id AND k.address = 'c' || s.n || '@' || w.name || '.test';
            """)
        return (acme, zeta)
    }

    @Test("the rollup stores per-campaign rows read from the OLTP database: counts, delivery rate, time to send; report --campaign adds the days up")
    func perCampaign() async throws {
        // The queue tier shares the analytics database here (the jobs section reads its ledger).
        let analytics = try await TestDatabase.create(tiers: [.queue, .analytics])
        let oltpDatabase = try await TestDatabase.create(tiers: [.oltp])
        let sql = analytics.connection("sql")
        let oltp = oltpDatabase.connection("oltp-sql")
        let databases = TierDatabases([
            TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in analytics.connection("a") },
            TierDatabase(tier: .content, size: 1, logger: .silent) { _ in analytics.connection("c") },
            TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in analytics.connection("n") },
            TierDatabase(tier: .oltp, size: 1, logger: .silent) { _ in oltpDatabase.connection("o") },
            TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in analytics.connection("q") },
        ])
        do {
            let (acme, zeta) = try await Self.seed(oltp)
            let rollup = AnalyticsRollup(databases: databases, queue: databases[.queue], logger: .silent)
            let day = AnalyticsDay("2026-01-10")!
            let report = try await rollup.rollUp(day)
            let rows = try await sql.lines("""
                SELECT campaign_id, name, recipients, delivered, bounced, deferred, suppressed, failed, unfinished,
                       round(delivery_rate::numeric, 4), round(send_p50_ms::numeric, 3), round(send_p99_ms::numeric, 3)
                  FROM analytics.daily_campaigns WHERE day = '2026-01-10' ORDER BY campaign_id
                """)
            #expect(rows == [
                "\(acme)\tlaunch acme\t14\t10\t1\t2\t1\t1\t1\t0.8333\t5500.000\t9910.000",
                "\(zeta)\tlaunch zeta\t2\t2\t0\t0\t0\t0\t0\t1.0000\t2000.000\t2980.000",
            ])
            #expect(try await sql.lines("SELECT status, source_rows FROM analytics.daily_rollups WHERE section = 'campaigns'")
                == ["ok\t16"])
            #expect(report.campaigns.map(\.campaignID) == [acme, zeta])

            // Idempotent, and the stored report reads the same rows back.
            try await rollup.rollUp(day)
            #expect(try await sql.lines("SELECT campaign_id, recipients FROM analytics.daily_campaigns ORDER BY 1")
                == ["\(acme)\t14", "\(zeta)\t2"])
            let stored = try await rollup.report(day)
            #expect(stored.stored)
            #expect(stored.campaigns == report.campaigns)
            let text = stored.text()
            #expect(text.contains("campaigns (deliveries whose last change fell on the day"))
            #expect(text.contains("launch acme"), "\(text)")
            #expect(text.contains("83.3%"), "\(text)")

            // A campaign whose deliveries disappear loses its row on the next run.
            try await oltp.query("DELETE FROM oltp.deliveries WHERE campaign_id = $1", [String(zeta)])
            try await rollup.rollUp(day)
            #expect(try await sql.lines("SELECT campaign_id FROM analytics.daily_campaigns") == ["\(acme)"])

            // One campaign: all its deliveries counted now, and each rolled-up day.
            try await rollup.rollUp(AnalyticsDay("2026-01-11")!)
            let campaign = try await rollup.campaignReport(acme)
            let total = try #require(campaign.total)
            #expect(total.recipients == 15)
            #expect(total.delivered == 11)
            #expect(total.deferred == 3)
            #expect(total.bounced == 1 && total.suppressed == 1 && total.failed == 1 && total.unfinished == 1)
            #expect(total.deliveryRate == 11.0 / 13.0)
            #expect(campaign.days.map(\.day) == ["2026-01-10", "2026-01-11"])
            #expect(campaign.days.map(\.campaign.recipients) == [14, 1])
            // The days add up to the campaign.
            #expect(campaign.days.map(\.campaign.recipients).reduce(0, +) == total.recipients)
            #expect(campaign.days.map(\.campaign.delivered).reduce(0, +) == total.delivered)
            #expect(campaign.text().contains("2026-01-11"))
            #expect(try await rollup.campaignReport(999_999).total == nil)
        } catch {
            await databases.close()
            await sql.close()
            await oltp.close()
            await analytics.drop()
            await oltpDatabase.drop()
            throw error
        }
        await databases.close()
        await sql.close()
        await oltp.close()
        await analytics.drop()
        await oltpDatabase.drop()
    }
}
