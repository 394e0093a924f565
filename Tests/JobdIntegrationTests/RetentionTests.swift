import Foundation
import JobdCore
import JobdPostgres
@testable import JobdAnalytics
@testable import JobdContent
@testable import JobdNotifications
@testable import JobdQueue
import JobdTestSupport
import Logging
import Testing

/// Retention of every tier, through the real handlers against a real database:
/// each cutoff with a row just inside (kept) and just outside (deleted), the batch
/// bound, and each job run as a `jobd_daemon` login.
@Suite("Retention", .serialized)
struct RetentionTests {

    // MARK: queue.trim

    /// Jobs and ledger rows on both sides of a 30-day attempts window and a 90-day
    /// dead-letter window (times relative to now(), a minute either side).
    static let queueFixture = """
        INSERT INTO queue.jobs (id, kind, state, finished_at) OVERRIDING SYSTEM VALUE VALUES
          (1, 'noop', 'completed', now() - interval '30 days 1 minute'),  -- finished just outside
          (2, 'noop', 'completed', now() - interval '29 days 23 hours 59 minutes'),  -- just inside
          (3, 'noop', 'available', NULL),                                -- still retrying
          (4, 'noop', 'dead', now() - interval '90 days 1 minute'),
          (5, 'noop', 'dead', now() - interval '89 days 23 hours 59 minutes'),
          (6, 'noop', 'available', NULL);
        INSERT INTO queue.attempts (job_id, attempt, event, at, outcome) VALUES
          (1, 1, 'start', now() - interval '30 days 2 minutes', NULL),
          (1, 1, 'end',   now() - interval '30 days 1 minute', 'completed'),
          -- started outside the window, but the job finished inside it: kept.
          (2, 1, 'start', now() - interval '30 days 2 minutes', NULL),
          (2, 1, 'end',   now() - interval '29 days 23 hours 59 minutes', 'completed'),
          (3, 1, 'start', now() - interval '40 days 1 minute', NULL),
          (3, 1, 'end',   now() - interval '40 days', 'retry'),
          -- the job is gone (pruned): only the age of the row counts.
          (777, 1, 'end', now() - interval '30 days 1 minute', 'completed'),
          (778, 1, 'end', now() - interval '29 days 23 hours 59 minutes', 'completed');
        INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, dead_at) VALUES
          (4, 'noop', '{}', 'normal', 1, 'test', now() - interval '90 days 1 minute'),
          (5, 'noop', '{}', 'normal', 1, 'test', now() - interval '89 days 23 hours 59 minutes'),
          -- a letter whose job an operator moved on: the letter goes, the job stays.
          (6, 'noop', '{}', 'normal', 1, 'test', now() - interval '100 days');
        SELECT setval(pg_get_serial_sequence('queue.jobs', 'id'), 100);
        """

