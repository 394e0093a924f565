import Foundation
@testable import JobdAnalytics
@testable import JobdCampaigns
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import ServiceLifecycle
import Testing

/// The typed statements of the analytics and campaign tiers: each parses against the
/// migrated schema, and the decoding choices the conversion made (tolerant where the
/// rows come from another tier or from the queue's ledger, strict elsewhere) hold.
@Suite("Analytics and campaign statements", .serialized)
struct AnalyticsCampaignStatementsTests {
    static let statements: [any PostgresStatement.Type] = [
        AnalyticsLedgerStatements.DailyJobs.self, AnalyticsLedgerStatements.Trimmed.self,
        AnalyticsEventsStatements.Insert.self, AnalyticsEventsStatements.Daily.self, AnalyticsEventsStatements.Trim.self,
        AnalyticsDailyStatements.TrimmedSections.self, AnalyticsDailyStatements.MarkTrimmed.self,
        AnalyticsDailyStatements.Load.self, AnalyticsDailyStatements.StoreJobs.self,
        AnalyticsDailyStatements.StoreEvents.self, AnalyticsDailyStatements.StoreContent.self,
        AnalyticsDailyStatements.StoreNotifications.self,
        AnalyticsSourceStatements.TablesExist.self, AnalyticsSourceStatements.StatementTimeout.self,
        AnalyticsSourceStatements.SetStatementTimeout.self, AnalyticsSourceStatements.DailyContent.self,
        AnalyticsSourceStatements.DailyNotifications.self, AnalyticsSourceStatements.DailyNotificationAttempts.self,
        AnalyticsCampaignStatements.Daily.self, AnalyticsCampaignStatements.Store.self,
        AnalyticsCampaignStatements.Load.self,
        CampaignCampaignsStatements.Campaign.self, CampaignCampaignsStatements.Start.self,
        CampaignCampaignsStatements.SetContentRef.self, CampaignCampaignsStatements.FanOutPage.self,
        CampaignCampaignsStatements.FinishIfDone.self, CampaignCampaignsStatements.Status.self,
        CampaignDeliveriesStatements.Suppress.self, CampaignDeliveriesStatements.ClaimGroup.self,
        CampaignDeliveriesStatements.RecordGroup.self, CampaignDeliveriesStatements.NextOpen.self,
        CampaignDeliveriesStatements.CancelOpen.self,
        CampaignOutboxStatements.TryLock.self, CampaignOutboxStatements.Pending.self,
        CampaignOutboxStatements.EnqueueRelayed.self, CampaignOutboxStatements.Delete.self,
    ]

    @Test("every statement of the analytics and campaign tiers parses against the migrated schema, all tiers in one database")
    func statementsParse() async throws {
        try await withWorld { world in
            var failures: [String] = []
            for (index, statement) in Self.statements.enumerated() {
                do {
                    try await world.exec("PREPARE tier_statement_\(index) AS \(statement.sql.text)")
                } catch {
                    failures.append("\(statement): \(error)")
                }
            }
            #expect(failures == [])
            let prepared = try await world.int("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'tier_statement_%'")
            #expect(prepared == Self.statements.count)
        }
    }

