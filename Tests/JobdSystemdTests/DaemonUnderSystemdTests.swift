import Foundation
import JobdCore
import JobdPostgres
import JobdTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `jobd run` binary under a fake service manager: a datagram socket given
/// as NOTIFY_SOCKET, plus WATCHDOG_USEC, against the test PostgreSQL and Redis.
extension HostTests {
    @Suite struct DaemonUnderSystemdTests {
        @Test("READY only when Postgres, the schema and Redis answer; STATUS; watchdog tied to progress; reload; STOPPING and exit 0")
        func lifecycle() async throws {
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            defer { Task { await database.drop() } }
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let configPath = dir + "/jobd.yaml"
            try "workers: 4\n".write(toFile: configPath, atomically: true, encoding: .utf8)
            var env = [
                "JOBD_DATABASE_URL": database.url,
                "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                "JOBD_REDIS_PREFIX": "sd-\(UInt32.random(in: 0...UInt32.max))",
                "JOBD_POLL_INTERVAL": "0.2", "JOBD_MAINTENANCE_INTERVAL": "0.25", "JOBD_COMMAND_TIMEOUT": "1",
                "JOBD_SHUTDOWN_TIMEOUT": "10", "JOBD_LOG_FORMAT": "json", "WATCHDOG_USEC": "1000000",
                "JOBD_TEST_FAULTS": "1",
            ]

            /// Runs the daemon with `changes` to the environment; it must exit non-zero with
            /// `reason` on stderr and never send READY=1.
            func expectNeverReady(_ changes: [String: String], reason: String) async throws {
                let manager = try NotifyRecorder()
                defer { manager.stop() }
                var broken = env.merging(changes) { $1 }
                broken["NOTIFY_SOCKET"] = manager.path
                let run = try DaemonProcess(binary: binary, arguments: ["run", "--config", configPath], environment: broken, dir: dir)
                let status = try await run.waitForExit(timeout: 30)
                #expect(status != 0)
                #expect(run.stderr.contains(reason), "\(run.stderr)")
                #expect(!manager.messages.contains { $0.text.contains("READY=1") })
            }

            // 1. Redis unreachable: the daemon exits with an error and never says READY.
            try await expectNeverReady(["JOBD_REDIS_URL": "redis://127.0.0.1:1"], reason: "cannot reach Redis")

            // 2. Schema behind: refused with the pending migration named, never READY.
            let empty = try await TestDatabase.create(tiers: [])
            try await expectNeverReady(["JOBD_DATABASE_URL": empty.url], reason: "schema is behind (pending: 1_queue")
            await empty.drop()

            // 3. All there: READY, STATUS, watchdog pings.
            let manager = try NotifyRecorder()
            defer { manager.stop() }
            env["NOTIFY_SOCKET"] = manager.path
            let daemon = try DaemonProcess(binary: binary, arguments: ["run", "--config", configPath], environment: env, dir: dir)
            defer { daemon.kill() }
            try await waitUntil(timeout: 30, "READY=1") { manager.messages.contains { $0.text == "READY=1" } }
            try await waitUntil(timeout: 15, "a STATUS line with both dependencies ok") {
                manager.messages.contains {
                    $0.text.hasPrefix("STATUS=running: workers 0/4 busy") && $0.text.contains("postgres ok, redis ok")
                }
            }
            try await waitUntil(timeout: 10, "regular watchdog pings") { manager.count("WATCHDOG=1") >= 4 }

            // 4. An outage is not a wedge: a lock on queue.jobs makes the promoter's and
            //    maintenance's statements time out and retry, and the pings go on (a
            //    restart would not help; STATUS and the logs say what is wrong).
            let locker = database.connection("locker", timeout: 30)
            try await locker.executeScript("BEGIN; LOCK TABLE queue.jobs IN ACCESS EXCLUSIVE MODE")
            let lockedAt = ContinuousClock.now
            try await Task.sleep(for: .seconds(5))
            try await locker.executeScript("ROLLBACK")
            await locker.close()
            let pingsWhileLocked = manager.messages.filter { $0.text == "WATCHDOG=1" && $0.at > lockedAt }
            #expect(pingsWhileLocked.count >= 6, "a retrying loop must keep the watchdog fed")

            // 5. A wedged loop (the test switch: SIGUSR2 parks the promoter without
            //    progress) stops the pings within the staleness limit (4 × 0.25 s + 2 s = 3 s),
            //    logs the stall naming the loop, and pings resume once it moves again.
            daemon.signal(SIGUSR2)
            let wedgedAt = ContinuousClock.now
            try await Task.sleep(for: .seconds(6))
            daemon.signal(SIGUSR2)
            let releasedAt = ContinuousClock.now
            let pingsWhileWedged = manager.messages.filter { $0.text == "WATCHDOG=1" && $0.at > wedgedAt && $0.at < releasedAt }
            let lastPing = pingsWhileWedged.last?.at ?? wedgedAt
            #expect(lastPing - wedgedAt < .seconds(4), "pings went on while the promoter was wedged")
            #expect(releasedAt - lastPing > .seconds(2), "no gap in watchdog pings while wedged")
            #expect(daemon.stderr.contains("loop stalled; withholding watchdog pings"))
            #expect(daemon.stderr.contains("\"stale_loops\":\"promoter\""))
            try await waitUntil(timeout: 10, "pings resume once the promoter moves") {
                manager.messages.contains { $0.text == "WATCHDOG=1" && $0.at > releasedAt }
            }

            // 6. SIGHUP: RELOADING=1 then READY=1; worker count applied live.
            try "workers: 7\n".write(toFile: configPath, atomically: true, encoding: .utf8)
            let hupAt = ContinuousClock.now
            daemon.signal(SIGHUP)
            try await waitUntil(timeout: 10, "RELOADING=1 then READY=1") {
                let after = manager.messages.filter { $0.at > hupAt }
                guard let reloading = after.firstIndex(where: { $0.text.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") })
                else { return false }
                return after[(reloading + 1)...].contains { $0.text == "READY=1" }
            }
            try await waitUntil(timeout: 10, "STATUS shows 7 workers") {
                manager.messages.contains { $0.at > hupAt && $0.text.hasPrefix("STATUS=running: workers 0/7 busy") }
            }
            #expect(daemon.stderr.contains("configuration reloaded"))

            // 7. SIGTERM with a job running: STOPPING=1, the job finishes, exit 0.
            let sql = database.connection("sql")
            try await sql.query("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{\"sleep_ms\": 1500}')")
            try await waitUntil(timeout: 10, "the job to start") {
                try await sql.query("SELECT count(*) FROM queue.jobs WHERE state = 'running'").rows.first?.first == "1"
            }
            let termAt = ContinuousClock.now
            daemon.signal(SIGTERM)
            let status = try await daemon.waitForExit(timeout: 30)
            #expect(status == 0)
            #expect(manager.messages.contains { $0.at > termAt && $0.text == "STOPPING=1" })
            #expect(manager.messages.contains { $0.at > termAt && $0.text.hasPrefix("EXTEND_TIMEOUT_USEC=") })
            let state = try await sql.query("""
                SELECT 'completed', attempt FROM queue.completed_jobs
                UNION ALL SELECT state, attempt FROM queue.jobs WHERE state <> 'completed'
                """).rows.first
            #expect(state?[0] == "completed")
            #expect(state?[1] == "1")
            await sql.close()
        }

        @Test("the STATUS line says how many lanes or kinds are paused, and stops saying it on resume")
        func statusShowsPaused() async throws {
            let binary = try DaemonProcess.binary()
            let database = try await TestDatabase.create()
            defer { Task { await database.drop() } }
            let redis = try TestEnvironment.redisURL()
            let dir = try Host.makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let manager = try NotifyRecorder()
            defer { manager.stop() }
            let env = [
                "JOBD_DATABASE_URL": database.url,
                "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
                "JOBD_REDIS_PREFIX": "sdp-\(UInt32.random(in: 0...UInt32.max))",
                "JOBD_POLL_INTERVAL": "0.2", "JOBD_MAINTENANCE_INTERVAL": "0.25", "JOBD_WORKERS": "2",
                "NOTIFY_SOCKET": manager.path,
            ]
            let daemon = try DaemonProcess(binary: binary, arguments: ["run"], environment: env, dir: dir)
            defer { daemon.kill() }
            try await waitUntil(timeout: 30, "READY=1") { manager.messages.contains { $0.text == "READY=1" } }
            try await waitUntil(timeout: 15, "a STATUS line") { manager.messages.contains { $0.text.hasPrefix("STATUS=running") } }
            #expect(!manager.messages.contains { $0.text.hasPrefix("STATUS=") && $0.text.contains("paused") })
            let sql = database.connection("sql")
            try await sql.query("INSERT INTO queue.pauses (scope, name, paused_by) VALUES ('kind', 'mail.send', 'alice'), ('priority', 'low', 'bob')")
            let pausedAt = ContinuousClock.now
            try await waitUntil(timeout: 15, "STATUS says 2 paused") {
                manager.messages.contains { $0.at > pausedAt && $0.text.hasPrefix("STATUS=running") && $0.text.contains("2 paused") }
            }
            try await sql.query("DELETE FROM queue.pauses")
            let resumedAt = ContinuousClock.now
            try await waitUntil(timeout: 15, "STATUS without paused after resume") {
                manager.messages.contains { $0.at > resumedAt + .seconds(1) && $0.text.hasPrefix("STATUS=running") && !$0.text.contains("paused") }
            }
            await sql.close()
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(timeout: 30) == 0)
        }
    }
}

/// Records every datagram sent to a NOTIFY_SOCKET, with the time it arrived.
final class NotifyRecorder: Sendable {
    struct Message: Sendable {
        var text: String
        var at: ContinuousClock.Instant
    }

