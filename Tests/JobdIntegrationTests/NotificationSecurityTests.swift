import Foundation
import JobdCore
import JobdNotify
import JobdTestSupport
import Testing

/// Runs examples/webhook_verify.py (the receiver's check README.md shows, Python's
/// standard library only) on a request the sink recorded, as received at `url`.
func verifyWithPython(secret: String, url: String, request: SinkRequest, now: Double? = nil) throws -> Bool {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/webhook_verify.py").path
    var input: [String: Any] = ["secret": secret, "url": url, "headers": request.headers, "body": request.body]
    if let now { input["now"] = now }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script]
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    stdin.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: input))
    try stdin.fileHandleForWriting.close()
    process.waitUntilExit()
    return process.terminationStatus == 0
}

@Suite("Notification security", .serialized)
struct NotificationSecurityTests {
    /// Each URL reaches an internal address, however it is spelled (PORT: the sink's),
    /// and the address the refusal names.
    static let internalTargets: [(path: String, url: String, address: String)] = [
        ("dotted", "http://127.0.0.1:PORT/dotted", "127.0.0.1 (loopback)"),
        ("decimal", "http://2130706433:PORT/decimal", "127.0.0.1 (loopback)"),
        ("octal", "http://0177.0.0.1:PORT/octal", "127.0.0.1 (loopback)"),
        ("hex", "http://0x7f.0.0.1:PORT/hex", "127.0.0.1 (loopback)"),
        ("name", "http://localhost:PORT/name", "(loopback)"),
        ("v6", "http://[::1]:PORT/v6", "::1 (loopback)"),
        ("mapped", "http://[::ffff:127.0.0.1]:PORT/mapped", "::ffff:127.0.0.1 (loopback)"),
        ("unspecified", "http://0.0.0.0:PORT/unspecified", "0.0.0.0 (unspecified)"),
        ("metadata", "http://169.254.169.254/latest/meta-data/", "169.254.169.254 (link-local)"),
        ("rfc1918", "http://10.1.2.3:8080/x", "10.1.2.3 (private)"),
        ("cgnat", "http://100.64.0.1/x", "100.64.0.1 (shared)"),
        ("multicast", "http://224.0.0.1/x", "224.0.0.1 (multicast)"),
        ("ula", "http://[fd00::1]/x", "fd00::1 (private)"),
        ("linklocal6", "http://[fe80::1]/x", "fe80::1 (link-local)"),
    ]

    @Test("by default webhooks and SMS refuse internal addresses in every spelling: permanent, address in the audit row, nothing sent")
    func internalAddressesRefused() async throws {
        try await withNotifications(settings: { $0.networkPolicy = OutboundNetworkPolicy() }) { n in
            var jobs: [(key: String, id: JobID, address: String)] = []
            for target in Self.internalTargets {
                let key = "ssrf-\(target.path)"
                jobs.append((key, try await n.enqueue([
                    "channel": .string("webhook"), "to": .string(target.url.replacingOccurrences(of: "PORT", with: "\(n.sink.httpPort)")), "idempotency_key": .string(key),
                    "body": .object([:]),
                ]), target.address))
            }
            let sms = try await n.enqueue([
                "channel": .string("sms"), "to": .string("+15551234567"), "body": .string("code 1"), "idempotency_key": .string("ssrf-sms"),
            ])
            jobs.append(("ssrf-sms", sms, "127.0.0.1 (loopback)"))
            // The SMTP relay is the operator's: loopback is fine for it.
            let mail = try await n.enqueue([
                "channel": .string("email"), "to": .string("ops@example.org"), "subject": .string("s"), "body": .string("b"),
                "idempotency_key": .string("relay-on-loopback"),
            ])
            for job in jobs {
                try await n.waitFor(job.id, "dead")
                #expect(try await n.deadLetter(job.id).reason == "destination_not_allowed", "\(job.key)")
                let attempts = try await n.attempts(job.key)
                #expect(attempts.count == 1, "\(job.key)")
                let attempt = try #require(attempts.first)
                #expect(attempt["outcome"] == "failed", "\(job.key)")
                #expect(attempt["error_code"] == "destination_not_allowed", "\(job.key)")
                #expect(attempt["status_code"] == .some(nil), "\(job.key)")
                let excerpt = attempt["excerpt"].flatMap { $0 } ?? ""
                #expect(excerpt.hasPrefix("refused to connect to ") && excerpt.contains(job.address), "\(job.key): \(excerpt)")
                #expect(try await n.notification(job.key)["status"] == "failed", "\(job.key)")
            }
            try await n.waitFor(mail, "completed")
            #expect(try n.sink.requests().isEmpty)
            #expect(try n.sink.mails().count == 1)
        }
    }

