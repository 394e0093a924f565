import Foundation
import JobdContent
import JobdCore
import JobdQueue
import JobdTestSupport
@testable import JobdWeb
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The console in a real browser: Debian's headless `chromium`, driven over WebDriver by
/// `chromedriver` (on a free loopback port, started here), against a console and a live
/// daemon with data. Outside CI the test is skipped when chromium or chromedriver is
/// missing; under CI (`CI` set) it runs and fails without them (scripts/setup-deps
/// installs both).
///
/// Screenshots go to `JOBD_CONSOLE_SCREENSHOTS` when set (docs/console is where the
/// README's come from: `JOBD_CONSOLE_SCREENSHOTS=$PWD/docs/console scripts/test --filter Browser`),
/// else to a temporary directory (still taken and checked to be PNG images).
@Suite("Browser console")
struct BrowserConsoleTests {
    @Test(
        "each page in headless chromium shows the queue's state; a dead letter retried with a click completes",
        .enabled(
            if: BrowserTools.find() != nil || ProcessInfo.processInfo.environment["CI"] != nil,
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver); under CI this test runs and fails without them"))
    func pagesAndRetryInBrowser() async throws {
        guard let tools = BrowserTools.find() else {
            Issue.record("CI is set but chromium or chromedriver is missing: scripts/setup-deps installs chromium and chromium-driver")
            return
        }
        let shots = Screenshots()
        try await withWorld { world in
            let export = DownstreamExportHandler()
            let daemon = world.makeDaemon(world.configuration(), id: "browser-daemon", handlers: [export])
            try await world.running([daemon]) {
                // Data: finished work, jobs waiting for later in every lane, and a dead
                // letter (its downstream refuses the export while it is down).
                try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 6)")
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, priority, run_at, payload)
                    VALUES ('report.daily', 'high', now() + interval '1 hour', '{"tenant": "t1"}'),
                           ('report.daily', 'normal', now() + interval '1 hour', '{"tenant": "t2"}'),
                           ('report.daily', 'normal', now() + interval '2 hours', '{"tenant": "t3"}'),
                           ('report.daily', 'low', now() + interval '1 hour', '{"tenant": "t4"}')
                    """)
                let deadID = try await world.int("""
                    INSERT INTO queue.jobs (kind, payload, max_attempts)
                    VALUES ('export.orders', '{"tenant": "acme", "export_id": 42, "api_key": "s3cr3t-key"}', 1) RETURNING id
                    """)
                try await waitUntil(timeout: 20, "the noop jobs completed") {
                    try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE kind = 'noop'") == 6
                }
                try await waitUntil(timeout: 20, "the export dead-lettered") {
                    try await world.int("SELECT count(*) FROM queue.dead_letters WHERE job_id = $1", [String(deadID)]) == 1
                }

                var settings = WebSettings(host: "127.0.0.1", port: 0)
                settings.refreshInterval = .milliseconds(200)
                try await withConsole(world, settings) { console in
                    try await tools.withSession { browser in
                        let base = "http://127.0.0.1:\(console.port)"

                        // Overview: counts per lane, the daemon, the dead letter.
                        try await browser.open(base + "/")
                        #expect(try await browser.title() == "jobd · Overview")
                        #expect(try await browser.text("#c-available-high") == "1")
                        #expect(try await browser.text("#c-available-normal") == "2")
                        #expect(try await browser.text("#c-available-total") == "4")
                        #expect(try await browser.text("#dead-letters") == "1")
                        #expect(try await browser.text("#daemons").contains("browser-daemon"))
                        #expect(try await browser.text("#pauses").contains("nothing is paused"))
                        #expect(try await browser.text("#paused-line") == "paused: nothing")
                        #expect(try await browser.text("#pg-health").hasPrefix("reachable · "))
                        #expect(try await browser.text("#redis-health").hasPrefix("reachable · "))
                        #expect(try await browser.count("svg.chart rect.ok") >= 1)
                        // The live refresh (console.js, allowed by the CSP) shows new jobs
                        // without a reload.
                        try await world.exec("""
                            INSERT INTO queue.jobs (kind, priority, run_at)
                            SELECT 'report.daily', 'high', now() + interval '1 hour' FROM generate_series(1, 2)
                            """)
                        try await waitUntil(timeout: 15, "the overview refreshed by its script") {
                            try await browser.text("#c-available-high") == "3"
                        }
                        try await shots.take(browser, "overview")

                        // Jobs: every job listed, and a kind filter.
                        try await browser.open(base + "/jobs")
                        let listed = try await world.int(
                            "SELECT least((SELECT count(*) FROM queue.jobs) + (SELECT count(*) FROM queue.attempts WHERE enqueued_at IS NOT NULL), 50)")
                        #expect(listed >= 13)
                        #expect(try await browser.count("main table tbody tr") == listed)
                        #expect(try await browser.text("main").contains("export.orders"))
                        try await shots.take(browser, "jobs")
                        try await browser.open(base + "/jobs?kind=report.daily&priority=normal")
                        #expect(try await browser.count("main table tbody tr") == 2)

                        // The dead job: its payload with the secret hidden, its attempt, its error.
                        try await browser.open(base + "/jobs/\(deadID)")
                        #expect(try await browser.text("h1") == "Job \(deadID)")
                        let payload = try await browser.text("pre.payload")
                        #expect(payload.contains("acme") && payload.contains("42"))
                        #expect(!payload.contains("s3cr3t-key"))
                        #expect(try await browser.text("main").contains("downstream unavailable"))
                        try await shots.take(browser, "job")

                        // Dead letters: the row, then Retry clicked as a user would (the
                        // form's POST with its CSRF field); the page comes back with a notice.
                        try await browser.open(base + "/dead-letters")
                        let row = try await browser.text("tbody")
                        #expect(row.contains("export.orders") && row.contains("downstream unavailable"))
                        try await shots.take(browser, "dead-letters")
                        export.recover()
                        try await browser.click("form[action=\"/dead-letters/\(deadID)/retry\"] button")
                        try await waitUntil(timeout: 10, "the page after the retry") {
                            try await browser.count("p.notice") == 1
                        }
                        #expect(try await browser.currentURL().hasPrefix(base + "/dead-letters"))
                        #expect(try await browser.text("tbody").contains("no dead letters"))
                        try await waitUntil(timeout: 20, "the retried export completed") {
                            try await world.scalar("SELECT 'completed' FROM queue.completed_jobs WHERE id = $1", [String(deadID)]) == "completed"
                        }
                        #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
                        try await browser.open(base + "/jobs/\(deadID)")
                        #expect(try await browser.text("table.detail").contains("completed"))
                        #expect(export.attempts.load(ordering: .relaxed) == 2)
                    }
                }
            }
        }
        #expect(shots.taken.withLock { $0 } == ["overview", "jobs", "job", "dead-letters"])
        shots.removeIfTemporary()
    }

    @Test(
        "the tier pages in headless chromium: periodic jobs, notifications, campaigns, content search and a message, a bulk action's progress",
        .enabled(
            if: BrowserTools.find() != nil || ProcessInfo.processInfo.environment["CI"] != nil,
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver); under CI this test runs and fails without them"))
    func tierPagesInBrowser() async throws {
        guard let tools = BrowserTools.find() else {
            Issue.record("CI is set but chromium or chromedriver is missing: scripts/setup-deps installs chromium and chromium-driver")
            return
        }
        let shots = Screenshots()
        try await withWorld { world in
            let data = try await WebConsoleTests.tierData(world)
            try await WebConsoleTests.storeMessage(world, "receipt-1042", ["subject": "Your receipt for order 1042"])
            _ = try await ContentStore(connection: world.sql).indexPending(limit: 100)
            // The campaign sending to twelve contacts, half done.
            let workspace = try await world.scalar("SELECT workspace_id FROM oltp.campaigns WHERE id = $1", [String(data.campaign)])!
            try await world.exec("INSERT INTO oltp.contacts (workspace_id, address) SELECT $1, 'c' || g || '@acme.test' FROM generate_series(1, 12) g", [workspace])
            try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(data.campaign)])
            try await world.exec("UPDATE oltp.campaigns SET status = 'sending', started_at = now() - interval '1 minute', fanout_done = true WHERE id = $1", [String(data.campaign)])
            try await world.exec("""
                INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state, sent_at)
                SELECT $1, c.id, c.workspace_id, CASE WHEN c.id % 2 = 0 THEN 'sent' WHEN c.id % 5 = 0 THEN 'bounced' ELSE 'pending' END,
                       CASE WHEN c.id % 2 = 0 THEN now() - c.id * interval '2 seconds' END
                  FROM oltp.contacts c
                """, [String(data.campaign)])
            // A bulk action a third of the way through (no daemon runs its job here).
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'report.daily', 'low' FROM generate_series(1, 9)")
            let upper = try await world.int("SELECT max(id) + 1 FROM queue.jobs")
            let bulk = try await world.int("SELECT id FROM queue.bulk_action_start('jobs', 'cancel', '{\"kind\": \"report.daily\"}', 'alice', $1::bigint, 3)", [String(upper)])
            _ = try await world.int("SELECT processed FROM queue.bulk_action_step($1::bigint)", [String(bulk)])

            var settings = WebSettings(host: "127.0.0.1", port: 0)
            settings.schedules = [
                ScheduledJob(name: "nightly-report", cron: try CronSchedule("0 3 * * *"), kind: "report.daily"),
                ScheduledJob(name: "queue-metrics", cron: try CronSchedule("*/5 * * * *"), kind: "metrics.push"),
            ]
            try await world.exec("INSERT INTO queue.schedule_slots (name, slot) VALUES ('nightly-report', date_trunc('day', now()) + interval '3 hours')")
            try await withConsole(world, settings) { console in
                try await tools.withSession { browser in
                    let base = "http://127.0.0.1:\(console.port)"
                    try await browser.open(base + "/periodic")
                    #expect(try await browser.text("main").contains("nightly-report"))
                    try await shots.take(browser, "periodic")

                    try await browser.open(base + "/notifications")
                    #expect(try await browser.count("main table tbody tr") == 25)
                    try await shots.take(browser, "notifications")

                    try await browser.open(base + "/campaigns")
                    #expect(try await browser.count("main table tbody tr progress") == 1)
                    #expect(try await browser.text("main").contains("spring <sale>"))
                    try await shots.take(browser, "campaigns")

                    try await browser.open(base + "/content?q=receipt")
                    #expect(try await browser.text("main table tbody").contains("receipt-1042"))
                    try await shots.take(browser, "content-search")
                    try await browser.click("a[href=\"/content/receipt-1042\"]")
                    try await waitUntil(timeout: 10, "the message page") { try await browser.text("h1") == "Message receipt-1042" }
                    #expect(try await browser.text("main").contains("Your receipt for order 1042"))
                    try await shots.take(browser, "content-message")

                    try await browser.open(base + "/bulk/\(bulk)")
                    #expect(try await browser.execute("return document.getElementById('bulk-progress').value;") as? Int == 3)
                    try await shots.take(browser, "bulk-progress")
                }
            }
        }
        #expect(shots.taken.withLock { $0 } == ["periodic", "notifications", "campaigns", "content-search", "content-message", "bulk-progress"])
        shots.removeIfTemporary()
    }
}

/// A job whose downstream is down until the test says it is back: fails permanently
/// (dead-lettered at once) before `recover()`, succeeds after.
final class DownstreamExportHandler: JobHandler {
    let kind = "export.orders"
    var isInternal: Bool { false }
    private let down = Atomic<Bool>(true)
    let attempts = Atomic<Int>(0)

    func recover() { down.store(false, ordering: .relaxed) }

    func handle(_ job: ClaimedJob, context: JobContext) async throws {
        attempts.add(1, ordering: .relaxed)
        if down.load(ordering: .relaxed) {
            throw JobFailure.permanent("downstream unavailable (HTTP 503)", code: "downstream_unavailable")
        }
    }
}

/// Where screenshots go, and which were taken.
final class Screenshots: Sendable {
    let directory: URL
    let taken = Mutex<[String]>([])

    init() {
        if let configured = ProcessInfo.processInfo.environment["JOBD_CONSOLE_SCREENSHOTS"], !configured.isEmpty {
            directory = URL(fileURLWithPath: configured)
        } else {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("jobd-console-shots-\(getpid())")
        }
    }

    private var isTemporary: Bool { ProcessInfo.processInfo.environment["JOBD_CONSOLE_SCREENSHOTS"].map(\.isEmpty) ?? true }

    func removeIfTemporary() {
        if isTemporary { try? FileManager.default.removeItem(at: directory) }
    }

    /// The whole page (the window grown to the document's height), as PNG.
    func take(_ browser: WebDriverSession, _ name: String) async throws {
        let height = try await browser.execute("return Math.ceil(document.documentElement.scrollHeight);") as? Int ?? 900
        // The window's outer height: the browser's own frame takes some of it.
        try await browser.setWindowSize(width: 1280, height: min(max(height + 160, 600), 4000))
        let png = try await browser.screenshot()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(name): not a PNG")
        #expect(png.count > 10_000, "\(name): \(png.count) bytes")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try png.write(to: directory.appendingPathComponent("\(name).png"))
        taken.withLock { $0.append(name) }
        try await browser.setWindowSize(width: 1280, height: 900)
    }
}

/// chromium and chromedriver, found on PATH (Debian: /usr/bin/chromium, /usr/bin/chromedriver).
struct BrowserTools: Sendable {
    let chromium: String
    let chromedriver: String

    static func find() -> BrowserTools? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        func which(_ name: String) -> String? {
            for directory in path.split(separator: ":") + ["/usr/bin"] {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
            return nil
        }
        guard let chromium = which("chromium"), let chromedriver = which("chromedriver") else { return nil }
        return BrowserTools(chromium: chromium, chromedriver: chromedriver)
    }

    /// Starts chromedriver on a free loopback port, opens a headless session, runs
    /// `body`, and always ends the session (which quits the browser) and chromedriver.
    func withSession(_ body: (WebDriverSession) async throws -> Void) async throws {
        let port = try Self.freePort()
        let pid = try Self.spawn(chromedriver, ["--port=\(port)", "--allowed-ips=127.0.0.1"])
        defer { Self.stop(pid) }
        let client = LoopbackHTTPClient(timeoutSeconds: 90)
        try await waitUntil(timeout: 20, "chromedriver ready on port \(port)") {
            guard let reply = try? await client.send(port: port, method: "GET", path: "/status", headers: [:], body: []) else { return false }
            return reply.status == 200
        }
        let created = try await WebDriverSession.call(client, port: port, "POST", "/session", [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": chromium,
                        // No sandbox: CI runs as root, where chromium's sandbox refuses to start.
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--window-size=1280,900", "--hide-scrollbars", "--lang=en-US"],
                    ],
                ],
            ],
        ])
        guard let sessionID = (created as? [String: Any])?["sessionId"] as? String else {
            throw WebDriverSession.Failure(reason: "no session: \(String(describing: created))")
        }
        let session = WebDriverSession(client: client, port: port, id: sessionID)
        do {
            try await body(session)
        } catch {
            _ = try? await session.command("DELETE", "")
            throw error
        }
        _ = try await session.command("DELETE", "")
    }

    /// Starts `path` with its output discarded and the default signal mask and
    /// handlers (a child inherits the spawning thread's mask, and the test runtime's
    /// threads block SIGTERM: chromedriver would then ignore `stop`).
    static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard result == 0 else { throw WebDriverSession.Failure(reason: "posix_spawn \(path): \(result)") }
        return pid
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL; always reaped.
    static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebDriverSession.Failure(reason: "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw WebDriverSession.Failure(reason: "bind errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A W3C WebDriver session: JSON over HTTP to chromedriver on loopback.
struct WebDriverSession: Sendable {
    let client: LoopbackHTTPClient
    let port: Int
    let id: String

    struct Failure: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    /// One command; returns its `value`. A WebDriver error (status ≥ 400) throws with its message.
    static func call(_ client: LoopbackHTTPClient, port: Int, _ method: String, _ path: String, _ body: Any? = nil) async throws -> Any? {
        var bytes: [UInt8] = []
        var headers: [String: String] = [:]
        if let body {
            bytes = Array(try JSONSerialization.data(withJSONObject: body))
            headers["Content-Type"] = "application/json; charset=utf-8"
        }
        let reply = try await client.send(port: port, method: method, path: path, headers: headers, body: bytes)
        let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8), options: [.fragmentsAllowed])
        let value = (object as? [String: Any])?["value"]
        guard reply.status < 400 else {
            let detail = (value as? [String: Any]).map { "\($0["error"] ?? ""): \($0["message"] ?? "")" } ?? reply.body
            throw Failure(reason: "WebDriver \(method) \(path): \(reply.status) \(detail.prefix(500))")
        }
        return value
    }

    func command(_ method: String, _ path: String, _ body: Any? = nil) async throws -> Any? {
        try await Self.call(client, port: port, method, "/session/\(id)\(path)", body ?? (method == "POST" ? [String: Any]() : nil))
    }

    func open(_ url: String) async throws { _ = try await command("POST", "/url", ["url": url]) }

    func title() async throws -> String { try await command("GET", "/title") as? String ?? "" }

    func currentURL() async throws -> String { try await command("GET", "/url") as? String ?? "" }

    func elements(_ css: String) async throws -> [String] {
        let found = try await command("POST", "/elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return found.compactMap { $0[Self.elementKey] as? String }
    }

    func count(_ css: String) async throws -> Int { try await elements(css).count }

    /// The rendered text of the first element matching `css` (throws when none does).
    func text(_ css: String) async throws -> String {
        guard let element = try await elements(css).first else { throw Failure(reason: "no element \(css)") }
        return try await command("GET", "/element/\(element)/text") as? String ?? ""
    }

    func click(_ css: String) async throws {
        guard let element = try await elements(css).first else { throw Failure(reason: "no element \(css)") }
        _ = try await command("POST", "/element/\(element)/click")
    }

    func execute(_ script: String) async throws -> Any? {
        try await command("POST", "/execute/sync", ["script": script, "args": [Any]()])
    }

    func setWindowSize(width: Int, height: Int) async throws {
        _ = try await command("POST", "/window/rect", ["width": width, "height": height])
    }

    func screenshot() async throws -> Data {
        guard let text = try await command("GET", "/screenshot") as? String, let data = Data(base64Encoded: text) else {
            throw Failure(reason: "screenshot: no base64 PNG")
        }
        return data
    }
}
