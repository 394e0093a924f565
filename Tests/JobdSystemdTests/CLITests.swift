import Foundation
import JobdCore
import JobdPostgres
import JobdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every operator subcommand run as the real `jobd` binary (argument parsing, the
/// configuration from the environment, output and exit status), against the test
/// PostgreSQL and Redis: migrate, enqueue, status, dead-letter list|retry|purge,
/// content get|search|stats|purge, report. (`run` and `bench` have tests of their own.)
extension HostTests {
    @Suite struct CLITests {
        @Test("migrate, enqueue, status, dead-letter, content and report as the real binary")
        func everySubcommand() async throws {
            let binary = try DaemonProcess.binary()
            // Empty: `jobd migrate` creates every tier's schema.
            let database = try await TestDatabase.create(tiers: [])
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let env = [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "JOBD_DATABASE_URL": database.url,
                "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                "JOBD_REDIS_PREFIX": "cli-\(UInt32.random(in: 0...UInt32.max))",
                "JOBD_POLL_INTERVAL": "0.2", "JOBD_LOG_FORMAT": "json",
            ]
            func jobd(_ arguments: String..., with extra: [String: String] = [:]) throws -> Host.Output {
                try Host.run(binary, arguments, environment: env.merging(extra) { $1 })
            }
            func json(_ output: Host.Output) throws -> Any {
                try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
            }
            let sql = database.connection("sql")
            defer { Task { await sql.close(); await database.drop() } }

            // migrate: applies every tier, and again changes nothing.
            let migrate = try jobd("migrate")
            #expect(migrate.status == 0, "\(migrate.stderr)")
            let applied = try await sql.query("SELECT count(*) FROM jobd.migrations").rows.first?[0].flatMap { Int($0) } ?? 0
            #expect(applied > 0)  // and current: `jobd run` below refuses a schema that is behind
            let again = try jobd("migrate")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try await sql.query("SELECT count(*) FROM jobd.migrations").rows.first?[0].flatMap { Int($0) } == applied)

            // enqueue: prints the new id; a bad payload is refused with a non-zero status.
            func enqueue(_ arguments: String...) throws -> Int64 {
                let output = try Host.run(binary, ["enqueue"] + arguments, environment: env)
                #expect(output.status == 0, "\(output.stderr)")
                return try #require(Int64(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(output.stdout)")
            }
            let fine = try enqueue("noop")
            let deadOne = try enqueue("noop", "--payload", #"{"permanent": true}"#)
            let deadTwo = try enqueue("noop", "--payload", #"{"permanent": true}"#, "--priority", "high")
            let message: [String: Any] = [
                "external_id": "cli-1", "tenant_id": "acme", "from": "Acme Store <news@acme.example>",
                "to": ["ann@example.com"], "subject": "Spring sale: 20% off garden tools",
                "text": "Spring sale! 20% off garden tools until Sunday.",
            ]
            let payload = String(decoding: try JSONSerialization.data(withJSONObject: message), as: UTF8.self)
            let mail = try enqueue("content.write", "--payload", payload)
            let refused = try jobd("enqueue", "noop", "--payload", "[1]")
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("--payload must be a JSON object"), "\(refused.stderr)")
            let row = try await sql.query("SELECT kind, priority FROM queue.jobs WHERE id = $1", ["\(deadTwo)"]).rows.first
            #expect(row?[0] == "noop" && row?[1] == "high")

            // A daemon runs them: two dead letters, a stored and indexed message.
            let daemon = try DaemonProcess(binary: binary, arguments: ["run"], environment: env, dir: dir)
            defer { daemon.kill() }
            try await waitUntil(timeout: 60, "the jobs to finish and the message to be indexed") {
                let unfinished = try await sql.query(
                    "SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead')").rows.first?[0]
                let indexed = try await sql.query(
                    "SELECT count(*) FROM content.messages WHERE search_vector IS NOT NULL").rows.first?[0]
                return unfinished == "0" && indexed == "1"
            }
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(timeout: 60) == 0, "\(daemon.stderr)")
            // Completed jobs are read from the ledger (their rows are deleted at completion).
            let states = try await sql.query("""
                SELECT id, state FROM queue.jobs WHERE state <> 'completed'
                UNION ALL SELECT id, 'completed' FROM queue.completed_jobs ORDER BY id
                """).rows
            #expect(states.map { $0[1] } == ["completed", "dead", "dead", "completed"], "\(states)")
            #expect(states.map { $0[0] } == ["\(fine)", "\(deadOne)", "\(deadTwo)", "\(mail)"])

            // status: the states and the dead letters, as text and as JSON.
            let status = try jobd("status", "--json")
            #expect(status.status == 0, "\(status.stderr)")
            let report = try #require(try json(status) as? [String: Any], "\(status.stdout)")
            #expect(report["deadLetters"] as? Int == 2, "\(status.stdout)")
            let jobs = try #require(report["jobs"] as? [String: [String: Int]], "\(status.stdout)")
            #expect(jobs["completed"]?.values.reduce(0, +) == 2 && jobs["dead"]?["high"] == 1, "\(jobs)")
            let statusText = try jobd("status")
            #expect(statusText.status == 0 && statusText.stdout.contains("dead letters: 2"), "\(statusText.stdout)")

            // dead-letter list: both, with their reason.
            let list = try jobd("dead-letter", "list")
            #expect(list.status == 0, "\(list.stderr)")
            let listed = list.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
            #expect(Set(listed.compactMap(\.first)) == ["\(deadOne)", "\(deadTwo)"], "\(list.stdout)")
            #expect(listed.allSatisfy { $0.contains("noop_permanent") }, "\(list.stdout)")
            let listJSON = try jobd("dead-letter", "list", "--json", "--kind", "noop")
            #expect((try json(listJSON) as? [Any])?.count == 2, "\(listJSON.stdout)")

            // dead-letter retry: back to available; an id that is not dead is an error.
            let retry = try jobd("dead-letter", "retry", "\(deadOne)")
            #expect(retry.status == 0 && retry.stdout.contains("re-driven: 1 (\(deadOne))"), "\(retry.stdout)\(retry.stderr)")
            #expect(try await sql.query("SELECT state, attempt FROM queue.jobs WHERE id = $1", ["\(deadOne)"]).rows.first
                    == ["available", "0"])
            let notDead = try jobd("dead-letter", "retry", "\(fine)")
            #expect(notDead.status != 0 && notDead.stderr.contains("not dead-lettered: \(fine)"), "\(notDead.stderr)")

            // dead-letter purge: the remaining dead job and its letter are gone.
            try await Task.sleep(for: .milliseconds(1100))
            let purge = try jobd("dead-letter", "purge", "--older-than", "1s")
            #expect(purge.status == 0 && purge.stdout.contains("purged: 1"), "\(purge.stdout)\(purge.stderr)")
            #expect(try await sql.query("SELECT count(*) FROM queue.jobs WHERE id = $1", ["\(deadTwo)"]).rows.first?[0] == "0")
            #expect(try await sql.query("SELECT count(*) FROM queue.dead_letters").rows.first?[0] == "0")

            // content get | search | stats.
            let get = try jobd("content", "get", "cli-1")
            #expect(get.status == 0, "\(get.stderr)")
            #expect(get.stdout.contains("Subject: Spring sale: 20% off garden tools"), "\(get.stdout)")
            #expect(get.stdout.contains("20% off garden tools until Sunday."), "\(get.stdout)")
            let missing = try jobd("content", "get", "no-such-message")
            #expect(missing.status != 0)
            let search = try jobd("content", "search", "garden")
            #expect(search.status == 0 && search.stdout.contains("\tcli-1\tacme\t"), "\(search.stdout)\(search.stderr)")
            let noHit = try jobd("content", "search", "zeppelin")
            #expect(noHit.status == 0 && noHit.stdout.contains("no matches"), "\(noHit.stdout)")
            let stats = try jobd("content", "stats", "--json")
            #expect(stats.status == 0, "\(stats.stderr)")
            #expect((try json(stats) as? [String: Any])?["messages"] as? Int == 1, "\(stats.stdout)")

            // content purge: retention (here 1 h) applied now to a message stored 2 h ago.
            try await sql.query("UPDATE content.messages SET created_at = now() - interval '2 hours'")
            let contentPurge = try jobd("content", "purge", with: ["JOBD_CONTENT_RETENTION": "1h"])
            #expect(contentPurge.status == 0 && contentPurge.stdout.contains("purged: 1"),
                    "\(contentPurge.stdout)\(contentPurge.stderr)")
            #expect(try await sql.query("SELECT count(*) FROM content.messages").rows.first?[0] == "0")

            // report: today's attempts, rolled up now.
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            let today = formatter.string(from: Date())
            let daily = try jobd("report", "--day", today, "--refresh", "--json")
            #expect(daily.status == 0, "\(daily.stderr)")
            let rolled = try #require(try json(daily) as? [String: Any], "\(daily.stdout)")
            let rows = rolled["jobs"] as? [[String: Any]] ?? []
            #expect(rows.contains { $0["kind"] as? String == "noop" && $0["outcome"] as? String == "completed" },
                    "\(daily.stdout)")
            #expect(rows.contains { $0["kind"] as? String == "noop" && $0["outcome"] as? String == "dead" }, "\(daily.stdout)")
            let text = try jobd("report", "--day", today)
            #expect(text.status == 0 && text.stdout.contains("analytics for \(today) (UTC)"), "\(text.stdout)\(text.stderr)")
            let badDay = try jobd("report", "--day", "yesterday")
            #expect(badDay.status != 0 && badDay.stderr.contains("is not a date"), "\(badDay.stderr)")
        }
    }
}
