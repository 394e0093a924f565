import Foundation
import JobdAssembly
import JobdCore
import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Logging
import Synchronization
import Testing

let testWebhookSecret = "test-webhook-secret-0123456789"

/// A world with a daemon serving `noop` and `notification.send`, and the loopback
/// sinks it delivers to (HTTP for webhooks and SMS, SMTP with AUTH for email).
struct NotifyWorld {
    let world: QueueWorld
    let sink: NotifySink

    static func settings(for sink: NotifySink) -> NotificationSettings {
        var settings = NotificationSettings.defaults
        settings.webhookSecret = SecretText(testWebhookSecret)
        settings.smtpRelay = SMTPRelay(parsing: "smtp://mailer:s3cret@127.0.0.1:\(sink.smtpPort)")
        settings.smtpFrom = "jobd@example.com"
        // The loopback sink offers no STARTTLS. The daemon's configuration refuses
        // credentials without `require`; the transport below it is exercised with AUTH
        // here, and NotificationSecurityTests shows `require` keeps AUTH from the wire.
        settings.smtpStartTLS = .try
        settings.smsURL = EndpointURL(parsing: sink.url("/sms"))
        settings.smsToken = SecretText("sms-token")
        // The receivers are on loopback, which webhooks and SMS refuse by default.
        settings.networkPolicy = OutboundNetworkPolicy(allowed: OutboundNetworkPolicy.parseNetworks("127.0.0.0/8,::1/128") ?? [])
        settings.connectTimeout = .seconds(1)
        settings.timeout = .seconds(2)
        return settings
    }

    @discardableResult
    func enqueue(_ payload: [String: JSONValue], maxAttempts: Int = 20) async throws -> JobID {
        let text = String(decoding: try JSONEncoder().encode(JSONValue.object(payload)), as: UTF8.self)
        let id = try await world.scalar(
            "INSERT INTO queue.jobs (kind, payload, max_attempts) VALUES ('notification.send', $1::jsonb, $2::int) RETURNING id",
            [text, String(maxAttempts)])
        return try #require(id.flatMap { JobID($0) })
    }

    func webhook(_ path: String, key: String, body: [String: JSONValue] = ["event": .string("test")]) -> [String: JSONValue] {
        ["channel": .string("webhook"), "to": .string(sink.url(path)), "idempotency_key": .string(key), "body": .object(body)]
    }

    func waitFor(_ id: JobID, _ state: String, timeout: Double = 20) async throws {
        try await waitUntil(timeout: timeout, "job \(id) \(state)") {
            try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(id)]) == state
        }
    }

    func notification(_ key: String) async throws -> [String: String?] {
        let result = try await world.sql.query("""
            SELECT id, channel, recipient, status, tries, claim_token, sending_until, sent_at IS NOT NULL AS has_sent_at,
                   failed_at IS NOT NULL AS has_failed_at, last_status_code, last_error, job_id
              FROM notifications.notifications WHERE idempotency_key = $1
            """, [key])
        return try #require(result.records.first, "no notification row for \(key)")
    }

    func attempts(_ key: String) async throws -> [[String: String?]] {
        try await world.sql.query("""
            SELECT a.try, a.outcome, a.status_code, a.error_code, a.excerpt, a.destination, a.duration_ms,
                   a.job_id, a.job_attempt, abs(extract(epoch FROM now() - a.started_at)) < 120 AS recent
              FROM notifications.attempts a JOIN notifications.notifications n ON n.id = a.notification_id
             WHERE n.idempotency_key = $1 ORDER BY a.try
            """, [key]).records
    }

    func deadLetter(_ id: JobID) async throws -> (reason: String?, lastError: String?) {
        let row = try await world.sql.query(
            "SELECT reason, last_error FROM queue.dead_letters WHERE job_id = $1::bigint", [String(id)]).rows.first
        return (row?[0] ?? nil, row?[1] ?? nil)
    }
}

/// A numeric column of a record.
func number(_ record: [String: String?], _ column: String) -> Double? {
    record[column].flatMap { $0 }.flatMap { Double($0) }
}

