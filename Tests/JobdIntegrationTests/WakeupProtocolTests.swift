import Foundation
import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Synchronization
import Testing

/// The wake-up protocol of Migrations/queue/0010_queue_wakeup.sql: inserts NOTIFY only
/// while a promoter is idle, and no insert is left waiting for the poll interval.
@Suite("Wake-up protocol")
struct WakeupProtocolTests {
    /// Counts NOTIFYs on jobd_jobs from a connection of the test's own.
    final class NotifyCounter: Sendable {
        let connection: PostgresConnection
        private let received = Atomic<Int>(0)
        init(_ world: QueueWorld) { connection = world.database.connection("test-listen") }
        var count: Int { received.load(ordering: .relaxed) }
        func start() async throws { try await connection.listen(NotificationListener.channel) }
        /// Collects what has arrived so far (waits up to `seconds` for the first one).
        func collect(for seconds: Double) async throws {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            repeat {
                let notes = try await connection.waitForNotifications(timeout: 0.05)
                received.add(notes.count, ordering: .relaxed)
            } while ContinuousClock.now < deadline
        }
    }

    func listenerRow(_ world: QueueWorld, _ id: String = "test-daemon") async throws -> String? {
        try await world.scalar("SELECT idle::text FROM queue.listeners WHERE daemon_id = $1", [id])
    }

