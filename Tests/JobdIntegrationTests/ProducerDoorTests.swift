import Foundation
import JobdAnalytics
import JobdContent
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdTestSupport
import PropertyBased
import Synchronization
import Testing

/// What a producer (a login role in `jobd_enqueuer`) can put into queue.jobs, against
/// a running daemon: every value is refused at the INSERT with a named error, or the
/// job ends `dead` with a reason code, or it is valid and runs.
@Suite("Producer door", .serialized)
struct ProducerDoorTests {
    @Test("run_at outside 1970…9999 is refused; rows already holding infinity or year 1 neither stop promotion nor crash the daemon")
    func runAtBounds() async throws {
        try await withWorld { world in
            for literal in ["infinity", "-infinity", "0001-01-01", "1969-12-31 23:59:59+00", "10000-01-01"] {
                let error = try await refusal(world.sql, "INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', $1::timestamptz)", [literal])
                #expect(error?.sqlState == "23514" && error?.constraint == "jobs_run_at_range_check", "\(literal): \(String(describing: error))")
            }
            for literal in ["1970-01-01 00:00:00+00", "9999-12-31 23:59:59+00"] {
                try await world.exec("INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', $1::timestamptz)", [literal])
            }
            // Rows stored before the CHECK existed (or by an owner who dropped it): the
            // daemon's statements must still promote everything beside them.
            try await world.exec("ALTER TABLE queue.jobs DROP CONSTRAINT jobs_run_at_range_check")
            try await world.exec("""
                INSERT INTO queue.jobs (kind, run_at) VALUES
                    ('noop', '-infinity'), ('noop', '0001-01-01'), ('noop', '4713-01-01 BC'), ('noop', 'infinity')
                """)
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 20)")
            try await world.running([world.makeDaemon(world.configuration())]) {
                // 20 plain jobs, the 1970 one and the three in the past; 9999 and infinity wait.
                try await world.waitForState("completed", count: 24, timeout: 30)
            }
            #expect(try await world.count(state: "available") == 2)
        }
    }

    @Test("internal kinds and cron: keys are refused to producers by INSERT and queue.enqueue; a handler's internal kind is registered")
    func internalKindsAndReservedKeys() async throws {
        try await withLogin("jobd_enqueuer") { world, producer, _ in
            for kind in ["queue.prune", "content.purge", "analytics.rollup"] {
                let direct = try await refusal(producer, "INSERT INTO queue.jobs (kind) VALUES ($1)", [kind])
                #expect(direct?.sqlState == "42501" && direct?.constraint == "jobs_internal_kind", "\(kind): \(String(describing: direct))")
                #expect(direct?.message.contains("internal") == true)
                let viaFunction = try await refusal(producer, "SELECT queue.enqueue($1)", [kind])
                #expect(viaFunction?.sqlState == "42501" && viaFunction?.constraint == "jobs_internal_kind")
            }
            // The next queue-prune slot's key, squatted in advance by a producer's own job.
            let slotKey = "cron:queue-prune:2030-01-01T00:30:00Z"
            for statement in ["INSERT INTO queue.jobs (kind, unique_key) VALUES ('noop', $1)",
                              "SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, $1)"] {
                let error = try await refusal(producer, statement, [slotKey])
                #expect(error?.sqlState == "42501" && error?.constraint == "jobs_reserved_unique_key", "\(statement): \(String(describing: error))")
            }
            #expect(try await world.int("SELECT count(*) FROM queue.jobs") == 0)
            // Ordinary kinds and keys still go in.
            try await producer.query("INSERT INTO queue.jobs (kind, unique_key) VALUES ('noop', 'order-17')")
            _ = try await producer.query("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'crontab-17')")
            // The owner (operators, migrations) may enqueue internal work by hand.
            try await world.exec("INSERT INTO queue.jobs (kind, unique_key) VALUES ('queue.prune', 'cron:manual:1')")

            // A kind a handler declares internal is listed by the daemon at start-up.
            #expect(try await world.int("SELECT count(*) FROM queue.internal_kinds WHERE kind = 'door.internal'") == 0)
            try await world.running([world.makeDaemon(world.configuration(), handlers: [NoopHandler(), InternalProbe()])]) {
                try await waitUntil(timeout: 10, "door.internal declared") {
                    try await world.int("SELECT count(*) FROM queue.internal_kinds WHERE kind = 'door.internal'") == 1
                }
            }
            let declared = try await refusal(producer, "INSERT INTO queue.jobs (kind) VALUES ('door.internal')")
            #expect(declared?.constraint == "jobs_internal_kind")
        }
    }

    /// The property: random hostile values in every column jobd_enqueuer may write and
    /// in the payload fields of every built-in kind, inserted by a producer login
    /// while a daemon runs. Each case is one batch; after it the daemon is alive, a
    /// canary completes, and each job met the outcome its value calls for.
    @Test("hostile values in every producer column and built-in payload: refused by name, dead with a reason, or run")
    func hostileProducerValues() async throws {
        try await withLogin("jobd_enqueuer") { world, producer, _ in
            let analytics = TierDatabase(tier: .analytics, size: 1, logger: .silent) { _ in world.database.connection("analytics") }
            let content = TierDatabase(tier: .content, size: 1, logger: .silent) { _ in world.database.connection("content") }
            let notifications = TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in
                world.database.connection("notifications")
            }
            let handlers: [any JobHandler] = [
                NoopHandler(), MetricsEmitHandler(analytics: analytics), ContentWriteHandler(database: content),
                NotificationSendHandler(database: notifications, settings: NotificationSettings(), userAgent: "test", logger: .silent),
            ]
            let daemon = world.makeDaemon(world.configuration(), handlers: handlers)
            let cases = Mutex(0)
            let findings = Mutex<[String]>([])
            try await world.running([daemon]) {
                await propertyCheck(
                    count: 12,
                    input: Gen<Double?>.element(of: hostileSeconds).map { $0 ?? 0 }, Gen.double(in: -1e13...1e13),
                    Gen<String?>.element(of: hostileNumbers).map { $0 ?? "0" },
                    // Long and odd Unicode: controls, combining marks, bidi overrides, astral
                    // planes, up to 300 characters (never U+0000: libpq passes C strings;
                    // never a surrogate: not a scalar).
                    Gen.oneOf(
                        Gen.character(in: "\u{1}"..."\u{D7FF}"), Gen.character(in: "\u{E000}"..."\u{10FFFF}"),
                        Gen.character(in: "\u{300}"..."\u{36F}"), Gen.character(in: "\u{202A}"..."\u{202E}")
                    ).string(of: 0...300),
                    // Depth, and the width of metrics.emit's object: at most 2,000 keys, so that even
                    // with 1e400 (which jsonb stores as 401 digits) the payload stays under the
                    // door's 1 MiB and the case tests the handler, not the size trigger.
                    Gen.int(in: 1...90), Gen.int(in: 1...2_000)
                ) { special, seconds, number, text, depth, width in
                    let batch = cases.withLock { $0 += 1; return $0 }
                    let jobs = hostileBatch(batch, special: special, seconds: seconds, number: number, text: text,
                                            depth: depth, width: width)
                    do {
                        let problems = try await runBatch(jobs, batch: batch, world: world, producer: producer)
                        for problem in problems { Issue.record("\(problem)") }
                        findings.withLock { $0 += problems }
                    } catch {
                        Issue.record("batch \(batch) failed: \(error)")
                    }
                }
            }
            #expect(cases.withLock { $0 } == 12)
            #expect(findings.withLock { $0 }.isEmpty)
        }
    }
}