    let path: String
    private let dir: String
    private let fd: Int32
    private let received = Mutex<[Message]>([])
    private let stopped = Atomic<Bool>(false)

    init() throws {
        dir = try Host.makeTempDir()
        path = dir + "/notify"
        fd = try Host.bindDatagramSocket(at: path, timeout: timeval(tv_sec: 0, tv_usec: 100_000))
        // A plain thread: recv blocks, and must not block the cooperative pool.
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.load(ordering: .relaxed) {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n > 0 else { continue }
                let message = Message(text: String(decoding: buffer[..<n], as: UTF8.self), at: .now)
                received.withLock { $0.append(message) }
            }
            close(fd)
            unlink(path)
            rmdir(dir)
        }
        thread.start()
    }

    var messages: [Message] { received.withLock { $0 } }

    func count(_ text: String) -> Int { messages.filter { $0.text == text }.count }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

/// A `jobd` child process with its stderr in a file.
final class DaemonProcess: Sendable {
    private let process: Process
    private let stderrPath: String

    /// The `jobd` built beside the test bundle, or JOBD_TEST_BINARY.
    static func binary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["JOBD_TEST_BINARY"] { return path }
        var candidates: [String] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("jobd").path)
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("jobd").path)
        candidates.append(Host.packageRoot.appendingPathComponent(".build/debug/jobd").path)
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            struct Missing: Error, CustomStringConvertible {
                var description = "the jobd binary was not found beside the tests; run `swift build` first or set JOBD_TEST_BINARY"
            }
            throw Missing()
        }
        return found
    }

    init(binary: String, arguments: [String], environment: [String: String], dir: String) throws {
        stderrPath = dir + "/stderr-\(UInt32.random(in: 0...UInt32.max)).log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBD_") && $0.key != "NOTIFY_SOCKET" }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    var pid: Int32 { process.processIdentifier }

    func signal(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    func kill() {
        if process.isRunning { signal(SIGKILL) }
    }

    func waitForExit(timeout: Double) async throws -> Int32 {
        try await waitUntil(timeout: timeout, "jobd to exit") { !process.isRunning }
        return process.terminationStatus
    }
}