    @Test("the trigger notifies only while some listener row is idle, and not for future jobs")
    func triggerFollowsTheFlag() async throws {
        try await withWorld { world in
            let counter = NotifyCounter(world)
            try await counter.start()
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            try await counter.collect(for: 0.2)
            #expect(counter.count == 0, "no listener row: no NOTIFY")
            try await world.exec("INSERT INTO queue.listeners (daemon_id, idle) VALUES ('a', false), ('b', false)")
            try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
            try await counter.collect(for: 0.2)
            #expect(counter.count == 0, "every promoter busy: no NOTIFY")
            try await world.exec("UPDATE queue.listeners SET idle = true WHERE daemon_id = 'b'")
            try await world.exec("INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', now() + interval '1 hour')")
            try await counter.collect(for: 0.2)
            #expect(counter.count == 0, "a job due later: no NOTIFY")
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 50)")
            try await counter.collect(for: 0.2)
            #expect(counter.count == 1, "one idle promoter: one NOTIFY for the statement")
            // A REPEATABLE READ inserter cannot trust its old snapshot: it notifies.
            try await world.exec("UPDATE queue.listeners SET idle = false")
            try await world.sql.executeScript("""
                BEGIN ISOLATION LEVEL REPEATABLE READ; INSERT INTO queue.jobs (kind) VALUES ('noop'); COMMIT;
                """)
            try await counter.collect(for: 0.2)
            #expect(counter.count == 2)
            await counter.connection.close()
        }
    }

    @Test("an idle daemon marks its row idle, picks a single INSERT up at once, and removes its row on shutdown")
    func idleDaemon() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.pollInterval = .seconds(30) }
            let daemon = world.makeDaemon(config)
            try await world.running([daemon]) {
                try await waitUntil(timeout: 20, "listener row idle") { try await listenerRow(world) == "true" }
                try await Task.sleep(for: .milliseconds(200))
                try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                try await world.waitForState("completed", count: 1, timeout: 20)
                try await waitUntil(timeout: 20, "listener row idle again") { try await listenerRow(world) == "true" }
            }
            // Pushed by the woken promoter, not found by a pool's direct claim.
            #expect(daemon.stats.snapshot.promoted == 1 && daemon.stats.snapshot.claimedDirect == 0)
            let latency = try await world.scalar("SELECT extract(epoch FROM started_at - created_at) FROM queue.completed_jobs")
            // A third of the 30 s poll interval: only the wake-up explains it (generous,
            // so a loaded host cannot break it).
            #expect((Double(latency ?? "") ?? 99) < 10)
            #expect(try await world.int("SELECT count(*) FROM queue.listeners") == 0, "a clean shutdown removes the row")
        }
    }

    @Test("while the promoter drains a backlog its row is busy, inserts send no NOTIFY, and every job completes")
    func busyDaemonSkipsNotify() async throws {
        try await withWorld { world in
            // Slow jobs and short lists: the promoter stays busy refilling for seconds.
            let config = world.configuration {
                $0.pollInterval = .seconds(30)
                $0.workers = .shared(2)
                $0.redisHighWater = 4
            }
            try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"sleep_ms\": 10}' FROM generate_series(1, 300)")
            // Left idle by an earlier run of this daemon: its promote statement marks it busy.
            try await world.exec("INSERT INTO queue.listeners (daemon_id, idle) VALUES ('test-daemon', true)")
            let counter = NotifyCounter(world)
            try await counter.start()
            try await world.running([world.makeDaemon(config)]) {
                try await waitUntil(timeout: 20, "listener row busy") { try await listenerRow(world) == "false" }
                try await waitUntil(timeout: 20, "first completions") { try await world.count(state: "completed") > 5 }
                for _ in 0..<40 {
                    try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                }
                try await counter.collect(for: 0.1)
                #expect(try await world.count(state: "completed") < 300, "still busy while inserting")
                #expect(counter.count == 0, "busy promoter: inserts skipped the NOTIFY")
                try await world.waitForState("completed", count: 340, timeout: 30)
            }
            await counter.connection.close()
        }
    }

    @Test("an insert that read 'busy' and commits after the daemon went idle is found long before the poll interval")
    func insertRacingTheIdleTransition() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.pollInterval = .seconds(30) }
            let inserter = world.database.connection("test-inserter")
            let daemon = world.makeDaemon(config)
            try await world.running([daemon]) {
                try await waitUntil(timeout: 20, "listener row idle") { try await listenerRow(world) == "true" }
                // As if the promoter were busy: the open transaction's insert reads "busy"
                // and sends no NOTIFY, and it keeps its shared wake-up lock until COMMIT.
                try await world.exec("UPDATE queue.listeners SET idle = false")
                try await inserter.executeScript("BEGIN; INSERT INTO queue.jobs (kind) VALUES ('noop')")
                // Wake the promoter: it passes (the row is invisible), goes idle, and its
                // try-lock fails on the open inserter, so it must not sleep for 30 s.
                try await world.exec("SELECT pg_notify('jobd_jobs', '')")
                try await waitUntil(timeout: 20, "listener row idle again") { try await listenerRow(world) == "true" }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await world.count(state: "completed") == 0)
                let committed = ContinuousClock.now
                try await inserter.executeScript("COMMIT")
                try await world.waitForState("completed", count: 1, timeout: 20)
                // A third of the 30 s poll interval (generous for a loaded host).
                #expect(committed.duration(to: .now) < .seconds(10))
            }
            #expect(daemon.stats.snapshot.promoted == 1 && daemon.stats.snapshot.claimedDirect == 0)
            await inserter.close()
        }
    }

    @Test("two idle daemons: only the elected promoter keeps a row, and an insert wakes it")
    func twoDaemons() async throws {
        try await withWorld { world in
            let config = world.configuration { $0.pollInterval = .seconds(30) }
            let a = world.makeDaemon(config, id: "daemon-a"), b = world.makeDaemon(config, id: "daemon-b")
            try await world.running([a, b]) {
                try await waitUntil(timeout: 20, "the elected promoter's row idle") {
                    try await world.int("SELECT count(*) FROM queue.listeners WHERE idle") == 1
                }
                let elected = a.promoter.isElected ? "daemon-a" : "daemon-b"
                #expect(a.promoter.isElected != b.promoter.isElected)
                // The one standing by keeps no row: inserts never notify for it.
                #expect(try await world.sql.query("SELECT daemon_id FROM queue.listeners").rows == [[elected]])
                try await world.exec("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                try await world.waitForState("completed", count: 1, timeout: 20)
            }
            let latency = try await world.scalar("SELECT extract(epoch FROM started_at - created_at) FROM queue.completed_jobs")
            // A third of the 30 s poll interval: only the wake-up explains it (generous,
            // so a loaded host cannot break it).
            #expect((Double(latency ?? "") ?? 99) < 10)
            #expect(try await world.int("SELECT count(*) FROM queue.listeners") == 0)
            #expect(a.stats.snapshot.promoted + b.stats.snapshot.promoted == 1)
            #expect(a.stats.snapshot.claimedDirect + b.stats.snapshot.claimedDirect == 0)
        }
    }

    @Test("maintenance reaps the rows of daemons that vanished, and keeps live ones")
    func reapStaleRows() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.daemons (id, hostname, pid, version, workers) VALUES ('alive', 'h', 1, 'v', 1);
                """)
            try await world.exec("""
                INSERT INTO queue.listeners (daemon_id, idle, updated_at) VALUES
                    ('crashed', true, now() - interval '1 hour'),
                    ('alive', true, now() - interval '1 hour'),
                    ('just-started', true, now())
                """)
            let daemon = world.makeDaemon(world.configuration())
            try await daemon.maintenance.runOnce()
            let left = try await world.sql.query("SELECT daemon_id FROM queue.listeners ORDER BY 1").rows.map { $0[0] ?? "" }
            #expect(left == ["alive", "just-started"])
            #expect(world.logs.all.contains { $0.message == "removed wake-up rows of vanished daemons" })
        }
    }

    @Test("a role that may only INSERT into queue.jobs still inserts, and notifies an idle daemon")
    func enqueuerRole() async throws {
        try await withWorld { world in
            let login = "jobd_test_login_\(UInt32.random(in: 0...UInt32.max))"
            try await world.sql.executeScript("CREATE ROLE \(login) LOGIN IN ROLE jobd_enqueuer")
            let sql = PostgresConnection(
                conninfo: world.database.url + "?user=\(login)", name: "as-enqueuer", commandTimeout: 10, logger: .silent)
            let counter = NotifyCounter(world)
            do {
                try await counter.start()
                try await sql.query("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                try await world.exec("INSERT INTO queue.listeners (daemon_id, idle) VALUES ('d', true)")
                try await sql.query("INSERT INTO queue.jobs (kind) VALUES ('noop')")
                _ = try await sql.query("SELECT queue.enqueue('noop')")
                try await counter.collect(for: 0.2)
                #expect(counter.count == 2)
                #expect(try await world.count(state: "available") == 3)
                await #expect(throws: PostgresError.self) { try await sql.query("SELECT * FROM queue.listeners") }
            } catch {
                Issue.record(error)
            }
            await sql.close()
            await counter.connection.close()
            try await world.sql.executeScript("DROP ROLE \(login)")
        }
    }
}