/// Runs `body` against a daemon with the notification handler, then stops everything.
func withNotifications(
    settings adjust: (inout NotificationSettings) -> Void = { _ in },
    config adjustConfig: @escaping (inout JobdSettings) -> Void = { _ in },
    afterStop: (NotifyWorld) async throws -> Void = { _ in },
    _ body: (NotifyWorld) async throws -> Void
) async throws {
    let sink = try await NotifySink.start(webhookSecret: testWebhookSecret, smtpAuth: "mailer:s3cret")
    defer { sink.stop() }
    try await withWorld { world in
        var settings = NotifyWorld.settings(for: sink)
        adjust(&settings)
        // The assembly builds the notification handler from the configuration, as in production.
        let config = world.configuration {
            $0.notifications = settings
            $0.tierConnections = 2
            adjustConfig(&$0)
        }
        let daemon = world.makeDaemon(config)
        try await world.running([daemon]) { try await body(NotifyWorld(world: world, sink: sink)) }
        try await afterStop(NotifyWorld(world: world, sink: sink))
    }
}

@Suite("Notifications", .serialized)
struct NotificationTests {
    @Test("a webhook is POSTed once, signed, with its idempotency key, and recorded as sent")
    func webhookDelivered() async throws {
        try await withNotifications { n in
            let id = try await n.enqueue(n.webhook("/hook", key: "order-42-shipped", body: [
                "order": .number(42), "items": .array([.string("a"), .string("b")]), "note": .string("ü \"q\""),
            ]))
            try await n.waitFor(id, "completed")

            let requests = try n.sink.requests()
            #expect(requests.count == 1)
            let request = try #require(requests.first)
            #expect(request.path == "/hook")
            #expect(request.body == #"{"items":["a","b"],"note":"ü \"q\"","order":42}"#)
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["idempotency-key"] == "order-42-shipped")
            #expect(request.headers["user-agent"]?.hasPrefix("jobd") == true)
            // The signature jobd sent equals the one Python's hmac computes from the secret.
            let signature = try #require(request.headers["x-jobd-signature"])
            #expect(signature.hasPrefix("v2=") && signature.count == 3 + 64)
            #expect(signature == request.signatureExpected)
            #expect(request.signatureValid == true)
            let timestamp = try #require(request.headers["x-jobd-timestamp"].flatMap { Double($0) })
            #expect(abs(timestamp - request.receivedAt) < 5)

            let row = try await n.notification("order-42-shipped")
            #expect(row["status"] == "sent")
            #expect(row["channel"] == "webhook")
            #expect(row["recipient"] == n.sink.url("/hook"))
            #expect(row["tries"] == "1")
            #expect(row["has_sent_at"] == "t" && row["has_failed_at"] == "f")
            #expect(row["claim_token"] == .some(nil) && row["sending_until"] == .some(nil))
            #expect(row["last_status_code"] == "200")
            #expect(row["job_id"] == "\(id)")
            let attempts = try await n.attempts("order-42-shipped")
            #expect(attempts.count == 1)
            let attempt = try #require(attempts.first)
            #expect(attempt["try"] == "1")
            #expect(attempt["outcome"] == "sent")
            #expect(attempt["status_code"] == "200")
            #expect(attempt["error_code"] == .some(nil))
            #expect(attempt["excerpt"] == #"{"ok":true}"#)
            #expect(attempt["destination"] == "http://127.0.0.1:\(n.sink.httpPort)")
            #expect(attempt["job_id"] == "\(id)" && attempt["job_attempt"] == "1")
            #expect(attempt["recent"] == "t")
            #expect((number(attempt, "duration_ms") ?? 0) > 0)
        }
    }

    @Test("an email goes through the SMTP relay with AUTH; subject, body and key arrive intact")
    func emailDelivered() async throws {
        try await withNotifications { n in
            let id = try await n.enqueue([
                "channel": .string("email"), "to": .string("ops@example.org"), "subject": .string("Größe: disk full"),
                "body": .string("line 1\nline 2\n.\nend"), "idempotency_key": .string("disk-full-1"),
            ])
            try await n.waitFor(id, "completed")
            let mails = try n.sink.mails()
            #expect(mails.count == 1)
            let mail = try #require(mails.first)
            #expect(mail.mailFrom == "jobd@example.com")
            #expect(mail.rcptTo == ["ops@example.org"])
            #expect(mail.authUser == "mailer")
            #expect(mail.subject == "Größe: disk full")
            #expect(mail.body.replacingOccurrences(of: "\r\n", with: "\n") == "line 1\nline 2\n.\nend\n")
            #expect(mail.headers["idempotency-key"] == "disk-full-1")
            #expect(mail.headers["message-id"] == EmailMessage.messageID(idempotencyKey: "disk-full-1", from: "jobd@example.com"))
            #expect(mail.headers["from"] == "jobd@example.com" || mail.headers["from"] == "<jobd@example.com>")
            #expect(try n.sink.requests().isEmpty)

            #expect(try await n.notification("disk-full-1")["status"] == "sent")
            let attempt = try #require(try await n.attempts("disk-full-1").first)
            #expect(attempt["outcome"] == "sent")
            #expect(attempt["status_code"] == "250")
            #expect(attempt["excerpt"]??.contains("queued") == true)
            #expect(attempt["destination"] == "smtp://127.0.0.1:\(n.sink.smtpPort)")
        }
    }

    @Test("an SMS is POSTed to the provider with its bearer token")
    func smsDelivered() async throws {
        try await withNotifications { n in
            let id = try await n.enqueue([
                "channel": .string("sms"), "to": .string("+15551234567"), "body": .string("Your code is 1234"),
                "idempotency_key": .string("otp-77"),
            ])
            try await n.waitFor(id, "completed")
            let request = try #require(try n.sink.requests().first)
            #expect(request.path == "/sms")
            #expect(request.headers["authorization"] == "Bearer sms-token")
            #expect(request.headers["idempotency-key"] == "otp-77")
            #expect(request.headers["x-jobd-signature"] == nil)
            #expect(request.body == #"{"body":"Your code is 1234","to":"+15551234567"}"#)
            #expect(try await n.notification("otp-77")["status"] == "sent")
        }
    }

    @Test("a 4xx is permanent: one try, notification failed, job dead-lettered with the status and excerpt")
    func permanentRefusal() async throws {
        try await withNotifications { n in
            let id = try await n.enqueue(n.webhook("/hook?status=400", key: "bad-1"))
            try await n.waitFor(id, "dead")
            #expect(try n.sink.requests().count == 1)
            let dead = try await n.deadLetter(id)
            #expect(dead.reason == "http_400")
            #expect(dead.lastError?.contains("sink says 400") == true)
            let row = try await n.notification("bad-1")
            #expect(row["status"] == "failed" && row["has_failed_at"] == "t" && row["has_sent_at"] == "f")
            #expect(row["last_status_code"] == "400")
            let attempts = try await n.attempts("bad-1")
            #expect(attempts.map { $0["outcome"] } == ["failed"])
            #expect(attempts.first?["status_code"] == "400")
            #expect(attempts.first?["error_code"] == "http_400")
            #expect(attempts.first?["excerpt"] == #"{"error":"sink says 400"}"#)
        }
    }

    @Test("5xx is retried with backoff, every try carrying the same key, until a 2xx")
    func retriedUntilSent() async throws {
        try await withNotifications { n in
            let id = try await n.enqueue(n.webhook("/flaky?status=503&times=2", key: "flaky-1"))
            try await n.waitFor(id, "completed")
            let requests = try n.sink.requests()
            #expect(requests.count == 3)
            #expect(Set(requests.compactMap { $0.headers["idempotency-key"] }) == ["flaky-1"])
            let attempts = try await n.attempts("flaky-1")
            #expect(attempts.map { $0["outcome"] } == ["retry", "retry", "sent"])
            #expect(attempts.map { $0["status_code"] } == ["503", "503", "200"])
            #expect(attempts.map { $0["job_attempt"] } == ["1", "2", "3"])
            #expect(try await n.notification("flaky-1")["tries"] == "3")
            #expect(try await n.world.int("SELECT attempt FROM queue.completed_jobs WHERE id = $1::bigint", [String(id)]) == 3)
        }
    }

    @Test("429 with Retry-After snoozes the job until then without spending an attempt")
    func retryAfterSnoozes() async throws {
        try await withNotifications { n in
            // One attempt only: a retry would dead-letter it, a snooze must not.
            let id = try await n.enqueue(n.webhook("/busy?status=429&retry_after=1&times=1", key: "busy-1"), maxAttempts: 1)
            try await n.waitFor(id, "completed")
            let requests = try n.sink.requests()
            #expect(requests.count == 2)
            if requests.count == 2 { #expect(requests[1].receivedAt - requests[0].receivedAt >= 0.95) }
            let attempts = try await n.attempts("busy-1")
            #expect(attempts.map { $0["outcome"] } == ["snoozed", "sent"])
            #expect(attempts.map { $0["status_code"] } == ["429", "200"])
            #expect(try await n.world.int("SELECT attempt FROM queue.completed_jobs WHERE id = $1::bigint", [String(id)]) == 1)
        }
    }

    @Test("a sent notification is never sent again: not by a re-run of its job, nor by another job with its key")
    func neverResent() async throws {
        try await withNotifications { n in
            let payload = n.webhook("/once", key: "once-1")
            let first = try await n.enqueue(payload)
            try await n.waitFor(first, "completed")
            // The same job runs again (as after a lost completion) …
            // (the completion deleted the row: put it back, waiting, as its attempt 1 left it).
            try await n.world.exec("""
                INSERT INTO queue.jobs (id, kind, payload, attempt) OVERRIDING SYSTEM VALUE
                SELECT id, kind, payload, attempt FROM queue.completed_jobs WHERE id = $1::bigint
                """, [String(first)])
            try await waitUntil(timeout: 20, "the re-run") {
                try await n.world.int("SELECT max(attempt) FROM queue.completed_jobs WHERE id = $1::bigint", [String(first)]) == 2
            }
            // … and a second job carries the same notification.
            let second = try await n.enqueue(payload)
            try await n.waitFor(second, "completed")
            #expect(try n.sink.requests().count == 1)
            #expect(try await n.notification("once-1")["tries"] == "1")
            #expect(try await n.attempts("once-1").count == 1)
            #expect(n.world.logs.messages("notification already sent; not sending again").count == 2)
        }
    }

    @Test("a key reused for a different notification is a permanent idempotency_conflict")
    func idempotencyConflict() async throws {
        try await withNotifications { n in
            let first = try await n.enqueue(n.webhook("/c", key: "conflict-1", body: ["v": .number(1)]))
            try await n.waitFor(first, "completed")
            let second = try await n.enqueue(n.webhook("/c", key: "conflict-1", body: ["v": .number(2)]))
            try await n.waitFor(second, "dead")
            #expect(try await n.deadLetter(second).reason == "idempotency_conflict")
            #expect(try n.sink.requests().count == 1)
            #expect(try await n.notification("conflict-1")["status"] == "sent")
        }
    }

    @Test("a receiver slower than the total timeout is a retry; the timed-out try is in the audit trail")
    func timeoutRetried() async throws {
        try await withNotifications(settings: { $0.timeout = .seconds(1) }) { n in
            let id = try await n.enqueue(n.webhook("/slow?delay=3&times=1", key: "slow-1"))
            try await n.waitFor(id, "completed")
            let attempts = try await n.attempts("slow-1")
            #expect(attempts.map { $0["outcome"] } == ["retry", "sent"])
            #expect(attempts.first?["error_code"] == "timeout")
            #expect(attempts.first?["status_code"] == .some(nil))
            let timedOut = attempts.first.flatMap { number($0, "duration_ms") } ?? 0
            #expect(timedOut >= 900 && timedOut < 2_500)
            // The receiver saw both tries, with the one key it can deduplicate on.
            let requests = try n.sink.requests()
            #expect(requests.count == 2)
            #expect(Set(requests.compactMap { $0.headers["idempotency-key"] }) == ["slow-1"])
        }
    }

    @Test("connection errors retry; once the job's attempts are spent the notification is failed")
    func connectionRefused() async throws {
        try await withNotifications { n in
            // Port 1 on loopback refuses at once.
            let id = try await n.enqueue([
                "channel": .string("webhook"), "to": .string("http://127.0.0.1:1/nobody"), "idempotency_key": .string("refused-1"),
                "body": .object([:]),
            ], maxAttempts: 2)
            try await n.waitFor(id, "dead")
            #expect(try await n.deadLetter(id).reason == "connect_failed")
            let row = try await n.notification("refused-1")
            #expect(row["status"] == "failed")
            let attempts = try await n.attempts("refused-1")
            #expect(attempts.map { $0["outcome"] } == ["retry", "retry"])
            #expect(attempts.map { $0["error_code"] } == ["connect_failed", "connect_failed"])
            #expect(attempts.allSatisfy { $0["status_code"] == .some(nil) && $0["excerpt"]??.isEmpty == false })
        }
    }

    @Test("a drain that runs out of time aborts a transfer under way within about a second, and records it")
    func cancelledByDrain() async throws {
        let clock = ContinuousClock()
        let stopping = Mutex<ContinuousClock.Instant?>(nil)
        try await withNotifications(config: { $0.shutdownTimeout = .milliseconds(300) }, afterStop: { n in
            let stopped = try #require(stopping.withLock { $0 }).duration(to: clock.now)
            // The receiver would have taken 20 s; the drain waited 0.3 s, then libcurl's
            // progress callback saw the cancellation.
            // Half the receiver's 20 s: the transfer was aborted, not waited out (generous,
            // so a loaded host cannot break it).
            #expect(stopped < .seconds(10), "\(stopped)")
            let attempts = try await n.attempts("drained-1")
            #expect(attempts.map { $0["outcome"] } == ["retry"])
            #expect(attempts.first?["error_code"] == "cancelled")
            #expect((number(attempts.first ?? [:], "duration_ms") ?? 0) < 10_000)
            #expect(try await n.notification("drained-1")["status"] == "pending")
            #expect(try await n.world.scalar("SELECT state FROM queue.jobs") == "available")
        }) { n in
            try await n.enqueue(n.webhook("/stuck?delay=20", key: "drained-1"))
            try await waitUntil(timeout: 20, "the request to arrive") { try n.sink.requests().count == 1 }
            stopping.withLock { $0 = clock.now }
        }
    }

    @Test("the circuit breaker stops hammering a failing destination, probes after the cooldown, and closes")
    func circuitBreaker() async throws {
        try await withNotifications(settings: {
            $0.breaker = CircuitBreaker.Settings(failureThreshold: 2, cooldown: .seconds(0.5))
        }, config: { $0.workers = .shared(1) }) { n in
            // The destination fails its first three requests, whoever sends them.
            var ids: [JobID] = []
            for index in 0..<4 {
                ids.append(try await n.enqueue(n.webhook("/down?status=500&times=3", key: "cb-\(index)"), maxAttempts: 50))
            }
            for id in ids { try await n.waitFor(id, "completed", timeout: 30) }
            // Two failures opened it; the first probe failed (3rd request) and
            // re-opened it; the second probe succeeded and closed it. Without the
            // breaker the four jobs would have kept hitting the destination.
            let requests = try n.sink.requests()
            #expect(requests.count == 7)
            let outcomes = try await n.world.sql.query(
                "SELECT outcome, count(*) FROM notifications.attempts GROUP BY outcome ORDER BY outcome").rows
            #expect(outcomes == [["retry", "3"], ["sent", "4"]])
            let opened = n.world.logs.messages("notification circuit opened")
            #expect(opened.count == 2)
            #expect(opened.first?.metadata[LogKey.messageID] == JobdMessageID.notificationCircuitOpened.id)
            #expect(opened.first?.metadata[LogKey.destination] == "http://127.0.0.1:\(n.sink.httpPort)")
            #expect(n.world.logs.messages("notification circuit closed").count == 1)
            // The cooldown was respected: no request within 0.5 s after the circuit opened.
            if requests.count == 7 {
                #expect(requests[2].receivedAt - requests[1].receivedAt >= 0.45)
                #expect(requests[3].receivedAt - requests[2].receivedAt >= 0.45)
            }
        }
    }

    @Test("the per-destination token bucket spaces sends at the configured rate")
    func rateLimited() async throws {
        try await withNotifications(settings: { $0.rateLimit = TokenBucket.Settings(rate: 5, burst: 1) }) { n in
            var ids: [JobID] = []
            for index in 0..<6 { ids.append(try await n.enqueue(n.webhook("/paced", key: "paced-\(index)"))) }
            for id in ids { try await n.waitFor(id, "completed") }
            let times = try n.sink.requests().map(\.receivedAt).sorted()
            #expect(times.count == 6)
            let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
            #expect(gaps.allSatisfy { $0 >= 0.1 }, "\(gaps)")
            #expect((times.last ?? 0) - (times.first ?? 0) >= 0.9)
        }
    }

    @Test("a webhook host outside the allow-list is refused permanently and never contacted")
    func allowList() async throws {
        try await withNotifications(settings: { $0.webhookAllowedHosts = HostAllowList(parsing: "*.example.com") }) { n in
            let id = try await n.enqueue(n.webhook("/x", key: "blocked-1"))
            try await n.waitFor(id, "dead")
            #expect(try await n.deadLetter(id).reason == "destination_not_allowed")
            #expect(try n.sink.requests().isEmpty)
            #expect(try await n.world.int("SELECT count(*) FROM notifications.notifications") == 0)
        }
    }

    @Test("SMTP: 550 is permanent, 451 is retried until the attempts are spent")
    func smtpRefusals() async throws {
        try await withNotifications { n in
            func mail(_ to: String, _ key: String) -> [String: JSONValue] {
                ["channel": .string("email"), "to": .string(to), "subject": .string("s"), "body": .string("b"), "idempotency_key": .string(key)]
            }
            let rejected = try await n.enqueue(mail("reject@example.org", "smtp-550"))
            let deferred = try await n.enqueue(mail("tempfail@example.org", "smtp-451"), maxAttempts: 2)
            try await n.waitFor(rejected, "dead")
            try await n.waitFor(deferred, "dead")
            #expect(try await n.deadLetter(rejected).reason == "smtp_550")
            let refused = try await n.attempts("smtp-550")
            #expect(refused.map { $0["outcome"] } == ["failed"])
            #expect(refused.first?["status_code"] == "550")
            #expect(refused.first?["excerpt"]??.contains("no such user") == true)
            #expect(try await n.attempts("smtp-451").map { $0["status_code"] } == ["451", "451"])
            #expect(try await n.notification("smtp-451")["status"] == "failed")
            #expect(try n.sink.mails().isEmpty)
        }
    }

    @Test("without JOBD_WEBHOOK_SECRET webhooks are refused (never sent unsigned); bad payloads are dead at once")
    func refusedUpFront() async throws {
        try await withNotifications(settings: { $0.webhookSecret = nil }) { n in
            #expect(n.world.logs.messages("webhook secret not set; webhook notifications will be refused").count == 1)
            let unsigned = try await n.enqueue(n.webhook("/x", key: "unsigned-1"))
            let malformed = try await n.enqueue(["channel": .string("pigeon"), "to": .string("x"), "body": .string("b"),
                                                 "idempotency_key": .string("k")])
            try await n.waitFor(unsigned, "dead")
            try await n.waitFor(malformed, "dead")
            #expect(try await n.deadLetter(unsigned).reason == "channel_not_configured")
            #expect(try await n.deadLetter(malformed).reason == "payload_invalid")
            #expect(try n.sink.requests().isEmpty)
        }
    }
}
