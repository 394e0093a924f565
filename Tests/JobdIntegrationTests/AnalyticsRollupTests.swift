import Foundation
import JobdAnalytics
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import Testing

/// Small stand-in tables with only the columns the rollup reads (the real tier tables
/// have many more NOT NULL columns), each tier in its own
/// database (as a deployment with separate tier databases has them).
enum StandIn {
    static let content = """
        CREATE SCHEMA content;
        CREATE TABLE content.messages (
            id bigserial PRIMARY KEY, tenant_id text NOT NULL, created_at timestamptz NOT NULL,
            raw_bytes bigint NOT NULL, stored_bytes bigint NOT NULL);
        """
    static let notifications = """
        CREATE SCHEMA notifications;
        CREATE TABLE notifications.notifications (
            id bigserial PRIMARY KEY, channel text NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL);
        CREATE TABLE notifications.attempts (
            id bigserial PRIMARY KEY, notification_id bigint NOT NULL REFERENCES notifications.notifications, outcome text NOT NULL,
            started_at timestamptz NOT NULL, duration_ms double precision NOT NULL);
        """
}

/// Four databases: queue and analytics (migrated), content and notifications (stand-ins).
struct TierWorld {
    let queue: TestDatabase
    let analytics: TestDatabase
    let content: TestDatabase
    let notifications: TestDatabase
    let sql: PostgresConnection
    let queueSQL: PostgresConnection
    let contentSQL: PostgresConnection
    let notificationsSQL: PostgresConnection
    /// The rollup's connection to the queue database (the `jobs` section's ledger).
    let queueTier: TierDatabase
    let logs = LogCapture()

