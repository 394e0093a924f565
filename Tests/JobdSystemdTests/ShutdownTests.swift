import Foundation
import JobdCore
import JobdPostgres
import JobdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM to the real `jobd run` binary while every worker slot is busy.
extension HostTests {
    @Suite struct ShutdownTests {
        @Test(
            "SIGTERM with every slot busy: no claim after it, exit 0 within JOBD_SHUTDOWN_TIMEOUT + 1 s, unfinished jobs available again, not rescues",
            arguments: [
                // One shared pool; and one pool per priority, which the service group tells
                // to stop one after the other.
                ["JOBD_WORKERS": "3"],
                ["JOBD_WORKERS": "high:1,normal:1,low:1"],
            ])
        func sigtermWithEverySlotBusy(workers: [String: String]) async throws {
            let slots = 3
            let shutdownTimeout = 2.0
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let sql = database.connection("sql")
            // Twice as many long jobs as slots, one per priority per slot, so every pool
            // of either layout has a job running and one waiting behind it.
            try await sql.query("""
                INSERT INTO queue.jobs (kind, payload, priority)
                SELECT 'noop', '{"sleep_ms": 120000}', p FROM unnest(ARRAY['high', 'normal', 'low', 'high', 'normal', 'low']) AS p
                """)
            var env = [
                "JOBD_DATABASE_URL": database.url,
                "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                "JOBD_REDIS_PREFIX": "term-\(UInt32.random(in: 0...UInt32.max))",
                "JOBD_POLL_INTERVAL": "0.2", "JOBD_SHUTDOWN_TIMEOUT": "\(shutdownTimeout)",
                "JOBD_LOG_FORMAT": "json",
            ]
            env.merge(workers) { $1 }
            let daemon = try DaemonProcess(binary: binary, arguments: ["run"], environment: env, dir: dir)
            defer { daemon.kill() }
            try await waitUntil(timeout: 30, "every slot busy and the other jobs waiting") {
                let row = try await sql.query("""
                    SELECT count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'available')
                      FROM queue.jobs
                    """).rows.first
                return row?[0] == "\(slots)" && row?[1] == "\(slots)"
            }
            // The fetch loops now wait for a free slot, with work waiting in Redis.
            try await Task.sleep(for: .milliseconds(500))

            let termAt = ContinuousClock.now
            daemon.signal(SIGTERM)
            let status = try await daemon.waitForExit(timeout: 60)
            let exitAfter = termAt.duration(to: .now)
            #expect(status == 0, "\(daemon.stderr)")
            #expect(exitAfter < .milliseconds(Int(shutdownTimeout * 1000)) + .seconds(1),
                    "exited \(exitAfter) after SIGTERM; JOBD_SHUTDOWN_TIMEOUT is \(shutdownTimeout) s")
            #expect(daemon.stderr.contains("drain timed out; releasing unfinished jobs"))

            // No claim after the SIGTERM: only the jobs that ran when it came ever started,
            // and each of those attempts left its one ledger row.
            let started = try await sql.query("SELECT count(*) FROM queue.jobs WHERE attempt > 0").rows.first?[0]
            #expect(started == "\(slots)")
            let ended = try await sql.query("SELECT count(*) FROM queue.attempts WHERE event = 'end'").rows.first?[0]
            #expect(ended == "\(slots)")
            let rows = try await sql.query("""
                SELECT state, attempt, rescues,
                       (SELECT string_agg(outcome, ',') FROM queue.attempts a WHERE a.job_id = j.id AND a.event = 'end')
                  FROM queue.jobs j ORDER BY id
                """).rows
            #expect(rows.count == 2 * slots)
            // The interrupted ones: available again, released (not a rescue, no lease expiry).
            let released = rows.filter { $0[1] == "1" }
            #expect(released.count == slots)
            for row in released {
                #expect(row[0] == "available", "\(row)")
                #expect(row[2] == "0", "a released job counted as rescued: \(row)")
                #expect(row[3] == "release", "\(row)")
            }
            // The ones that waited in Redis were never claimed.
            for row in rows where row[1] != "1" {
                #expect(row[1] == "0" && row[2] == "0" && row[0] == "available", "\(row)")
            }
            await sql.close()
            await database.drop()
        }
    }
}
