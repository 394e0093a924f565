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
/// rows come from another tier or from the spool, strict elsewhere) hold.
@Suite("Analytics and campaign statements", .serialized)
struct AnalyticsCampaignStatementsTests {
    static let statements: [any PostgresStatement.Type] = [
        AnalyticsAttemptFactsStatements.Insert.self, AnalyticsAttemptFactsStatements.Spool.self,
        AnalyticsAttemptFactsStatements.Spooled.self, AnalyticsAttemptFactsStatements.DeleteSpooled.self,
        AnalyticsAttemptFactsStatements.DailyJobs.self, AnalyticsAttemptFactsStatements.Trim.self,
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
        CampaignDeliveriesStatements.Suppress.self, CampaignDeliveriesStatements.Claim.self,
        CampaignDeliveriesStatements.Record.self, CampaignDeliveriesStatements.NextOpen.self,
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
            let report = try await AnalyticsRollup(databases: databases, logger: .silent).rollUp(AnalyticsDay("2026-01-10")!)
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

    @Test("a spooled fact that does not parse is deleted with its batch; the others move to analytics")
    func unparsableSpoolRow() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.analytics_spool (job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms, finished_at)
                VALUES (1, 1, 'noop', 'normal', 'completed', 5, 6, '2026-01-10T08:00:00.123Z'),
                       (2, 1, 'noop', 'urgent', 'completed', 5, 6, '2026-01-10T08:00:00Z'),
                       (3, 2, 'mail', 'high', 'retry', 7, 8, '2026-01-10T09:00:00Z')
                """)
            let writer = FactsWriter(
                analytics: world.database.connection("facts"), spool: world.database.connection("spool"),
                capacity: 100, flushInterval: 0.1, logger: .silent)
            try await runningServices([writer]) {
                try await waitUntil(timeout: 10, "spool emptied") {
                    try await world.int("SELECT count(*) FROM queue.analytics_spool") == 0
                }
            }
            #expect(writer.counters.unspooled == 2)
            #expect(try await world.sql.lines("""
                SELECT job_id, attempt, kind, priority, outcome, queue_wait_ms, run_ms,
                       to_char(finished_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS')
                  FROM analytics.attempt_facts ORDER BY job_id
                """) == ["1\t1\tnoop\tnormal\tcompleted\t5\t6\t08:00:00.123", "3\t2\tmail\thigh\tretry\t7\t8\t09:00:00.000"])
        }
    }

    @Test("a campaign's status decodes every count by name; an unknown campaign has none")
    func campaignStatusByName() async throws {
        try await withWorld { world in
            #expect(try await CampaignStatus.load(world.sql, id: 999_999) == nil)
            #expect(try await CampaignStore(connection: world.sql).campaign(999_999) == nil)
            #expect(try await CampaignStore(connection: world.sql).nextOpen(999_999, contacts: [1, 2]) == nil)
            let page = try await CampaignStore(connection: world.sql).fanOutPage(999_999, pageSize: 10)
            #expect(page == CampaignStore.FanOutPage(ran: false, members: 0, deliveries: 0, jobs: 0, done: true))
        }
    }
}