    static func make(standIns: Bool = true) async throws -> TierWorld {
        let queue = try await TestDatabase.create(tiers: [.queue])
        let analytics = try await TestDatabase.create(tiers: [.analytics])
        let content = try await TestDatabase.create(tiers: [])
        let notifications = try await TestDatabase.create(tiers: [])
        let world = TierWorld(
            queue: queue, analytics: analytics, content: content, notifications: notifications,
            sql: analytics.connection("sql"), queueSQL: queue.connection("queue-sql"),
            contentSQL: content.connection("content-sql"), notificationsSQL: notifications.connection("notify-sql"),
            queueTier: TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in queue.connection("q") })
        if standIns {
            try await world.contentSQL.executeScript(StandIn.content)
            try await world.notificationsSQL.executeScript(StandIn.notifications)
        }
        return world
    }

    func databases(notificationsURL: String? = nil) -> TierDatabases {
        TierDatabases([
            TierDatabase(tier: .analytics, size: 2, logger: .silent) { analytics.connection("a\($0)") },
            TierDatabase(tier: .content, size: 1, logger: .silent) { _ in content.connection("c") },
            TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in
                notificationsURL.map { PostgresConnection(conninfo: $0, name: "n", commandTimeout: 2, logger: .silent) }
                    ?? notifications.connection("n")
            },
        ])
    }

    /// The rollup over `databases` and this world's queue database.
    func rollup(_ databases: TierDatabases) -> AnalyticsRollup {
        AnalyticsRollup(databases: databases, queue: queueTier, logger: .silent)
    }

    func close() async {
        await sql.close()
        await queueSQL.close()
        await contentSQL.close()
        await notificationsSQL.close()
        await queueTier.close()
        await queue.drop()
        await analytics.drop()
        await content.drop()
        await notifications.drop()
    }

    /// Ledger end rows (the attempts), events, messages and notifications on
    /// 2026-01-10, plus some on the days around it that the rollup of the 10th must
    /// leave out. A ledger row carries seconds; the rollup reports milliseconds.
    func seed() async throws {
        try await queueSQL.executeScript("""
            INSERT INTO queue.attempts (job_id, attempt, event, at, daemon, outcome, kind, queue_wait_seconds, run_seconds)
            SELECT g, 1, 'end', '2026-01-10T00:00:00Z'::timestamptz + g * interval '1 minute', 'd', 'completed', 'noop',
                   g / 1000.0, g / 10000.0
              FROM generate_series(1, 100) g;
            INSERT INTO queue.attempts (job_id, attempt, event, at, daemon, outcome, kind, queue_wait_seconds, run_seconds)
            SELECT 1000 + g, 1, 'end', '2026-01-10T12:00:00Z', 'd', 'retry', 'noop', 0.005, 0.001 FROM generate_series(1, 10) g;
            INSERT INTO queue.attempts (job_id, attempt, event, at, daemon, outcome, kind, queue_wait_seconds, run_seconds) VALUES
                (2000, 3, 'end', '2026-01-10T23:59:59.999Z', 'd', 'dead', 'mail', 0.007, 0.07),
                (3000, 1, 'end', '2026-01-09T23:59:59Z', 'd', 'completed', 'noop', 0.001, 0.001),
                (3001, 1, 'end', '2026-01-11T00:00:00Z', 'd', 'completed', 'noop', 0.001, 0.001);
            """)
        try await sql.executeScript("""
            INSERT INTO analytics.events (job_id, seq, name, value, occurred_at) VALUES
                (1, 1, 'signup', 1, '2026-01-10T01:00:00Z'), (1, 2, 'signup', 2, '2026-01-10T02:00:00Z'),
                (2, 1, 'signup', 3, '2026-01-10T03:00:00Z'), (3, 1, 'signup', 100, '2026-01-11T03:00:00Z');
            """)
        try await contentSQL.executeScript("""
            INSERT INTO content.messages (tenant_id, created_at, raw_bytes, stored_bytes) VALUES
                ('acme', '2026-01-10T08:00:00Z', 1000, 250), ('acme', '2026-01-10T09:00:00Z', 1000, 250),
                ('acme', '2026-01-10T10:00:00Z', 1000, 250), ('zeta', '2026-01-10T11:00:00Z', 500, 500),
                ('acme', '2026-01-11T08:00:00Z', 9999, 1);
            """)
        try await notificationsSQL.executeScript("""
            INSERT INTO notifications.notifications (channel, status, created_at)
            SELECT 'email', CASE WHEN g <= 8 THEN 'sent' WHEN g <= 10 THEN 'failed' ELSE 'pending' END,
                   '2026-01-10T06:00:00Z' FROM generate_series(1, 11) g;
            INSERT INTO notifications.notifications (channel, status, created_at) VALUES
                ('sms', 'delivered', '2026-01-10T07:00:00Z'), ('sms', 'failed', '2026-01-12T07:00:00Z');
            INSERT INTO notifications.attempts (notification_id, outcome, started_at, duration_ms)
            SELECT (SELECT min(id) FROM notifications.notifications WHERE channel = 'email'), CASE WHEN g <= 90 THEN 'sent' ELSE 'timeout' END, '2026-01-10T06:00:00Z', g
              FROM generate_series(1, 100) g;
            """)
    }

    /// Every stored daily row of 2026-01-10, without the rollup times.
    func snapshot() async throws -> [String] {
        try await sql.lines("SELECT 'jobs', * FROM analytics.daily_jobs ORDER BY kind, outcome")
            + sql.lines("SELECT 'events', * FROM analytics.daily_events ORDER BY name")
            + sql.lines("SELECT 'content', * FROM analytics.daily_content ORDER BY tenant_id")
            + sql.lines("SELECT 'notifications', * FROM analytics.daily_notifications ORDER BY channel")
            + sql.lines("SELECT day, section, status, detail, source_rows FROM analytics.daily_rollups ORDER BY section")
    }
}

func withTierWorld(standIns: Bool = true, _ body: (TierWorld) async throws -> Void) async throws {
    let world = try await TierWorld.make(standIns: standIns)
    do {
        try await body(world)
    } catch {
        await world.close()
        throw error
    }
    await world.close()
}

@Suite("Analytics rollup", .serialized)
struct AnalyticsRollupTests {
    let day = AnalyticsDay("2026-01-10")!