    @Test("JOBD_NOTIFY_ALLOWED_NETWORKS opens the listed ranges and nothing else")
    func allowedNetworksOpenRanges() async throws {
        let allowed = try #require(OutboundNetworkPolicy.parseNetworks("127.0.0.0/8"))
        try await withNotifications(settings: { $0.networkPolicy = OutboundNetworkPolicy(allowed: allowed) }) { n in
            func hook(_ url: String, _ key: String) -> [String: JSONValue] {
                ["channel": .string("webhook"), "to": .string(url), "idempotency_key": .string(key), "body": .object([:])]
            }
            let port = n.sink.httpPort
            // A name: whichever of its addresses is allowed (127.0.0.1) is the one connected to.
            let byName = try await n.enqueue(hook("http://localhost:\(port)/by-name", "open-name"))
            let decimal = try await n.enqueue(hook("http://2130706433:\(port)/decimal", "open-decimal"))
            let v6 = try await n.enqueue(hook("http://[::1]:\(port)/v6", "closed-v6"))
            let metadata = try await n.enqueue(hook("http://169.254.169.254/latest/meta-data/", "closed-metadata"))
            // A redirect is not followed, so it cannot lead anywhere the policy refuses.
            let redirect = try await n.enqueue(hook(
                n.sink.url("/redirect?status=307&location=http://169.254.169.254/latest/meta-data/"), "redirect"))
            try await n.waitFor(byName, "completed")
            try await n.waitFor(decimal, "completed")
            try await n.waitFor(v6, "dead")
            try await n.waitFor(metadata, "dead")
            try await n.waitFor(redirect, "dead")
            #expect(try await n.deadLetter(v6).reason == "destination_not_allowed")
            #expect(try await n.attempts("closed-v6").first?["excerpt"]??.contains("::1 (loopback)") == true)
            #expect(try await n.deadLetter(metadata).reason == "destination_not_allowed")
            #expect(try await n.deadLetter(redirect).reason == "http_307")
            #expect(try n.sink.requests().map(\.path).sorted() == ["/by-name", "/decimal", "/redirect"])
        }
    }

    @Test("the v2 signature covers timestamp, method, URL, key and body, with a key per host; it fails for another URL or key")
    func signatureBindsTheRequest() async throws {
        let hostSecret = testWebhookSecret  // what the sink verifies with
        let defaultSecret = "default-webhook-secret-for-other-hosts"
        try await withNotifications(settings: {
            $0.webhookSecret = SecretText(defaultSecret)
            $0.webhookHostSecrets = ["127.0.0.1": SecretText(hostSecret)]
        }) { n in
            let url = n.sink.url("/signed?order=42")
            let id = try await n.enqueue(n.webhook("/signed?order=42", key: "signed-1", body: ["order": .number(42)]))
            let otherURL = "http://localhost:\(n.sink.httpPort)/elsewhere"
            let other = try await n.enqueue([
                "channel": .string("webhook"), "to": .string(otherURL), "idempotency_key": .string("signed-2"),
                "body": .object(["order": .number(42)]),
            ])
            try await n.waitFor(id, "completed")
            try await n.waitFor(other, "completed")
            let requests = try n.sink.requests()
            let signed = try #require(requests.first { $0.path == "/signed" })
            let elsewhere = try #require(requests.first { $0.path == "/elsewhere" })
            #expect(signed.headers["x-jobd-signature"]?.hasPrefix("v2=") == true)
            // The sink's own check (Python, with the host's key) accepts the first …
            #expect(signed.signatureValid == true)
            // … and the README's verify() agrees, with the URL the receiver published.
            #expect(try verifyWithPython(secret: hostSecret, url: url, request: signed))
            // Worth nothing at another URL, with another key, for another idempotency key,
            // with another body, or long after.
            #expect(try !verifyWithPython(secret: hostSecret, url: n.sink.url("/signed?order=43"), request: signed))
            #expect(try !verifyWithPython(secret: hostSecret, url: "https://127.0.0.1:\(n.sink.httpPort)/signed?order=42", request: signed))
            #expect(try !verifyWithPython(secret: defaultSecret, url: url, request: signed))
            var rekeyed = signed
            rekeyed.headers["idempotency-key"] = "signed-9"
            #expect(try !verifyWithPython(secret: hostSecret, url: url, request: rekeyed))
            var rebodied = signed
            rebodied.body = #"{"order":43}"#
            #expect(try !verifyWithPython(secret: hostSecret, url: url, request: rebodied))
            let sentAt = try #require(signed.headers["x-jobd-timestamp"].flatMap { Double($0) })
            #expect(try !verifyWithPython(secret: hostSecret, url: url, request: signed, now: sentAt + 301))
            // A host without a key of its own gets the default key, not the 127.0.0.1 one.
            #expect(elsewhere.signatureValid == false)
            #expect(try verifyWithPython(secret: defaultSecret, url: otherURL, request: elsewhere))
            #expect(try !verifyWithPython(secret: hostSecret, url: otherURL, request: elsewhere))
        }
    }

