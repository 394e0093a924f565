import Foundation
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import Testing

/// Makes one test database unreachable and reachable again, as an outage of the
/// tier living in it would: no new sessions, existing ones killed.
struct DatabaseOutage {
    let name: String

    func begin() async throws {
        try await admin { admin in
            try await admin.executeScript("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
            try await admin.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name])
        }
    }

    func end() async throws {
        try await admin { admin in try await admin.executeScript("ALTER DATABASE \(name) ALLOW_CONNECTIONS true") }
    }

    private func admin(_ body: (PostgresConnection) async throws -> Void) async throws {
        let admin = PostgresConnection(
            conninfo: try TestEnvironment.databaseURL(), name: "outage", commandTimeout: 10, logger: .silent)
        do {
            try await body(admin)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
    }
}

/// The notifications tier in a database of its own (the queue in another), so it
/// can fail alone. `noop` stands in for the content and metrics kinds, which other
/// branches are building: any kind that does not touch the notifications database.
struct IsolatedNotifyWorld {
    let world: QueueWorld
    let sink: NotifySink
    let notifications: TestDatabase
    let notificationsSQL: PostgresConnection
    let outage: DatabaseOutage

    func enqueue(_ count: Int, path: String, keyPrefix: String) async throws {
        // Test backoff is 0.05–0.2 s, so an outage of a few seconds spends dozens of
        // attempts; production backoff (1 s doubling to an hour, 20 attempts) spans hours.
        try await world.exec("""
            INSERT INTO queue.jobs (kind, payload, max_attempts)
            SELECT 'notification.send',
                   jsonb_build_object('channel', 'webhook', 'to', $1::text, 'idempotency_key', $2::text || i,
                                      'body', jsonb_build_object('n', i)),
                   1000
              FROM generate_series(0, $3::int - 1) AS i
            """, [sink.url(path), keyPrefix, String(count)])
    }

    func completed(kind: String) async throws -> Int {
        try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE kind = $1", [kind])
    }
}

func withIsolatedNotifications(_ body: (IsolatedNotifyWorld) async throws -> Void) async throws {
    let sink = try await NotifySink.start(webhookSecret: testWebhookSecret)
    defer { sink.stop() }
    try await withWorld { world in
        let notifications = try await TestDatabase.create(tiers: [.notifications])
        let outage = DatabaseOutage(name: notifications.name)
        let sql = notifications.connection("notify-test-sql")
        var settings = NotifyWorld.settings(for: sink)
        settings.rateLimit = nil
        let tier = TierDatabase(tier: .notifications, size: 4, logger: world.logs.logger()) { index in
            PostgresConnection(conninfo: notifications.url, name: "notify-\(index)", commandTimeout: 2, logger: .silent)
        }
        let handler = NotificationSendHandler(database: tier, settings: settings, logger: world.logs.logger())
        let daemon = world.makeDaemon(world.configuration(), handlers: [NoopHandler(), handler])
        let isolated = IsolatedNotifyWorld(
            world: world, sink: sink, notifications: notifications, notificationsSQL: sql, outage: outage)
        do {
            try await world.running([daemon]) { try await body(isolated) }
        } catch {
            try? await outage.end()
            await tier.close()
            await sql.close()
            await notifications.drop()
            throw error
        }
        await tier.close()
        await sql.close()
        await notifications.drop()
    }
}

@Suite("Notification tier isolation", .serialized)
struct NotificationIsolationTests {
    @Test("""
        with the notifications database unreachable mid-run, other tiers' jobs (noop as the stand-in) keep completing, \
        notification jobs wait and retry, and afterwards every notification reaches the sink exactly once
        """)
    func failureIsolation() async throws {
        try await withIsolatedNotifications { w in
            let total = 100
            // Each webhook takes the sink 0.1 s, so deliveries are still under way when the outage starts.
            try await w.enqueue(total, path: "/iso?delay=0.1", keyPrefix: "iso-")
            try await waitUntil(timeout: 30, "the first deliveries") { try w.sink.requests().count >= 10 }

            try await w.outage.begin()
            let noops = 40
            try await w.world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, $1::int)", [String(noops)])
            try await waitUntil(timeout: 20, "the noop jobs, during the outage") { try await w.completed(kind: "noop") == noops }
            // Transfers under way when the database went are finished now; from here
            // on nothing may reach the sink until the database is back.
            try await Task.sleep(for: .milliseconds(500))
            let deliveredBefore = try w.sink.requests().count
            let notifiedBefore = try await w.completed(kind: "notification.send")
            try await Task.sleep(for: .seconds(2))
            #expect(try w.sink.requests().count == deliveredBefore, "a notification was sent while its database was down")
            #expect(try await w.completed(kind: "notification.send") == notifiedBefore)
            #expect(notifiedBefore < total, "every notification finished before the outage; the test proved nothing")
            let unavailable = w.world.logs.messages("tier unavailable")
            #expect(unavailable.count == 1)
            #expect(unavailable.first?.metadata[LogKey.tier] == "notifications")
            #expect(try await w.world.int(
                "SELECT count(*) FROM queue.jobs WHERE kind = 'notification.send' AND last_error LIKE '%unavailable%'") > 0)

            try await w.outage.end()
            try await waitUntil(timeout: 60, "every notification after the outage") {
                try await w.completed(kind: "notification.send") == total
            }
            #expect(w.world.logs.messages("tier recovered").count == 1)

            // Exactly once at the sink: every key, no key twice.
            let requests = try w.sink.requests()
            let keys = requests.compactMap { $0.headers["idempotency-key"] }
            #expect(requests.count == total)
            #expect(Set(keys) == Set((0..<total).map { "iso-\($0)" }))
            #expect(requests.allSatisfy { $0.headers["x-jobd-signature"] == $0.signatureExpected })
            // And the tables agree.
            let rows = try await w.notificationsSQL.query("""
                SELECT count(*) FILTER (WHERE status = 'sent'), count(*), sum(tries),
                       (SELECT count(*) FROM notifications.attempts WHERE outcome = 'sent'),
                       (SELECT count(*) FROM notifications.attempts)
                  FROM notifications.notifications
                """).rows.first
            #expect(rows == ["\(total)", "\(total)", "\(total)", "\(total)", "\(total)"])
            #expect(try await w.world.count(state: "dead") == 0)
            #expect(try await w.completed(kind: "noop") == noops)
        }
    }

    @Test("a send whose outcome could not be written is recorded by the job's next run, not sent again")
    func unrecordedOutcome() async throws {
        try await withIsolatedNotifications { w in
            // The sink holds its answer 1.5 s: the database goes away meanwhile.
            try await w.enqueue(1, path: "/ack-late?delay=1.5", keyPrefix: "late-")
            try await waitUntil(timeout: 20, "the request to arrive") { try w.sink.requests().count == 1 }
            try await w.outage.begin()
            try await waitUntil(timeout: 20, "the outcome to be kept for later") {
                w.world.logs.messages("notification outcome not recorded; kept for the job's next run").count == 1
            }
            try await Task.sleep(for: .milliseconds(500))
            try await w.outage.end()
            try await waitUntil(timeout: 30, "the job to complete") { try await w.completed(kind: "notification.send") == 1 }

            #expect(try w.sink.requests().count == 1)
            #expect(w.world.logs.messages("notification outcome recorded after the database returned").count == 1)
            let row = try await w.notificationsSQL.query(
                "SELECT status, tries, (SELECT count(*) FROM notifications.attempts) FROM notifications.notifications").rows
            #expect(row == [["sent", "1", "1"]])
        }
    }
}