// MARK: - The model

/// What a hostile value must come to.
enum DoorOutcome: Equatable, CustomStringConvertible {
    /// Refused at the INSERT with this SQLSTATE (and constraint, when a CHECK or the
    /// producer trigger refused it).
    case refused(sqlState: String, constraint: String?)
    case dead(reason: String)
    case completed
    /// Valid, due in the future: waits, untouched.
    case waiting

    var description: String {
        switch self {
        case .refused(let state, let constraint): "refused \(state) \(constraint ?? "")"
        case .dead(let reason): "dead \(reason)"
        case .completed: "completed"
        case .waiting: "waiting"
        }
    }
}

struct HostileJob: Sendable {
    var label: String
    var sql: String
    var params: [String?]
    var expect: DoorOutcome
}

/// Seconds since 1970 that break conversions: non-finite, ±0, beyond Int64 as
/// nanoseconds or microseconds, beyond PostgreSQL's timestamps, the CHECK's bounds.
let hostileSeconds: [Double] = [
    .nan, .infinity, -.infinity, 0, -0.0, -1, 1e16, -1e16, 1e308, -1e308, 9.3e12, -2.2e11,
    253_402_300_799, 253_402_300_800, 9_223_372_036.854775807, 1.7e9,
]

/// JSON numbers (as text) that break conversions: overflowing Double, Int64 and Int32,
/// negative zero, fractions, and a few valid ones.
let hostileNumbers: [String] = [
    "1e308", "-0", "9223372036854775808", "-9223372036854775809", "1e16", "1e400", "-1", "0.5", "3", "2147483648", "0",
]