    @Test("the signature in README's example is what WebhookSigner computes (vector from Python's hmac)")
    func readmeVector() {
        let signer = WebhookSigner(secret: "example-secret-0123456789")
        let body = Array(#"{"order":42,"status":"shipped"}"#.utf8)
        #expect(signer.headers(
            timestamp: 1_795_597_982, url: "https://hooks.example.com/orders", idempotencyKey: "order-42-shipped", body: body) == [
                "X-Jobd-Timestamp: 1795597982",
                "X-Jobd-Signature: v2=3a394fac814c96c5a13834b7260fef6809bf5ac0eae8e969fc8eb06193c608f0",
            ])
        #expect(signer.signature(timestamp: 1_795_597_982, url: "https://hooks.example.com/other", idempotencyKey: "order-42-shipped", body: body)
            != "v2=3a394fac814c96c5a13834b7260fef6809bf5ac0eae8e969fc8eb06193c608f0")
    }

    @Test("a webhook to a host with neither its own key nor a default one is refused, never sent unsigned")
    func hostWithoutKeyRefused() async throws {
        try await withNotifications(settings: {
            $0.webhookSecret = nil
            $0.webhookHostSecrets = ["hooks.example.com": SecretText("0123456789abcdef-hooks")]
        }) { n in
            let id = try await n.enqueue(n.webhook("/x", key: "no-key-1"))
            try await n.waitFor(id, "dead")
            #expect(try await n.deadLetter(id).reason == "channel_not_configured")
            #expect(try n.sink.requests().isEmpty)
        }
    }

    @Test("with SMTP credentials STARTTLS is required: a relay without it never sees AUTH, and the job fails with a clear code")
    func credentialsNeverInClear() async throws {
        try await withNotifications(settings: { $0.smtpStartTLS = nil }) { n in
            #expect(NotifyWorld.settings(for: n.sink).smtpRelay?.username == "mailer")
            let id = try await n.enqueue([
                "channel": .string("email"), "to": .string("ops@example.org"), "subject": .string("s"), "body": .string("b"),
                "idempotency_key": .string("tls-required-1"),
            ], maxAttempts: 1)
            try await n.waitFor(id, "dead")
            #expect(try await n.deadLetter(id).reason == "smtp_starttls_unavailable")
            let attempt = try #require(try await n.attempts("tls-required-1").first)
            #expect(attempt["error_code"] == "smtp_starttls_unavailable")
            #expect(attempt["excerpt"]??.contains("STARTTLS is required") == true)
            try await waitUntil(timeout: 10, "the SMTP session to be recorded") {
                try n.sink.smtpSessions().contains { $0.commands.contains("EHLO") }
            }
            let sessions = try n.sink.smtpSessions()
            #expect(sessions.allSatisfy { !$0.authSeen && !$0.commands.contains("MAIL") }, "\(sessions.map(\.commands))")
            #expect(sessions.contains { $0.commands.contains("EHLO") })
            #expect(try n.sink.mails().isEmpty)
        }
        // The same relay with `try` (what jobd did by default before) sends AUTH in
        // clear — so the sink does see AUTH when it is sent.
        try await withNotifications(settings: { $0.smtpStartTLS = .try }) { n in
            let id = try await n.enqueue([
                "channel": .string("email"), "to": .string("ops@example.org"), "subject": .string("s"), "body": .string("b"),
                "idempotency_key": .string("tls-try-1"),
            ], maxAttempts: 1)
            try await n.waitFor(id, "completed")
            #expect(try n.sink.smtpSessions().contains { $0.authSeen })
        }
    }

    @Test("a second job carrying a key already in flight is snoozed, and every failure log line has a code and a message")
    func inFlightSnoozeLogged() async throws {
        try await withNotifications { n in
            let payload = n.webhook("/slow?delay=1", key: "inflight-1")
            let first = try await n.enqueue(payload)
            try await waitUntil(timeout: 20, "the first send to arrive") { try n.sink.requests().count == 1 }
            let second = try await n.enqueue(payload)
            try await waitUntil(timeout: 20, "the second job to be snoozed") {
                n.world.logs.messages("job snoozed; will run again").contains { $0.metadata[LogKey.jobID] == "\(second)" }
            }
            try await n.waitFor(first, "completed")
            let snoozed = try #require(
                n.world.logs.messages("job snoozed; will run again").first { $0.metadata[LogKey.jobID] == "\(second)" })
            #expect(snoozed.metadata[LogKey.errorCode] == "notification_in_flight")
            #expect(snoozed.metadata[LogKey.error]?.contains("inflight-1") == true)
            #expect(try n.sink.requests().count == 1)
            let empty = n.world.logs.all.filter { entry in
                [LogKey.error, LogKey.errorCode].contains { key in entry.metadata[key].map { $0.isEmpty } ?? false }
            }
            #expect(empty.isEmpty, "\(empty.map { "\($0.message) \($0.metadata)" })")
        }
    }
}