    @Test("one day across three databases: jobs, percentiles, events, content ratio, delivery rate and latency")
    func rollUpDay() async throws {
        try await withTierWorld { world in
            try await world.seed()
            let databases = world.databases()
            let rollup = world.rollup(databases)
            let report = try await rollup.rollUp(day)
            let jobs = try await world.sql.lines("""
                SELECT kind, outcome, attempts, round(wait_p50_ms::numeric, 6), round(wait_p95_ms::numeric, 6),
                       round(wait_p99_ms::numeric, 6), round(run_p50_ms::numeric, 6), round(run_p99_ms::numeric, 6)
                  FROM analytics.daily_jobs WHERE day = '2026-01-10' ORDER BY kind, outcome
                """)
            #expect(jobs == [
                    "mail\tdead\t1\t7.000000\t7.000000\t7.000000\t70.000000\t70.000000",
                    "noop\tcompleted\t100\t50.500000\t95.050000\t99.010000\t5.050000\t9.901000",
                    "noop\tretry\t10\t5.000000\t5.000000\t5.000000\t1.000000\t1.000000",
                ])
            #expect(try await world.sql.lines("SELECT name, events, total, min, max, avg FROM analytics.daily_events") == [
                "signup\t3\t6\t1\t3\t2",
            ])
            #expect(try await world.sql.lines("""
                SELECT tenant_id, messages, raw_bytes, stored_bytes, compression_ratio FROM analytics.daily_content ORDER BY 1
                """) == ["acme\t3\t3000\t750\t4", "zeta\t1\t500\t500\t1"])
            #expect(try await world.sql.lines("""
                SELECT channel, notifications, sent, failed, delivery_rate, attempts, failed_attempts,
                       latency_p50_ms, latency_p95_ms, latency_p99_ms
                  FROM analytics.daily_notifications ORDER BY 1
                """) == [
                    "email\t11\t8\t2\t0.8\t100\t10\t50.5\t95.05\t99.01",
                    "sms\t1\t1\t0\t1\t0\t0\tNULL\tNULL\tNULL",
                ])
            #expect(try await world.sql.lines("SELECT section, status, source_rows FROM analytics.daily_rollups ORDER BY 1") == [
                "content\tok\t4", "events\tok\t3", "jobs\tok\t111", "notifications\tok\t112",
            ])
            #expect(report.contentTotal.compressionRatio == 3500.0 / 1250.0)

            // Re-running the day gives the same rows.
            let first = try await world.snapshot()
            try await rollup.rollUp(day)
            #expect(try await world.snapshot() == first)

            // The report reads the stored rows and agrees with what the rollup computed.
            let stored = try await rollup.report(day)
            #expect(stored.stored)
            #expect(stored.jobs == report.jobs)
            #expect(stored.events == report.events)
            #expect(stored.content == report.content)
            #expect(stored.notifications == report.notifications)
            // A day never rolled up is computed on the spot, and says so.
            let live = try await rollup.report(AnalyticsDay("2026-01-11")!)
            #expect(!live.stored)
            #expect(live.jobs.map(\.attempts) == [1])
            #expect(try await world.sql.int("SELECT count(*) FROM analytics.daily_rollups WHERE day = '2026-01-11'") == 0)

            // Ledger rows that disappear take their rows with them on the next run
            // (while the ledger's trim has not marked the day).
            try await world.queueSQL.query("DELETE FROM queue.attempts WHERE kind = 'mail'")
            try await rollup.rollUp(day)
            #expect(try await world.sql.lines("SELECT kind FROM analytics.daily_jobs ORDER BY 1") == ["noop", "noop"])
            await databases.close()
        }
    }

    @Test("a tier without its table is source_missing, one with a wrong column source_invalid; the rest is stored")
    func tolerantSources() async throws {
        try await withTierWorld(standIns: false) { world in
            try await world.notificationsSQL.executeScript("""
                CREATE SCHEMA notifications;
                CREATE TABLE notifications.notifications (channel text, status text, created_at timestamptz);
                CREATE TABLE notifications.attempts (channel text, outcome text, started_at timestamptz);
                """)
            try await world.queueSQL.executeScript("""
                INSERT INTO queue.attempts (job_id, attempt, event, at, outcome, kind, queue_wait_seconds, run_seconds)
                VALUES (1, 1, 'end', '2026-01-10T10:00:00Z', 'completed', 'noop', 0.001, 0.002)
                """)
            let databases = world.databases()
            let report = try await world.rollup(databases).rollUp(day)
            #expect(report.jobs.count == 1)
            let sections = try await world.sql.lines("SELECT section, status, coalesce(detail, '') FROM analytics.daily_rollups ORDER BY 1")
            #expect(sections.count == 4)
            #expect(sections[0] == "content\tsource_missing\tcontent.messages not in the content database")
            #expect(sections[1] == "events\tok\t")
            #expect(sections[2] == "jobs\tok\t")
            #expect(sections[3].hasPrefix("notifications\tsource_invalid\t"))
            #expect(sections[3].contains("does not exist"))
            #expect(report.text().contains("content: source_missing"))
            await databases.close()
        }
    }

    @Test("an unreachable tier: the other sections are stored, then the rollup fails transiently to retry")
    func unreachableTier() async throws {
        try await withTierWorld { world in
            try await world.seed()
            let databases = world.databases(notificationsURL: unreachableDatabase)
            let handler = AnalyticsRollupHandler(rollup: world.rollup(databases))
            await #expect {
                try await handler.handle(claimed("analytics.rollup", #"{"day": "2026-01-10"}"#), context: testContext)
            } throws: { error in
                (error as? JobFailure)?.code == "tier_unavailable" && (error as? JobFailure)?.severity == .transient
            }
            #expect(try await world.sql.lines("SELECT section FROM analytics.daily_rollups ORDER BY 1") == ["content", "events", "jobs"])
            #expect(try await world.sql.int("SELECT count(*) FROM analytics.daily_jobs") == 3)
            await databases.close()
        }
    }

    @Test("the handler's payload: a day, or yesterday by the injected clock; anything else is permanent")
    func rollupPayload() async throws {
        try await withTierWorld { world in
            try await world.seed()
            let databases = world.databases()
            let rollup = world.rollup(databases)
            let handler = AnalyticsRollupHandler(rollup: rollup, now: { utcDate("2026-01-11T00:15:00Z") })
            try await handler.handle(claimed("analytics.rollup", "{}"), context: testContext)
            #expect(try await world.sql.int("SELECT count(*) FROM analytics.daily_rollups WHERE day = '2026-01-10'") == 4)
            for payload in [#"{"day": "2026-13-01"}"#, #"{"day": 20260110}"#, #"{"days": "2026-01-10"}"#, "[]"] {
                await #expect {
                    try await handler.handle(claimed("analytics.rollup", payload), context: testContext)
                } throws: { error in
                    (error as? JobFailure)?.code == "payload_invalid" && (error as? JobFailure)?.severity == .permanent
                }
            }
            await databases.close()
        }
    }
}

@Suite("metrics.emit and queue.prune", .serialized)
struct MetricsAndPruneTests {
    @Test("metrics.emit enqueued by plain SQL is recorded once, with name, value, tags and time")
    func emitBySQL() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload) VALUES
                  ('metrics.emit', jsonb_build_object('name', 'signup', 'value', 2, 'tags', jsonb_build_object('plan', 'pro'),
                                                     'time', '2026-01-10T08:00:00.250Z')),
                  ('metrics.emit', '{"events": [{"name": "orders", "value": 3}, {"name": "orders", "value": 4.5, "time": 1768032000}]}'),
                  ('metrics.emit', '{"name": ""}')
                """)
            let analytics = TierDatabase(tier: .analytics, size: 2, logger: .silent) { world.database.connection("a\($0)") }
            let daemon = world.makeDaemon(world.configuration(), handlers: [MetricsEmitHandler(analytics: analytics)])
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: 2)
                try await world.waitForState("dead", count: 1)
            }
            #expect(try await world.sql.lines("""
                SELECT name, value, tags::text, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS')
                  FROM analytics.events ORDER BY job_id, seq
                """).prefix(1) == ["signup\t2\t{\"plan\": \"pro\"}\t2026-01-10T08:00:00.250"])
            #expect(try await world.sql.lines("SELECT name, value FROM analytics.events WHERE name = 'orders' ORDER BY seq") == [
                "orders\t3", "orders\t4.5",
            ])
            #expect(try await world.scalar("SELECT reason FROM queue.dead_letters") == "payload_invalid")

            // The same job again (at least once): nothing new.
            let id = try await world.scalar("SELECT job_id FROM analytics.events WHERE name = 'signup'") ?? ""
            let payload = try await world.scalar("SELECT payload::text FROM queue.completed_jobs WHERE id = $1::bigint", [id]) ?? ""
            try await MetricsEmitHandler(analytics: analytics).handle(
                claimed("metrics.emit", payload, id: JobID(id) ?? 0, attempt: 2), context: testContext)
            #expect(try await world.int("SELECT count(*) FROM analytics.events") == 3)
            await analytics.close()
        }
    }

    @Test("metrics.emit payload errors name the field", arguments: [
        (#"{"value": 1}"#, "name must be"),
        (#"{"name": "x", "value": "1"}"#, "value must be a number"),
        (#"{"name": "x", "tags": []}"#, "tags must be an object"),
        (#"{"name": "x", "time": "yesterday"}"#, "time must be ISO 8601"),
        (#"{"name": "x", "colour": 1}"#, "unknown field \"colour\""),
        (#"{"events": []}"#, "list of 1…1000"),
        (#"{"events": [{"name": "ok"}, {"value": 1}]}"#, "events[1].name"),
    ])
    func emitPayloadErrors(payload: String, message: String) async throws {
        let analytics = TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in
            PostgresConnection(conninfo: unreachableDatabase, name: "a", commandTimeout: 1, logger: .silent)
        }
        await #expect {
            try await MetricsEmitHandler(analytics: analytics).handle(claimed("metrics.emit", payload), context: testContext)
        } throws: { error in
            guard let failure = error as? JobFailure else { return false }
            return failure.code == "payload_invalid" && failure.message.contains(message)
        }
    }

    @Test("queue.prune deletes finished jobs past the window in batches, keeps the rest, and snoozes when out of time")
    func prune() async throws {
        try await withWorld { world in
            try await world.sql.executeScript("""
                INSERT INTO queue.jobs (kind, state, finished_at)
                SELECT 'noop', 'completed', now() - interval '8 days' FROM generate_series(1, 25);
                INSERT INTO queue.jobs (kind, state, finished_at) VALUES
                  ('noop', 'cancelled', now() - interval '9 days'),
                  ('noop', 'completed', now() - interval '6 days'),
                  ('noop', 'dead', now() - interval '30 days'),
                  ('noop', 'available', NULL);
                INSERT INTO queue.schedule_slots (name, slot) VALUES
                  ('tick', now() - interval '10 days'), ('tick', now() - interval '9 days'), ('tick', now() - interval '1 day'),
                  ('old', now() - interval '20 days');
                """)
            let connection = world.database.connection("prune")
            // No time budget: one batch of 10, then it snoozes (the attempt is not spent).
            let hurried = QueuePruneHandler(connection: connection, retention: .seconds(7 * 86_400), timeBudget: .zero)
            await #expect(throws: JobSnooze.self) {
                try await hurried.handle(claimed("queue.prune", #"{"batch": 10}"#), context: testContext)
            }
            let left = try await world.int("SELECT count(*) FROM queue.jobs")
            #expect(left == 19)  // 29 rows, one batch of 10 gone
            let handler = QueuePruneHandler(connection: connection, retention: .seconds(7 * 86_400))
            try await handler.handle(claimed("queue.prune", #"{"batch": 10}"#), context: testContext)
            #expect(try await world.sql.lines("SELECT state FROM queue.jobs ORDER BY state") == ["available", "completed", "dead"])
            // Slots past the window go, except each schedule's newest.
            #expect(try await world.sql.lines("SELECT name FROM queue.schedule_slots ORDER BY name") == ["old", "tick"])
            // A shorter window from the payload.
            try await handler.handle(claimed("queue.prune", #"{"older_than": "5d"}"#), context: testContext)
            #expect(try await world.sql.lines("SELECT state FROM queue.jobs ORDER BY state") == ["available", "dead"])
            await #expect {
                try await handler.handle(claimed("queue.prune", #"{"older_than": "soon"}"#), context: testContext)
            } throws: { ($0 as? JobFailure)?.code == "payload_invalid" }
            await connection.close()
        }
    }
}