func hostileBatch(
    _ batch: Int, special: Double, seconds: Double, number: String, text: String, depth: Int, width: Int
) -> [HostileJob] {
    var jobs: [HostileJob] = []
    // run_at, from seconds since 1970 (to_timestamp), the extreme and the random.
    for value in [special, seconds] {
        jobs.append(HostileJob(
            label: "run_at \(value)", sql: "INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', to_timestamp($1::float8))",
            params: [pgFloat(value)], expect: runAtOutcome(value)))
    }
    // max_attempts as any number's text.
    jobs.append(HostileJob(
        label: "max_attempts \(number)", sql: "INSERT INTO queue.jobs (kind, max_attempts) VALUES ('noop', $1::int)",
        params: [number], expect: maxAttemptsOutcome(number)))
    // priority, kind and unique_key as odd text.
    jobs.append(HostileJob(
        label: "priority", sql: "INSERT INTO queue.jobs (kind, priority) VALUES ('noop', $1)", params: [text],
        expect: ["high", "normal", "low"].contains(text) ? .completed : .refused(sqlState: "23514", constraint: "jobs_priority_check")))
    let kindLength = text.unicodeScalars.count
    jobs.append(HostileJob(
        label: "kind", sql: "INSERT INTO queue.jobs (kind) VALUES ($1)", params: [text],
        expect: kindLength == 0 || kindLength > 128 ? .refused(sqlState: "23514", constraint: "jobs_kind_check")
            : text == "noop" ? .completed : .dead(reason: "unknown_kind")))
    let key = text + "#\(batch)"
    jobs.append(HostileJob(
        label: "unique_key", sql: "INSERT INTO queue.jobs (kind, unique_key) VALUES ('noop', $1)", params: [key],
        expect: key.unicodeScalars.count > 512 ? .refused(sqlState: "23514", constraint: "jobs_unique_key_check") : .completed))
    jobs.append(HostileJob(
        label: "cron: unique_key", sql: "INSERT INTO queue.jobs (kind, unique_key) VALUES ('noop', $1)",
        params: ["cron:" + key], expect: .refused(sqlState: "42501", constraint: "jobs_reserved_unique_key")))
    let internalKind = ["queue.prune", "content.purge", "analytics.rollup"][batch % 3]
    jobs.append(HostileJob(
        label: "internal kind", sql: "SELECT queue.enqueue($1, $2::jsonb)", params: [internalKind, #"{"older_than": "1m"}"#],
        expect: .refused(sqlState: "42501", constraint: "jobs_internal_kind")))
    // noop's numbers.
    let whole = wholeNumber(number)
    jobs.append(HostileJob(
        label: "noop sleep_ms \(number)", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)",
        params: [#"{"sleep_ms": \#(number)}"#],
        expect: whole.map { (0...3_600_000).contains($0) } == true ? .completed : .dead(reason: "payload_invalid")))
    jobs.append(HostileJob(
        label: "noop fail_attempts \(number)", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)",
        params: [#"{"fail_attempts": \#(number)}"#],
        expect: whole.map { (0...1_000).contains($0) } != true ? .dead(reason: "payload_invalid")
            : whole! < 20 ? .completed : .dead(reason: "noop_fail")))
    // Deep and wide JSON.
    let deep = #"{"x": "# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
    jobs.append(HostileJob(
        label: "noop depth \(depth + 1)", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('noop', $1::jsonb)",
        params: [deep], expect: .dead(reason: depth + 1 > PayloadGuard.maxDepth ? "payload_too_deep" : "payload_invalid")))
    let wide = "{" + (0..<width).map { #""k\#($0)": \#(number)"# }.joined(separator: ", ") + "}"
    jobs.append(HostileJob(
        label: "metrics.emit width \(width)", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('metrics.emit', $1::jsonb)",
        params: [wide], expect: .dead(reason: "payload_invalid")))
    // metrics.emit: a name of odd text, a hostile value and time.
    let value = Double(number)
    let nameOK = (1...200).contains(text.unicodeScalars.count)
    let valueOK = value.map { $0.isFinite && abs($0) <= 1e18 } == true
    let timeOK = value.map { (0...253_402_300_799).contains($0) } == true
    jobs.append(HostileJob(
        label: "metrics.emit value/time \(number)", sql: """
            INSERT INTO queue.jobs (kind, payload)
            VALUES ('metrics.emit', jsonb_build_object('name', $1::text, 'value', $2::jsonb, 'time', $2::jsonb))
            """,
        params: [text, number], expect: nameOK && valueOK && timeOK ? .completed : .dead(reason: "payload_invalid")))
    // content.write and notification.send: hostile types where their fields want text.
    jobs.append(HostileJob(
        label: "content.write", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('content.write', jsonb_build_object('tenant_id', $1::jsonb, 'subject', $2::text))",
        params: [number, text], expect: .dead(reason: "payload_invalid")))
    jobs.append(HostileJob(
        label: "notification.send", sql: "INSERT INTO queue.jobs (kind, payload) VALUES ('notification.send', jsonb_build_object('channel', 'webhook', 'to', $1::jsonb, 'body', $2::jsonb))",
        params: [number, deep], expect: .dead(reason: depth + 2 > PayloadGuard.maxDepth ? "payload_too_deep" : "payload_invalid")))
    return jobs
}

/// PostgreSQL's spelling of a float8.
func pgFloat(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
    return "\(value)"
}

/// to_timestamp refuses NaN and what is beyond its range (22008); the CHECK refuses
/// the rest outside 1970…9999 (infinity included); in range, due now or waiting.
func runAtOutcome(_ seconds: Double) -> DoorOutcome {
    if seconds.isNaN { return .refused(sqlState: "22008", constraint: nil) }
    if seconds.isFinite && (seconds < -210_866_803_200 || seconds >= 9_224_318_016_000) {
        return .refused(sqlState: "22008", constraint: nil)
    }
    let micro = (seconds * 1e6).rounded() / 1e6
    guard micro >= 0 && micro <= 253_402_300_799 else { return .refused(sqlState: "23514", constraint: "jobs_run_at_range_check") }
    return micro <= Date().timeIntervalSince1970 ? .completed : .waiting
}

/// `$1::int` of a number's text: whole numbers in int4 reach the CHECK (1…1000),
/// larger ones overflow (22003), anything else is not an integer's text (22P02).
func maxAttemptsOutcome(_ text: String) -> DoorOutcome {
    let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
    guard !digits.isEmpty, digits.allSatisfy(\.isNumber) else { return .refused(sqlState: "22P02", constraint: nil) }
    guard let value = Int32(text) else { return .refused(sqlState: "22003", constraint: nil) }
    return (1...1_000).contains(value) ? .completed : .refused(sqlState: "23514", constraint: "jobs_max_attempts_check")
}

/// The JSON number as the handlers read it: a whole Int, or nil.
func wholeNumber(_ text: String) -> Int? {
    guard let double = Double(text), double.isFinite else { return nil }
    return Int(exactly: double)
}

/// Inserts a batch as the producer, then waits for every accepted job to settle and
/// for a canary, and returns what differs from the model.
func runBatch(_ jobs: [HostileJob], batch: Int, world: QueueWorld, producer: PostgresConnection) async throws -> [String] {
    var problems: [String] = []
    var accepted: [(job: HostileJob, id: String)] = []
    for job in jobs {
        // The producer may not read ids back (no SELECT), so each accepted row is found
        // by the owner as the newest row right after its insert.
        do {
            try await producer.query(job.sql, job.params)
            let id = try await world.scalar("SELECT max(id)::text FROM queue.jobs") ?? ""
            accepted.append((job, id))
            if case .refused = job.expect { problems.append("batch \(batch) \(job.label): accepted, expected \(job.expect)") }
        } catch let error as PostgresError {
            let got = DoorOutcome.refused(sqlState: error.sqlState ?? "?", constraint: error.constraint)
            if got != job.expect {
                problems.append("batch \(batch) \(job.label): \(got) (\(error.message.prefix(120))), expected \(job.expect)")
            }
            if error.message.isEmpty { problems.append("batch \(batch) \(job.label): refused without a message") }
        }
    }
    try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{\"canary\": 1}')")
    let canary = try await world.scalar("SELECT max(id)::text FROM queue.jobs") ?? ""
    // The canary is an unknown field for noop: it is dead-lettered, which proves a
    // full round trip (promote, claim, run, complete) through the living daemon.
    try await waitUntil(timeout: 30, "batch \(batch): canary and every accepted job settle") {
        let settled = try await world.int("""
            SELECT (SELECT count(*) FROM queue.jobs
                     WHERE id = ANY($1::bigint[]) AND (state = 'dead' OR run_at > now() + interval '1 minute'))
                 + (SELECT count(*) FROM queue.completed_jobs WHERE id = ANY($1::bigint[]))
            """, ["{" + (accepted.map(\.id) + [canary]).joined(separator: ",") + "}"])
        return settled == accepted.count + 1
    }
    #expect(try await world.scalar("SELECT reason FROM queue.dead_letters WHERE job_id = $1::bigint", [canary]) == "payload_invalid")
    for (job, id) in accepted {
        let row = try await world.sql.query("""
            SELECT coalesce(j.state, c.state), d.reason FROM (SELECT $1::bigint AS id) i
              LEFT JOIN queue.jobs j ON j.id = i.id
              LEFT JOIN (SELECT id, 'completed' AS state FROM queue.completed_jobs) c ON c.id = i.id
              LEFT JOIN queue.dead_letters d ON d.job_id = i.id
            """, [id]).rows.first
        let got: DoorOutcome = switch row?[0] {
        case "completed": .completed
        case "dead": .dead(reason: row?[1] ?? "")
        case "available": .waiting
        default: .refused(sqlState: "state \(row?[0] ?? "none")", constraint: nil)
        }
        if got != job.expect { problems.append("batch \(batch) \(job.label): \(got), expected \(job.expect)") }
    }
    return problems
}

// MARK: - Helpers

/// A kind whose handler declares it internal.
struct InternalProbe: JobHandler {
    let kind = "door.internal"
    var isInternal: Bool { true }
    func handle(_ job: ClaimedJob, context: JobContext) async throws {}
}

/// The error `statement` fails with, or nil (recorded as an issue) when it succeeds.
func refusal(_ sql: PostgresConnection, _ statement: String, _ params: [String?] = []) async throws -> PostgresError? {
    do {
        try await sql.query(statement, params)
        Issue.record("allowed, but must be refused: \(statement) \(params)")
        return nil
    } catch let error as PostgresError {
        return error
    }
}

/// Runs `body` with a fresh world and a connection as a new login role in `group`
/// (and nothing else); the role is dropped afterwards.
func withLogin(_ group: String, _ body: (QueueWorld, PostgresConnection, String) async throws -> Void) async throws {
    try await withWorld { world in
        let login = "jobd_door_\(UInt32.random(in: 0...UInt32.max))"
        try await world.sql.executeScript("CREATE ROLE \(login) LOGIN IN ROLE \(group)")
        let sql = PostgresConnection(conninfo: world.database.url + "?user=\(login)", name: "as-\(group)", commandTimeout: 10, logger: .silent)
        do {
            try await body(world, sql, login)
        } catch {
            await sql.close()
            _ = try? await world.sql.executeScript("DROP OWNED BY \(login); DROP ROLE \(login)")
            throw error
        }
        await sql.close()
        try await world.sql.executeScript("DROP OWNED BY \(login); DROP ROLE \(login)")
    }
}

@Suite("Reporting privacy", .serialized)
struct ReportingPrivacyTests {
    @Test("jobd_reporting reads no message text, notification body or job payload, and `jobd report`'s figures still compute as it")
    func reportingReadsNoText() async throws {
        try await withLogin("jobd_reporting") { world, reporting, login in
            try await world.sql.executeScript("""
                INSERT INTO content.messages (external_id, tenant_id, from_address, to_addresses, subject, digest,
                                              raw_bytes, stored_bytes, index_text, created_at)
                VALUES ('m-1', 'acme', 'ceo@acme.example', '{board@acme.example}', 'merger', 'd', 100, 40,
                        'the secret merger terms', now() - interval '1 day');
                INSERT INTO notifications.notifications (idempotency_key, channel, recipient, subject, body, status, sent_at, created_at)
                VALUES ('n-1', 'email', 'ceo@acme.example', 'merger', 'the secret merger terms', 'sent', now(), now() - interval '1 day');
                INSERT INTO notifications.attempts (notification_id, try, destination, started_at, duration_ms, outcome, excerpt)
                SELECT id, 1, 'smtp://mx:25', now() - interval '1 day', 12, 'sent', '250 ok: the secret merger terms' FROM notifications.notifications;
                INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{"body": "the secret merger terms"}');
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'test' FROM queue.jobs;
                """)
            for statement in [
                "SELECT * FROM content.messages", "SELECT index_text FROM content.messages",
                "SELECT subject FROM content.messages", "SELECT search_vector FROM content.messages",
                "SELECT to_addresses FROM content.messages", "SELECT data FROM content.bodies",
                "SELECT filename FROM content.message_attachments",
                "SELECT * FROM notifications.notifications", "SELECT body FROM notifications.notifications",
                "SELECT recipient FROM notifications.notifications", "SELECT excerpt FROM notifications.attempts",
                "SELECT payload FROM queue.jobs", "SELECT payload FROM queue.dead_letters",
            ] {
                let error = try await refusal(reporting, statement)
                #expect(error?.sqlState == "42501", "\(statement): \(String(describing: error))")
            }
            // What reports read.
            #expect(try await reporting.query("SELECT tenant_id, raw_bytes, stored_bytes FROM content.messages").rows == [["acme", "100", "40"]])
            #expect(try await reporting.query("SELECT channel, status FROM notifications.notifications").rows == [["email", "sent"]])
            #expect(try await reporting.query("SELECT kind, state FROM queue.jobs").rows == [["noop", "available"]])

            // `jobd report` as the reporting login: the figures computed from every tier.
            let url = world.database.url + "?user=\(login)"
            let databases = TierDatabases(DataTier.allCases.map { tier in
                TierDatabase(tier: tier, size: 1, logger: .silent) { _ in
                    PostgresConnection(conninfo: url, name: "report-\(tier.rawValue)", commandTimeout: 10, logger: .silent)
                }
            })
            let report = try await AnalyticsRollup(databases: databases, queue: databases[.queue], logger: .silent)
                .report(AnalyticsDay.yesterday(now: Date()))
            await databases.close()
            #expect(report.sections.allSatisfy { $0.status == "ok" }, "\(report.sections)")
            #expect(report.content.map(\.messages) == [1])
            #expect(report.notifications.map(\.notifications) == [1])
        }
    }
}
