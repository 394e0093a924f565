import Foundation
import JobdCore
import JobdPostgres
import JobdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `jobd run` as the README recommends deploying it: a login role that is a member
/// of jobd_daemon and nothing else.
extension HostTests {
    @Suite struct DaemonRoleTests {
        @Test("jobd run as a jobd_daemon member runs every built-in periodic job to completion, pruning included")
        func builtInSchedulesRunAsDaemonRole() async throws {
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let sql = database.connection("sql")
            let login = "jobd_run_\(UInt32.random(in: 0...UInt32.max))"
            try await sql.executeScript("CREATE ROLE \(login) LOGIN IN ROLE jobd_daemon")
            let names = ScheduledJob.defaults.map(\.name)
            // Each built-in schedule last ran 8 days ago: the scheduler makes up its latest
            // missed slot at once (at most a week back), so every one fires now whatever
            // its cron, and runs under the same kind, payload and key as in production.
            try await sql.query("""
                INSERT INTO queue.schedule_slots (name, slot) SELECT unnest($1::text[]), now() - interval '8 days'
                """, [PostgresArray.texts(names)])
            // One finished job past the default retention (7 days) for queue.prune, one within it.
            try await sql.query("""
                INSERT INTO queue.jobs (kind, state, finished_at) VALUES
                    ('noop', 'completed', now() - interval '30 days'), ('noop', 'completed', now() - interval '1 hour')
                """)
            let daemon = try DaemonProcess(binary: binary, arguments: ["run"], environment: [
                "JOBD_DATABASE_URL": database.url + "?user=\(login)",
                "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                "JOBD_REDIS_PREFIX": "role-\(UInt32.random(in: 0...UInt32.max))",
            ], dir: dir)
            defer { daemon.kill() }
            func finished(_ name: String) async throws -> String? {
                try await sql.query("""
                    SELECT state FROM (
                        SELECT id, state FROM queue.jobs WHERE unique_key LIKE 'cron:' || $1 || ':%'
                        UNION ALL
                        SELECT id, 'completed' FROM queue.completed_jobs WHERE unique_key LIKE 'cron:' || $1 || ':%'
                    ) j ORDER BY id DESC LIMIT 1
                    """, [name]).rows.first?.first ?? nil
            }
            do {
                try await waitUntil(timeout: 60, "every built-in schedule's job completed") {
                    var states: [String?] = []
                    for name in names { states.append(try await finished(name)) }
                    return states.allSatisfy { $0 == "completed" }
                }
            } catch {
                var states: [String: String] = [:]
                for name in names { states[name] = try await finished(name) ?? "not enqueued" }
                Issue.record("states: \(states); daemon stderr: \(daemon.stderr.suffix(3_000))")
                throw error
            }
            #expect(try await sql.query("SELECT count(*) FROM queue.jobs WHERE kind = 'noop'").rows == [["1"]])
            #expect(!daemon.stderr.contains("permission denied"), "\(daemon.stderr.suffix(3_000))")
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(timeout: 30) == 0)
            await sql.close()
            await database.drop()
            let admin = PostgresConnection(conninfo: try TestEnvironment.databaseURL(), name: "roles", commandTimeout: 10, logger: .silent)
            try await admin.executeScript("DROP ROLE IF EXISTS \(login)")
            await admin.close()
        }
    }
}