    @Test("queue.trim: ledger rows of jobs finished before the window and old dead letters go; the rest stays")
    func queueTrimCutoffs() async throws {
        try await withWorld { world in
            try await world.sql.executeScript(Self.queueFixture)
            let connection = world.database.connection("trim")
            defer { Task { await connection.close() } }
            let handler = QueueTrimHandler(connection: connection, settings: .defaults)
            try await handler.handle(claimed("queue.trim", "{}"), context: testContext)
            #expect(try await world.sql.lines("SELECT job_id, event FROM queue.attempts ORDER BY job_id, at") == [
                "2\tstart", "2\tend", "3\tstart", "3\tend", "778\tend",
            ])
            #expect(try await world.sql.lines("SELECT id, state FROM queue.jobs ORDER BY id") == [
                "1\tcompleted", "2\tcompleted", "3\tavailable", "5\tdead", "6\tavailable",
            ])
            #expect(try await world.sql.lines("SELECT job_id FROM queue.dead_letters") == ["5"])
            // The ledger remembers how far back it was trimmed (the rollup never recounts
            // a day before that): the trim's cutoff, 30 days ago.
            let mark = "SELECT trimmed_before FROM queue.ledger_trimmed"
            #expect(try await world.sql.lines("""
                SELECT trimmed_before BETWEEN now() - interval '30 days 1 minute' AND now() - interval '29 days 23 hours 59 minutes'
                  FROM queue.ledger_trimmed
                """) == ["t"])
            let first = try await world.sql.lines(mark)
            // Running again changes nothing, the mark neither (nothing was deleted).
            try await handler.handle(claimed("queue.trim", "{}"), context: testContext)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 5)
            #expect(try await world.sql.lines(mark) == first)
            // Payload overrides: a shorter ledger window, dead letters off.
            try await handler.handle(
                claimed("queue.trim", #"{"attempts_older_than": "1d", "dead_letters_older_than": "off"}"#),
                context: testContext)
            #expect(try await world.sql.lines("SELECT job_id FROM queue.attempts ORDER BY job_id, at") == ["3", "3"])
            #expect(try await world.sql.lines(
                "SELECT trimmed_before BETWEEN now() - interval '1 day 1 minute' AND now() - interval '1 day' FROM queue.ledger_trimmed"
            ) == ["t"])
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 1)
            for bad in [#"{"attempts_older_than": "1h"}"#, #"{"batch": 0}"#, #"{"older_than": "1d"}"#] {
                await #expect { try await handler.handle(claimed("queue.trim", bad), context: testContext) } throws: {
                    ($0 as? JobFailure)?.code == "payload_invalid"
                }
            }
            // The functions refuse a window under a day whoever calls them.
            await #expect(throws: PostgresError.self) { try await world.exec("SELECT queue.trim_attempts(3600, 10)") }
        }
    }

    @Test("bounded batches: 35 old rows with batch 10 take four statements of 10, 10, 10, 5; a spent budget snoozes after one")
    func batchBound() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, at, outcome)
                SELECT 1000 + g, 1, 'end', now() - interval '40 days', 'completed' FROM generate_series(1, 35) g
                """)
            let connection = world.database.connection("trim")
            defer { Task { await connection.close() } }
            var settings = QueueRetentionSettings.defaults
            settings.batch = 10
            // No time budget: one statement, then the job snoozes with the rest left.
            let hurried = QueueTrimHandler(connection: connection, settings: settings, timeBudget: .zero)
            await #expect(throws: JobSnooze.self) {
                try await hurried.handle(claimed("queue.trim", "{}"), context: testContext)
            }
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 25)
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, at, outcome)
                SELECT 2000 + g, 1, 'end', now() - interval '40 days', 'completed' FROM generate_series(1, 10) g
                """)
            let handler = QueueTrimHandler(connection: connection, settings: settings)
            let report = try await RetentionRun(batch: 10, timeBudget: .seconds(60))
                .run(handler.steps(attempts: RetentionWindow.days(30), deadLetters: nil))
            #expect(report.statements["attempts"] == [10, 10, 10, 5])
            #expect(report.finished)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 0)
        }
    }

    // MARK: notifications.trim

    static let notificationsFixture = """
        INSERT INTO notifications.notifications
            (id, idempotency_key, channel, recipient, subject, body, status, sent_at, failed_at, created_at, updated_at)
            OVERRIDING SYSTEM VALUE VALUES
          (1, 'archive-out', 'email', 'a@example.com', 'Hi', 'body 1', 'sent', now(), NULL, now() - interval '31 days', now() - interval '30 days 1 minute'),
          (2, 'archive-in',  'email', 'a@example.com', 'Hi', 'body 2', 'sent', now(), NULL, now() - interval '31 days', now() - interval '29 days 23 hours 59 minutes'),
          (3, 'delete-out',  'sms',   '+15550001', NULL, 'body 3', 'failed', NULL, now(), now() - interval '181 days', now() - interval '180 days 1 minute'),
          (4, 'delete-in',   'sms',   '+15550001', NULL, 'body 4', 'sent', now(), NULL, now() - interval '181 days', now() - interval '179 days 23 hours 59 minutes'),
          (5, 'pending-old', 'webhook', 'https://hooks.example/x', NULL, '{}', 'pending', NULL, NULL, now() - interval '300 days', now() - interval '300 days');
        INSERT INTO notifications.attempts (notification_id, try, destination, started_at, duration_ms, outcome, excerpt)
        SELECT id, 1, 'smtp://relay:25', now() - interval '200 days', 5, 'retry', 'excerpt ' || id
          FROM notifications.notifications;
        """

    @Test("notifications.trim: bodies and excerpts go after the archive window, rows after the retention window; open rows stay")
    func notificationsTrimCutoffs() async throws {
        try await withWorld { world in
            try await world.sql.executeScript(Self.notificationsFixture)
            let tier = TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in world.database.connection("n") }
            defer { Task { await tier.close() } }
            let handler = NotificationsTrimHandler(database: tier, settings: .defaults)
            try await handler.handle(claimed("notifications.trim", "{}"), context: testContext)
            #expect(try await world.sql.lines("""
                SELECT id, status, body, archived_at IS NOT NULL FROM notifications.notifications ORDER BY id
                """) == ["1\tsent\t\tt", "2\tsent\tbody 2\tf", "4\tsent\t\tt", "5\tpending\t{}\tf"])
            #expect(try await world.sql.lines("""
                SELECT notification_id, coalesce(excerpt, 'NULL') FROM notifications.attempts ORDER BY notification_id
                """) == ["1\tNULL", "2\texcerpt 2", "4\tNULL", "5\texcerpt 5"])
            // Idempotent; and the status row of an archived notification still answers its key.
            try await handler.handle(claimed("notifications.trim", "{}"), context: testContext)
            #expect(try await world.int("SELECT count(*) FROM notifications.notifications") == 4)
            let store = NotificationStore(database: tier)
            let repeatSend = NotificationRequest(channel: .email, to: "a@example.com", subject: "Hi", body: "body 1", idempotencyKey: "archive-out")
            #expect(try await store.claim(repeatSend, token: "t1", jobID: 9, window: .seconds(30)) == .alreadySent(id: 1))
            let other = NotificationRequest(channel: .email, to: "b@example.com", subject: "Hi", body: "body 1", idempotencyKey: "archive-out")
            #expect(try await store.claim(other, token: "t2", jobID: 9, window: .seconds(30)) == .conflict)
            // An archived failed notification re-driven is claimed again and gets its body back.
            try await world.exec("UPDATE notifications.notifications SET status = 'failed', sent_at = NULL, failed_at = now() WHERE id = 4")
            let redrive = NotificationRequest(channel: .sms, to: "+15550001", body: "body 4", idempotencyKey: "delete-in")
            #expect(try await store.claim(redrive, token: "t3", jobID: 9, window: .seconds(30)) == .claimed(id: 4, try: 1))
            #expect(try await world.sql.lines("SELECT body, archived_at IS NULL FROM notifications.notifications WHERE id = 4") == ["body 4\tt"])
            await #expect { try await handler.handle(claimed("notifications.trim", #"{"archive_after": "5m"}"#), context: testContext) }
                throws: { ($0 as? JobFailure)?.code == "payload_invalid" }
        }
    }

    // MARK: analytics.trim

    @Test("analytics.trim: a rolled-up day's events go once the window has passed since it ended; never an un-rolled day")
    func analyticsTrimCutoffs() async throws {
        try await withWorld { world in
            // cut = the start (UTC) of the day 90 days ago: rows before it are outside.
            // The ledger was trimmed at 30 days, as queue.trim does by default.
            try await world.sql.executeScript("""
                CREATE TEMP TABLE t AS SELECT date_trunc('day', now() - interval '90 days', 'UTC') AS cut;
                INSERT INTO queue.ledger_trimmed (trimmed_before) VALUES (now() - interval '30 days');
                INSERT INTO analytics.events (job_id, seq, name, value, occurred_at)
                SELECT id, 1, 'signup', 1, at FROM (VALUES
                    (1, (SELECT cut FROM t) - interval '1 second'),
                    (2, (SELECT cut FROM t) + interval '1 second'),
                    (3, (SELECT cut FROM t) - interval '1 day 1 second')
                ) AS v(id, at);
                INSERT INTO analytics.daily_rollups (day, section, status)
                SELECT ((SELECT cut FROM t) AT TIME ZONE 'UTC')::date + d, s, 'ok'
                  FROM (VALUES (-1), (0)) AS days(d), (VALUES ('jobs'), ('events')) AS sections(s);
                INSERT INTO analytics.daily_jobs (day, kind, outcome, attempts)
                VALUES (((SELECT cut FROM t) AT TIME ZONE 'UTC')::date - 1, 'noop', 'completed', 42);
                """)
            let databases = TierDatabases([
                TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in world.database.connection("a") },
                TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("c") },
                TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in world.database.connection("n") },
                TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in world.database.connection("q") },
            ])
            defer { Task { await databases.close() } }
            let handler = AnalyticsTrimHandler(database: databases[.analytics], settings: .defaults)
            try await handler.handle(claimed("analytics.trim", "{}"), context: testContext)
            #expect(try await world.sql.lines("SELECT job_id FROM analytics.events ORDER BY job_id") == ["2", "3"])
            // Only the events section is marked: the jobs section's source is the
            // ledger, whose trim keeps its own mark.
            #expect(try await world.sql.lines("""
                SELECT day - (SELECT (cut AT TIME ZONE 'UTC')::date FROM t), section FROM analytics.daily_rollups
                 WHERE source_trimmed_at IS NOT NULL ORDER BY section
                """) == ["-1\tevents"])
            // Rolling the trimmed day up again keeps its stored figures: the events by
            // analytics.trim's mark, the jobs by the ledger's.
            let dayText = try #require(try await world.scalar("SELECT ((cut AT TIME ZONE 'UTC')::date - 1)::text FROM t"))
            let day = try #require(AnalyticsDay(dayText))
            let report = try await AnalyticsRollup(databases: databases, queue: databases[.queue], logger: .silent).rollUp(day)
            #expect(report.jobs.map(\.attempts) == [42])
            #expect(try await world.int("SELECT attempts FROM analytics.daily_jobs WHERE kind = 'noop'") == 42)
            #expect(try await world.sql.lines("""
                SELECT section, status FROM analytics.daily_rollups
                 WHERE day = $1::date AND section IN ('jobs', 'events') ORDER BY section
                """, [dayText]) == ["events\tok", "jobs\tok"])
        }
    }

    // MARK: As jobd_daemon

    @Test("every retention job runs as a jobd_daemon login, which still cannot DELETE from the ledger or notifications")
    func asDaemonRole() async throws {
        try await withWorld { world in
            let login = "jobd_test_retention_\(UInt32.random(in: 0...UInt32.max))"
            try await world.sql.executeScript("CREATE ROLE \(login) LOGIN IN ROLE jobd_daemon")
            let url = world.database.url + "?user=\(login)"
            func connection(_ name: String) -> PostgresConnection {
                PostgresConnection(conninfo: url, name: name, commandTimeout: 10, logger: .silent)
            }
            let databases = TierDatabases([
                TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in connection("a") },
                TierDatabase(tier: .content, size: 1, logger: .silent) { _ in connection("c") },
                TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in connection("n") },
            ])
            let queue = connection("q")
            do {
                try await world.sql.executeScript(Self.queueFixture)
                try await world.sql.executeScript(Self.notificationsFixture)
                try await world.sql.executeScript("""
                    INSERT INTO analytics.events (job_id, seq, name, value, occurred_at) VALUES (1, 1, 'e', 1, now() - interval '120 days');
                    INSERT INTO analytics.daily_rollups (day, section, status)
                    VALUES (((now() - interval '120 days') AT TIME ZONE 'UTC')::date, 'jobs', 'ok'),
                           (((now() - interval '120 days') AT TIME ZONE 'UTC')::date, 'events', 'ok');
                    """)
                let context = JobContext(logger: world.logs.logger())
                try await QueueTrimHandler(connection: queue, settings: .defaults)
                    .handle(claimed("queue.trim", "{}"), context: context)
                try await NotificationsTrimHandler(database: databases[.notifications], settings: .defaults)
                    .handle(claimed("notifications.trim", "{}"), context: context)
                try await AnalyticsTrimHandler(database: databases[.analytics], settings: .defaults)
                    .handle(claimed("analytics.trim", "{}"), context: context)
                // content.purge, which the built-in schedule fires once JOBD_CONTENT_RETENTION is set.
                let writer = ContentWriteHandler(database: TierDatabase(tier: .content, size: 1, logger: .silent) { _ in
                    world.database.connection("c-owner")
                }, compressionLevel: 6)
                try await runningServices(writer.services) {
                    try await writer.handle(claimed("content.write", ContentFixtures.json(ContentFixtures.message("old-1"))), context: context)
                }
                try await world.exec("UPDATE content.messages SET created_at = now() - interval '100 days'")
                try await ContentPurgeHandler(database: databases[.content], settings: ContentSettings(retention: RetentionWindow.days(90)))
                    .handle(claimed("content.purge", "{}"), context: context)

                #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 5)
                #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 1)
                #expect(try await world.int("SELECT count(*) FROM notifications.notifications") == 4)
                #expect(try await world.int("SELECT count(*) FROM notifications.notifications WHERE archived_at IS NOT NULL") == 2)
                // queue.trim left its mark, through its function, as the daemon.
                #expect(try await world.int("SELECT count(*) FROM queue.ledger_trimmed") == 1)
                // The rollup reads the ledger as the daemon (the columns it needs are granted).
                let rollupQueue = TierDatabase(tier: .queue, size: 1, logger: .silent) { _ in connection("rq") }
                let today = AnalyticsDay(containing: Date())
                let jobs = try await AnalyticsRollup(databases: databases, queue: rollupQueue, logger: .silent)
                    .compute("jobs", day: today)
                await rollupQueue.close()
                #expect(jobs.sections.map(\.status) == ["ok"])
                #expect(try await world.int("SELECT count(*) FROM analytics.events") == 0)
                #expect(try await world.int("SELECT count(*) FROM content.messages") == 0)
                for statement in [
                    "DELETE FROM queue.attempts", "DELETE FROM queue.dead_letters",
                    "DELETE FROM notifications.notifications", "DELETE FROM notifications.attempts",
                ] {
                    do {
                        try await queue.query(statement)
                        Issue.record("allowed, but must be denied: \(statement)")
                    } catch let error as PostgresError {
                        #expect(error.sqlState == "42501", "\(statement): \(error)")
                    }
                }
            } catch {
                await queue.close()
                await databases.close()
                _ = try? await world.sql.executeScript("DROP ROLE \(login)")
                throw error
            }
            await queue.close()
            await databases.close()
            try await world.sql.executeScript("DROP ROLE \(login)")
        }
    }

    // MARK: The per-destination rate-limit and breaker table

    @Test("the per-destination table stays within its capacity under a flood of new destinations; open breakers are kept longest")
    func deliveryGuardBounded() {
        let clock = ManualMonotonicClock()
        let guardTable = DeliveryGuard(
            rateLimit: TokenBucket.Settings(rate: 10, burst: 10),
            breaker: CircuitBreaker.Settings(failureThreshold: 1, cooldown: .seconds(3_600)), capacity: 100, clock: clock)
        for index in 0..<3 {
            let destination = "https://down-\(index).example:443"
            _ = guardTable.admit(destination, maxWait: .zero)
            _ = guardTable.record(destination, failure: true)
        }
        var largest = 0
        for index in 0..<10_000 {
            clock.advance(by: .milliseconds(1))
            _ = guardTable.admit("https://flood-\(index).example:443", maxWait: .zero)
            largest = max(largest, guardTable.count)
        }
        #expect(largest <= 100)
        #expect(guardTable.count >= 90, "eviction keeps nine tenths")
        for index in 0..<3 {
            guard case .hold(_, let reason) = guardTable.admit("https://down-\(index).example:443", maxWait: .zero) else {
                Issue.record("the open breaker of down-\(index) was forgotten")
                continue
            }
            #expect(reason == "circuit_open")
        }
    }
}