extension HostTests.DaemonUnderSystemdTests {
    /// Memory must not grow with the number of jobs run. (A plain task group once kept
    /// every finished job's task: about 4.7 KiB a job, 90 MiB after 20k jobs.)
    @Test("the daemon's memory stays flat over 20,000 jobs")
    func memoryStaysFlat() async throws {
        let binary = try DaemonProcess.binary()
        let database = try await TestDatabase.create()
        let redis = try TestEnvironment.redisURL()
        let dir = try Host.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sql = database.connection("sql")
        try await sql.query("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, 2000)")
        let daemon = try DaemonProcess(binary: binary, arguments: ["run"], environment: [
            "JOBD_DATABASE_URL": database.url,
            "JOBD_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)",
            "JOBD_REDIS_PREFIX": "mem-\(UInt32.random(in: 0...UInt32.max))", "JOBD_WORKERS": "64",
        ], dir: dir)
        defer { daemon.kill() }
        func completed() async throws -> Int {
            Int(try await sql.query("SELECT count(*) FROM queue.completed_jobs").rows.first?.first.flatMap { $0 } ?? "") ?? 0
        }
        // Warm up: connections, caches and the first allocations settle in the first 2,000.
        try await waitUntil(timeout: 60, "the first 2,000 jobs") { try await completed() == 2_000 }
        let before = try #require(daemon.residentKiB())
        try await sql.query("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}' FROM generate_series(1, 20000)")
        try await waitUntil(timeout: 120, "20,000 more jobs") { try await completed() == 22_000 }
        let after = try #require(daemon.residentKiB())
        #expect(after - before < 16 * 1024, "RSS grew from \(before) KiB to \(after) KiB over 20,000 jobs")
        daemon.signal(SIGTERM)
        #expect(try await daemon.waitForExit(timeout: 30) == 0)
        await sql.close()
        await database.drop()
    }
}

extension DaemonProcess {
    /// VmRSS of the child, from /proc.
    func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}