    @Test("the rollup's long aggregates run under the long timeout and put the session's own back, also after a failure")
    func longTimeoutRestored() async throws {
        try await withTierWorld { world in
            let connection = world.analytics.connection("long", timeout: 7)
            #expect(try await connection.firstRow(AnalyticsSourceStatements.StatementTimeout()) == "7s")
            let during = try await AnalyticsRollup.long(connection, AnalyticsSourceStatements.StatementTimeout())
            #expect(during == ["15min"])
            #expect(try await connection.firstRow(AnalyticsSourceStatements.StatementTimeout()) == "7s")
            // content.messages is not in the analytics database: the aggregate fails, the timeout is restored.
            let range = AnalyticsRange(day: AnalyticsDay("2026-01-10")!)
            await #expect(throws: PostgresError.self) {
                try await AnalyticsRollup.long(connection, AnalyticsSourceStatements.DailyContent(range: range))
            }
            #expect(try await connection.firstRow(AnalyticsSourceStatements.StatementTimeout()) == "7s")
            await connection.close()
        }
    }

    @Test("a group key that is NULL in another tier's table is rolled up under the empty key, not a failed section")
    func nullGroupKeyFromAnotherTier() async throws {
        try await withTierWorld(standIns: false) { world in
            try await world.contentSQL.executeScript("""
                CREATE SCHEMA content;
                CREATE TABLE content.messages (tenant_id text, created_at timestamptz, raw_bytes bigint, stored_bytes bigint);
                INSERT INTO content.messages VALUES (NULL, '2026-01-10T08:00:00Z', 100, 50), ('acme', '2026-01-10T09:00:00Z', 10, 10);
                """)
            try await world.notificationsSQL.executeScript("""
                CREATE SCHEMA notifications;
                CREATE TABLE notifications.notifications (id bigint, channel text, status text, created_at timestamptz);
                CREATE TABLE notifications.attempts (notification_id bigint, outcome text, started_at timestamptz, duration_ms float8);
                INSERT INTO notifications.notifications VALUES (1, NULL, 'sent', '2026-01-10T08:00:00Z');
                INSERT INTO notifications.attempts VALUES (1, 'sent', '2026-01-10T08:00:00Z', 12);
                """)
            let databases = world.databases()
            let report = try await world.rollup(databases).rollUp(AnalyticsDay("2026-01-10")!)
            // ORDER BY puts NULL last.
            #expect(report.content.map(\.tenantID) == ["acme", ""])
            #expect(report.content.map(\.compressionRatio) == [1, 2])
            #expect(report.notifications.map(\.channel) == [""])
            #expect(report.notifications.first?.attempts == 1 && report.notifications.first?.latencyP50Ms == 12)
            #expect(try await world.sql.lines("SELECT section, status FROM analytics.daily_rollups ORDER BY 1") == [
                "content\tok", "events\tok", "jobs\tok", "notifications\tok",
            ])
            #expect(try await world.sql.lines("SELECT tenant_id, messages FROM analytics.daily_content ORDER BY 1") == [
                "\t1", "acme\t1",
            ])
            await databases.close()
        }
    }

    @Test("a ledger row without a kind (written before the ledger carried one) counts under its job's kind, or '' once the job is gone")
    func ledgerRowWithoutKind() async throws {
        try await withWorld { world in
            let id = try await world.scalar("""
                INSERT INTO queue.jobs (kind, state, finished_at) VALUES ('mail', 'completed', now()) RETURNING id
                """) ?? ""
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, at, outcome, run_seconds)
                VALUES ($1::bigint, 1, 'end', '2026-01-10T08:00:00Z', 'completed', 0.5),
                       (-1, 1, 'end', '2026-01-10T09:00:00Z', 'completed', 0.25),
                       ($1::bigint, 1, 'start', '2026-01-10T07:59:59Z', NULL, NULL)
                """, [id])
            let rows = try await world.sql.rows(AnalyticsLedgerStatements.DailyJobs(range: AnalyticsRange(day: AnalyticsDay("2026-01-10")!)))
            #expect(rows.map { "\($0.kind)|\($0.outcome)|\($0.attempts)" } == ["|completed|1", "mail|completed|1"])
            #expect(rows.map(\.waitP50Ms) == [nil, nil])
            #expect(rows.map(\.runP50Ms) == [250, 500])
        }
    }

    @Test("a campaign's status decodes every count by name; an unknown campaign has none")
    func campaignStatusByName() async throws {
        try await withWorld { world in
            #expect(try await CampaignStatus.load(world.sql, id: 999_999) == nil)
            #expect(try await CampaignStore(connection: world.sql).campaign(999_999) == nil)
            #expect(try await CampaignStore(connection: world.sql).nextOpen(999_999, batch: 1, contacts: [1, 2]) == nil)
            let page = try await CampaignStore(connection: world.sql).fanOutPage(999_999, pageSize: 10)
            #expect(page == CampaignStore.FanOutPage(ran: false, members: 0, deliveries: 0, jobs: 0, done: true))
        }
    }
}
