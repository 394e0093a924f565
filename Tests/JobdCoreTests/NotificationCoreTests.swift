import Foundation
import JobdCore
import JobdNotifications
import JobdTestRandom
import Testing

private func payload(_ json: String) throws -> [String: JSONValue] {
    guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) else {
        throw JobFailure.permanent("test payload is not an object")
    }
    return object
}

private func rejection(_ json: String) throws -> JobFailure? {
    let object = try payload(json)
    do {
        _ = try NotificationRequest(payload: object)
        return nil
    } catch {
        return error
    }
}

@Suite("notification payloads")
struct NotificationPayloadTests {
    @Test("a webhook payload gives canonical JSON bytes")
    func webhook() throws {
        let request = try NotificationRequest(payload: try payload("""
            {"channel": "webhook", "to": "https://hooks.example.com/x?y=1", "idempotency_key": "order-42",
             "body": {"b": [1, 2.5, true, null], "a": "é\\n\\"q\\"", "c": {"z": 1, "y": -3}}}
            """))
        #expect(request.channel == .webhook)
        #expect(request.to == "https://hooks.example.com/x?y=1")
        #expect(request.subject == nil)
        #expect(request.body == #"{"a":"é\n\"q\"","b":[1,2.5,true,null],"c":{"y":-3,"z":1}}"#)
        #expect(request.idempotencyKey == "order-42")
    }

    @Test("email and sms payloads")
    func emailAndSMS() throws {
        let mail = try NotificationRequest(payload: try payload("""
            {"channel": "email", "to": "ops@example.com", "subject": "Disk full", "body": "text", "idempotency_key": "k1"}
            """))
        #expect(mail == NotificationRequest(channel: .email, to: "ops@example.com", subject: "Disk full", body: "text", idempotencyKey: "k1"))
        let sms = try NotificationRequest(payload: try payload("""
            {"channel": "sms", "to": "+15551234567", "body": "code 1234", "idempotency_key": "k2"}
            """))
        #expect(sms == NotificationRequest(channel: .sms, to: "+15551234567", body: "code 1234", idempotencyKey: "k2"))
    }

    @Test("bad payloads are permanent payload_invalid failures naming the field", arguments: [
        (#"{"channel":"webhook","to":"https://h.example/","body":{},"idempotency_key":"k","extra":1}"#, "unknown field \"extra\""),
        (#"{"channel":"fax","to":"x","body":"b","idempotency_key":"k"}"#, "channel"),
        (#"{"channel":"webhook","to":"https://h.example/","body":{}}"#, "idempotency_key"),
        (#"{"channel":"webhook","to":"https://h.example/","body":{},"idempotency_key":"has space"}"#, "idempotency_key"),
        (#"{"channel":"webhook","to":"https://h.example/","body":{},"idempotency_key":""}"#, "idempotency_key"),
        (#"{"channel":"webhook","to":"https://h.example/","body":"text","idempotency_key":"k"}"#, "body must be a JSON object"),
        (#"{"channel":"webhook","to":"https://h.example/","body":{},"subject":"s","idempotency_key":"k"}"#, "subject is for email only"),
        (#"{"channel":"webhook","to":"https://user:pw@h.example/","body":{},"idempotency_key":"k"}"#, "to must be an http"),
        (#"{"channel":"webhook","to":"ftp://h.example/","body":{},"idempotency_key":"k"}"#, "to must be an http"),
        (#"{"channel":"webhook","to":"https://h.example/a b","body":{},"idempotency_key":"k"}"#, "to must be an http"),
        (#"{"channel":"webhook","to":"https://h.example:99999/","body":{},"idempotency_key":"k"}"#, "to must be an http"),
        (#"{"channel":"email","to":"ops@example.com","body":"b","idempotency_key":"k"}"#, "subject"),
        (#"{"channel":"email","to":"ops@example.com","subject":"a\r\nBcc: x@y.z","body":"b","idempotency_key":"k"}"#, "subject"),
        (#"{"channel":"email","to":"not-an-address","subject":"s","body":"b","idempotency_key":"k"}"#, "to must be an email"),
        (#"{"channel":"email","to":"a@b.c>\r\nRCPT TO:<x@y.z","subject":"s","body":"b","idempotency_key":"k"}"#, "to must be an email"),
        (#"{"channel":"email","to":"ops@example.com","subject":"s","body":{},"idempotency_key":"k"}"#, "body must be a string"),
        (#"{"channel":"sms","to":"5551234567","body":"b","idempotency_key":"k"}"#, "E.164"),
        (#"{"channel":"sms","to":"+0551234567","body":"b","idempotency_key":"k"}"#, "E.164"),
        (#"{"channel":"sms","to":"+15551234567","body":"","idempotency_key":"k"}"#, "body must be a string of 1"),
    ])
    func rejected(json: String, mention: String) throws {
        let failure = try #require(try rejection(json))
        #expect(failure.severity == .permanent)
        #expect(failure.code == "payload_invalid")
        #expect(failure.message.contains(mention), "\(failure.message)")
    }

    @Test("an SMS longer than 1600 characters is refused")
    func smsTooLong() throws {
        let text = String(repeating: "x", count: 1_601)
        let failure = try #require(try rejection(#"{"channel":"sms","to":"+15551234567","body":"\#(text)","idempotency_key":"k"}"#))
        #expect(failure.code == "payload_invalid")
    }

    @Test("canonical JSON escapes control characters and keeps big and fractional numbers")
    func canonicalJSON() {
        let value = JSONValue.object([
            "ctl": .string("\u{01}\t\u{2028}"), "big": .number(9_007_199_254_740_992), "frac": .number(0.1),
            "neg": .number(-0.0), "huge": .number(1e300), "empty": .object([:]), "list": .array([]),
        ])
        #expect(value.canonicalText == #"{"big":9007199254740992,"ctl":"\u0001\t\u2028","empty":{},"frac":0.1,"huge":1e+300,"list":[],"neg":0}"#)
    }
}

@Suite("notification destinations")
struct NotificationDestinationTests {
    @Test("endpoint URLs: host, default ports, IPv6, destination key")
    func endpoints() throws {
        let plain = try #require(EndpointURL(parsing: "http://Hooks.Example.com/x"))
        #expect(plain.host == "hooks.example.com")
        #expect(plain.port == 80)
        #expect(plain.destinationKey == "http://hooks.example.com:80")
        let tls = try #require(EndpointURL(parsing: "HTTPS://h.example.:8443?x=1"))
        #expect(tls.isTLS && tls.port == 8443 && tls.host == "h.example")
        let v6 = try #require(EndpointURL(parsing: "https://[::1]:9000/p"))
        #expect(v6.host == "::1")
        #expect(v6.destinationKey == "https://[::1]:9000")
        for bad in ["https://", "https:///x", "http://h:0/", "http://h:x/", "mailto:a@b.c", "https://[::1/", "http://h\u{7F}/"] {
            #expect(EndpointURL(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("the allow-list matches exact hosts and subdomain wildcards only")
    func allowList() throws {
        let list = try #require(HostAllowList(parsing: " hooks.example.com, *.partner.org ,127.0.0.1"))
        #expect(list.allows(host: "hooks.example.com"))
        #expect(list.allows(host: "HOOKS.example.com."))
        #expect(!list.allows(host: "evil-hooks.example.com"))
        #expect(!list.allows(host: "example.com"))
        #expect(list.allows(host: "a.partner.org"))
        #expect(list.allows(host: "a.b.partner.org"))
        #expect(!list.allows(host: "partner.org"))
        #expect(!list.allows(host: "xpartner.org"))
        #expect(list.allows(host: "127.0.0.1"))
        for bad in ["", " , ", "*", "*.", "a/b", "a.*.c", "a b"] {
            #expect(HostAllowList(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("routes refuse what is not allowed or not configured, permanently")
    func routes() throws {
        let hook = NotificationRequest(channel: .webhook, to: "https://hooks.example.com/x", body: "{}", idempotencyKey: "k")
        var settings = NotificationSettings.defaults
        #expect(throws: JobFailure.permanent(
            "webhooks are signed and neither JOBD_WEBHOOK_SECRET nor a JOBD_WEBHOOK_SECRETS entry for hooks.example.com is set; set one and retry the dead letter",
            code: "channel_not_configured")) { try settings.route(hook) }
        settings.webhookSecret = SecretText("0123456789abcdef")
        #expect(try settings.route(hook) == NotificationRoute(endpoint: "https://hooks.example.com/x", destinationKey: "https://hooks.example.com:443"))
        settings.webhookAllowedHosts = HostAllowList(parsing: "*.partner.org")
        do {
            _ = try settings.route(hook)
            Issue.record("a host outside the allow-list was routed")
        } catch {
            #expect(error.code == "destination_not_allowed")
            #expect(error.severity == .permanent)
        }
        let mail = NotificationRequest(channel: .email, to: "a@b.example", subject: "s", body: "b", idempotencyKey: "k")
        #expect(throws: JobFailure.self) { try settings.route(mail) }
        settings.smtpRelay = SMTPRelay(parsing: "smtp://relay.example:2525")
        settings.smtpFrom = "jobd@example.com"
        #expect(try settings.route(mail).destinationKey == "smtp://relay.example:2525")
        let sms = NotificationRequest(channel: .sms, to: "+15551234567", body: "b", idempotencyKey: "k")
        #expect(throws: JobFailure.self) { try settings.route(sms) }
        settings.smsURL = EndpointURL(parsing: "https://sms.example/send")
        #expect(try settings.route(sms).destinationKey == "https://sms.example:443")
    }

    @Test("SMTP relay URLs: credentials percent-decoded and kept out of the URL libcurl sees")
    func smtpRelay() throws {
        let relay = try #require(SMTPRelay(parsing: "smtp://mailer%40corp:p%40ss:w@Relay.Example:587"))
        #expect(relay.username == "mailer@corp")
        #expect(relay.password?.value == "p@ss:w")
        #expect(relay.curlURL == "smtp://relay.example:587")
        #expect(!relay.implicitTLS)
        let tls = try #require(SMTPRelay(parsing: "smtps://relay.example"))
        #expect(tls.port == 465 && tls.implicitTLS && tls.username == nil && tls.password == nil)
        #expect(SMTPRelay(parsing: "smtp://relay.example")?.port == 25)
        for bad in ["http://relay", "smtp://", "smtp://relay/path", "smtp://u:%zz@relay", "smtp://relay:70000"] {
            #expect(SMTPRelay(parsing: bad) == nil, "\(bad)")
        }
        #expect("\(relay)".contains("p@ss") == false)
    }
}

@Suite("delivery verdicts")
struct DeliveryPolicyTests {
    static let now = 1_000_000.0

    @Test("HTTP status codes", arguments: [
        (200, nil, DeliveryVerdict.sent), (201, nil, .sent), (204, nil, .sent), (299, nil, .sent),
        (400, nil, .permanent), (401, nil, .permanent), (403, nil, .permanent), (404, nil, .permanent),
        (409, nil, .permanent), (410, nil, .permanent), (422, nil, .permanent),
        (301, nil, .permanent), (302, nil, .permanent),
        (408, nil, .retry), (429, nil, .retry), (500, nil, .retry), (502, nil, .retry), (503, nil, .retry),
        (504, nil, .retry), (100, nil, .retry), (600, nil, .retry),
        (429, "5", .snooze(seconds: 5)), (503, "120", .snooze(seconds: 120)),
        (429, "0", .snooze(seconds: 1)), (503, "99999999", .snooze(seconds: 86_400)),
        (503, "soon", .retry), (429, "-3", .retry),
        (503, "Mon, 12 Jan 1970 13:47:10 GMT", .snooze(seconds: 30)),  // now + 30 s
        (500, "5", .retry), (400, "5", .permanent), (408, "5", .retry),
    ] as [(Int, String?, DeliveryVerdict)])
    func http(status: Int, retryAfter: String?, expected: DeliveryVerdict) {
        #expect(DeliveryPolicy.verdict(channel: .webhook, outcome: .response(status: status, retryAfter: retryAfter), now: Self.now) == expected)
        #expect(DeliveryPolicy.verdict(channel: .sms, outcome: .response(status: status, retryAfter: retryAfter), now: Self.now) == expected)
    }

    @Test("SMTP reply codes", arguments: [
        (250, DeliveryVerdict.sent), (221, .sent), (421, .retry), (450, .retry), (451, .retry), (452, .retry),
        (535, .permanent), (550, .permanent), (552, .permanent), (554, .permanent), (0, .retry),
    ])
    func smtp(code: Int, expected: DeliveryVerdict) {
        #expect(DeliveryPolicy.verdict(channel: .email, outcome: .response(status: code, retryAfter: nil), now: Self.now) == expected)
    }

    @Test("no answer at all is retried", arguments: [TransferOutcome.timedOut, .connectionFailed, .failed, .cancelled])
    func noAnswer(outcome: TransferOutcome) {
        for channel in NotificationChannel.allCases {
            #expect(DeliveryPolicy.verdict(channel: channel, outcome: outcome, now: Self.now) == .retry)
        }
    }

    @Test("error codes and breaker accounting")
    func codes() {
        #expect(DeliveryPolicy.errorCode(channel: .webhook, outcome: .response(status: 503, retryAfter: nil)) == "http_503")
        #expect(DeliveryPolicy.errorCode(channel: .webhook, outcome: .response(status: 200, retryAfter: nil)) == nil)
        #expect(DeliveryPolicy.errorCode(channel: .email, outcome: .response(status: 550, retryAfter: nil)) == "smtp_550")
        #expect(DeliveryPolicy.errorCode(channel: .sms, outcome: .timedOut) == "timeout")
        #expect(DeliveryPolicy.errorCode(channel: .sms, outcome: .connectionFailed) == "connect_failed")
        #expect(!DeliveryVerdict.sent.isDestinationFailure)
        #expect(!DeliveryVerdict.permanent.isDestinationFailure)
        #expect(DeliveryVerdict.retry.isDestinationFailure)
        #expect(DeliveryVerdict.snooze(seconds: 3).isDestinationFailure)
        #expect([DeliveryVerdict.sent, .permanent, .retry, .snooze(seconds: 1)].map(\.outcomeName) == ["sent", "failed", "retry", "snoozed"])
    }
}

@Suite("Retry-After and HTTP dates")
struct RetryAfterTests {
    @Test("the three HTTP date formats")
    func dates() {
        #expect(HTTPDate.unixSeconds("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.unixSeconds("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.unixSeconds("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.unixSeconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        #expect(HTTPDate.unixSeconds("Tue, 29 Feb 2028 23:59:59 GMT") == 1_835_481_599)
        for bad in ["", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:00:00 GMT",
                    "Sun, 32 Nov 1994 08:49:37 GMT", "06 Nov 1994", "Sun, 06 Nov 1994 08:49 GMT"] {
            #expect(HTTPDate.unixSeconds(bad) == nil, "\(bad)")
        }
    }

    @Test("delay-seconds and dates against an injected clock")
    func retryAfter() {
        let now = 784_111_777.0
        #expect(RetryAfter.seconds("120", now: now) == 120)
        #expect(RetryAfter.seconds(" 7 ", now: now) == 7)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:50:37 GMT", now: now) == 60)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:37 GMT", now: now + 0.5) == 0)
        #expect(RetryAfter.seconds("Sat, 05 Nov 1994 08:49:37 GMT", now: now) == 0)
        #expect(RetryAfter.seconds("1.5", now: now) == nil)
        #expect(RetryAfter.seconds("-1", now: now) == nil)
        #expect(RetryAfter.seconds("", now: now) == nil)
        #expect(RetryAfter.seconds("99999999999999999999999", now: now) == 999_999_999_999)
    }

    @Test("civil time round trip", arguments: [Int64(0), 784_111_777, 951_782_400, 1_795_595_189, -86_400, 4_102_444_800])
    func civil(seconds: Int64) {
        let c = CivilTime.components(seconds)
        let back = CivilTime.unixSeconds(year: c.year, month: c.month, day: c.day) + Int64(c.hour * 3600 + c.minute * 60 + c.second)
        #expect(back == seconds)
        // Cross-check the weekday with Foundation.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let weekday = calendar.component(.weekday, from: Date(timeIntervalSince1970: Double(seconds))) - 1
        #expect(c.weekday == weekday)
    }
}

@Suite("token bucket")
struct TokenBucketTests {
    let clock = ManualMonotonicClock()

    @Test("a full bucket grants its burst at once, then paces at the rate")
    func burstThenPace() {
        var bucket = TokenBucket(settings: .init(rate: 10, burst: 3), now: clock.now)
        for _ in 0..<3 { #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .granted(wait: .zero)) }
        #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .denied(retryIn: .milliseconds(100)))
        clock.advance(by: .milliseconds(100))
        #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .granted(wait: .zero))
        // A long idle spell refills to the burst, never beyond.
        clock.advance(by: .seconds(100))
        for _ in 0..<3 { #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .granted(wait: .zero)) }
        #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .denied(retryIn: .milliseconds(100)))
    }

    @Test("an empty bucket refuses a nanosecond before its next token and grants at that token")
    func refillCutoff() {
        var bucket = TokenBucket(settings: .init(rate: 4, burst: 1), now: clock.now)
        #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .granted(wait: .zero))
        clock.advance(by: .milliseconds(250) - .nanoseconds(1))
        #expect(bucket.shortfall(at: clock.now) > .zero)
        guard case .denied(let retryIn) = bucket.acquire(now: clock.now, maxWait: .zero) else {
            Issue.record("granted a token a nanosecond early")
            return
        }
        #expect(retryIn > .zero && retryIn <= .nanoseconds(2))
        clock.advance(by: .nanoseconds(1))
        #expect(bucket.shortfall(at: clock.now) == .zero)
        #expect(bucket.acquire(now: clock.now, maxWait: .zero) == .granted(wait: .zero))
    }

    @Test("a wait up to maxWait is granted, one a nanosecond longer is denied")
    func maxWaitCutoff() {
        var bucket = TokenBucket(settings: .init(rate: 4, burst: 1), now: clock.now)
        _ = bucket.acquire(now: clock.now, maxWait: .zero)
        #expect(bucket.acquire(now: clock.now, maxWait: .milliseconds(250) - .nanoseconds(1)) == .denied(retryIn: .milliseconds(250)))
        #expect(bucket.acquire(now: clock.now, maxWait: .milliseconds(250)) == .granted(wait: .milliseconds(250)))
    }

    @Test("short waits are reserved, so concurrent callers line up 1/rate apart")
    func reservations() throws {
        var bucket = TokenBucket(settings: .init(rate: 4, burst: 1), now: clock.now)
        #expect(bucket.acquire(now: clock.now, maxWait: .seconds(1)) == .granted(wait: .zero))
        #expect(bucket.acquire(now: clock.now, maxWait: .seconds(1)) == .granted(wait: .milliseconds(250)))
        #expect(bucket.acquire(now: clock.now, maxWait: .seconds(1)) == .granted(wait: .milliseconds(500)))
        // Past the caller's patience: nothing taken, told when to come back.
        #expect(bucket.acquire(now: clock.now, maxWait: .milliseconds(600)) == .denied(retryIn: .milliseconds(750)))
        #expect(bucket.acquire(now: clock.now, maxWait: .seconds(1)) == .granted(wait: .milliseconds(750)))
    }

    @Test("an instant before the last update neither refills nor drains")
    func earlierInstant() {
        let start = clock.now
        clock.advance(by: .seconds(1))
        var bucket = TokenBucket(settings: .init(rate: 10, burst: 1), now: clock.now)
        #expect(bucket.acquire(now: start, maxWait: .zero) == .granted(wait: .zero))
        #expect(bucket.acquire(now: start, maxWait: .zero) == .denied(retryIn: .milliseconds(100)))
        #expect(bucket.updatedAt == clock.now)
    }

    @Test("over any window the grants never beat rate × window + burst")
    func neverFaster() {
        var generator = SplitMix64(seed: 7)
        var bucket = TokenBucket(settings: .init(rate: 20, burst: 5), now: clock.now)
        var grants: [ContinuousClock.Instant] = []
        for _ in 0..<5_000 {
            clock.advance(by: .milliseconds(Int(generator.next() % 20)))
            if case .granted(let wait) = bucket.acquire(now: clock.now, maxWait: .milliseconds(50)) { grants.append(clock.now + wait) }
        }
        grants.sort()
        for (index, start) in grants.enumerated() {
            let inWindow = grants[index...].prefix { $0 < start + .seconds(1) }.count
            #expect(inWindow <= 25)
        }
        #expect(grants.count > 800)
    }
}

@Suite("circuit breaker")
struct CircuitBreakerTests {
    typealias Breaker = CircuitBreaker
    let clock = ManualMonotonicClock()

    @Test("opens after the threshold of consecutive failures; a success resets the count")
    func opens() {
        let start = clock.now
        var breaker = Breaker(settings: .init(failureThreshold: 3, cooldown: .seconds(10)))
        #expect(breaker.record(failure: true, now: clock.now) == .none)
        #expect(breaker.record(failure: true, now: clock.now) == .none)
        #expect(breaker.record(failure: false, now: clock.now) == .none)
        clock.advance(by: .seconds(1))
        #expect(breaker.record(failure: true, now: clock.now) == .none)
        #expect(breaker.record(failure: true, now: clock.now) == .none)
        #expect(breaker.admit(now: clock.now) == .allow)
        #expect(breaker.record(failure: true, now: clock.now) == .opened(for: .seconds(10)))
        clock.advance(by: .seconds(4))
        #expect(breaker.admit(now: clock.now) == .reject(retryIn: .seconds(6)))
        #expect(breaker.state == .open(until: start + .seconds(11)))
    }

    @Test("the cooldown rejects a nanosecond before its end and lets exactly one probe through at its end")
    func cooldownCutoff() {
        var breaker = Breaker(settings: .init(failureThreshold: 1, cooldown: .seconds(10)))
        #expect(breaker.record(failure: true, now: clock.now) == .opened(for: .seconds(10)))
        clock.advance(by: .seconds(10) - .nanoseconds(1))
        #expect(breaker.admit(now: clock.now) == .reject(retryIn: .nanoseconds(1)))
        clock.advance(by: .nanoseconds(1))
        #expect(breaker.admit(now: clock.now) == .probe)
        clock.advance(by: .milliseconds(500))
        #expect(breaker.admit(now: clock.now) == .reject(retryIn: Breaker.probeWait))
        #expect(breaker.record(failure: false, now: clock.now) == .closed)
        #expect(breaker.admit(now: clock.now) == .allow)
    }

    @Test("a failed probe opens the circuit for another cooldown")
    func probeFails() {
        var breaker = Breaker(settings: .init(failureThreshold: 2, cooldown: .seconds(5)))
        _ = breaker.record(failure: true, now: clock.now)
        #expect(breaker.record(failure: true, now: clock.now) == .opened(for: .seconds(5)))
        clock.advance(by: .seconds(5))
        #expect(breaker.admit(now: clock.now) == .probe)
        clock.advance(by: .seconds(1))
        #expect(breaker.record(failure: true, now: clock.now) == .opened(for: .seconds(5)))
        clock.advance(by: .seconds(4))
        #expect(breaker.admit(now: clock.now) == .reject(retryIn: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(breaker.admit(now: clock.now) == .probe)
    }

    /// A probe is replaced after the cooldown, but never sooner than `probeWait`.
    @Test("a probe that never reports is replaced after max(cooldown, probeWait), not a nanosecond sooner; an abandoned one at once",
          arguments: [(Duration.seconds(3), Duration.seconds(3)), (.milliseconds(100), CircuitBreaker.probeWait)])
    func lostProbe(cooldown: Duration, replacedAfter: Duration) {
        var breaker = Breaker(settings: .init(failureThreshold: 1, cooldown: cooldown))
        _ = breaker.record(failure: true, now: clock.now)
        clock.advance(by: cooldown)
        #expect(breaker.admit(now: clock.now) == .probe)
        clock.advance(by: replacedAfter - .nanoseconds(1))
        #expect(breaker.admit(now: clock.now) == .reject(retryIn: Breaker.probeWait))
        clock.advance(by: .nanoseconds(1))
        #expect(breaker.admit(now: clock.now) == .probe)
        clock.advance(by: .milliseconds(100))
        breaker.abandonProbe(now: clock.now)
        #expect(breaker.admit(now: clock.now) == .probe)
    }

    @Test("late results while open: a failure changes nothing, a success closes")
    func lateResults() {
        let start = clock.now
        var breaker = Breaker(settings: .init(failureThreshold: 1, cooldown: .seconds(30)))
        _ = breaker.record(failure: true, now: clock.now)
        clock.advance(by: .seconds(1))
        #expect(breaker.record(failure: true, now: clock.now) == .none)
        #expect(breaker.state == .open(until: start + .seconds(30)))
        clock.advance(by: .seconds(1))
        #expect(breaker.record(failure: false, now: clock.now) == .closed)
        #expect(breaker.admit(now: clock.now) == .allow)
    }
}

@Suite("email rendering")
struct EmailMessageTests {
    @Test("RFC 4648 base64 vectors", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func base64(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
    }

    @Test("a rendered message has its headers, CRLF lines and a base64 body that decodes back")
    func render() throws {
        let text = EmailMessage.render(
            from: "jobd@example.com", to: "ops@example.org", subject: "Disk full", body: "line 1\nline 2\r\n.dot\n",
            idempotencyKey: "k-1", date: 784_111_777)
        let (head, body) = try #require(text.split(separator: "\r\n\r\n", maxSplits: 1).map(String.init).pairs)
        let headers = head.components(separatedBy: "\r\n")
        #expect(headers.contains("From: <jobd@example.com>"))
        #expect(headers.contains("To: <ops@example.org>"))
        #expect(headers.contains("Subject: Disk full"))
        #expect(headers.contains("Date: Sun, 06 Nov 1994 08:49:37 +0000"))
        #expect(headers.contains("Idempotency-Key: k-1"))
        #expect(headers.contains("Content-Transfer-Encoding: base64"))
        #expect(headers.contains("Message-ID: \(EmailMessage.messageID(idempotencyKey: "k-1", from: "jobd@example.com"))"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        let lines = body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.allSatisfy { $0.count <= 76 })
        let decoded = try #require(Data(base64Encoded: lines.joined()))
        #expect(String(decoding: decoded, as: UTF8.self) == "line 1\r\nline 2\r\n.dot\r\n")
    }

    @Test("Message-ID is stable per key and differs between keys")
    func messageID() {
        let a = EmailMessage.messageID(idempotencyKey: "order-1", from: "x@example.com")
        #expect(a == EmailMessage.messageID(idempotencyKey: "order-1", from: "x@example.com"))
        #expect(a != EmailMessage.messageID(idempotencyKey: "order-2", from: "x@example.com"))
        #expect(a.hasPrefix("<") && a.hasSuffix("@example.com>") && a.count == 32 + 2 + 12)
    }

    @Test("non-ASCII subjects become folded UTF-8 encoded-words")
    func subject() throws {
        let subject = String(repeating: "Größe überschritten ", count: 4)
        let encoded = EmailMessage.encodeHeader(subject)
        let words = encoded.components(separatedBy: "\r\n ")
        #expect(words.count > 1)
        var decoded = Data()
        for word in words {
            #expect(word.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            decoded += try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
        }
        #expect(String(decoding: decoded, as: UTF8.self) == subject)
        #expect(EmailMessage.encodeHeader("plain ASCII") == "plain ASCII")
    }
}

extension Array {
    /// The two elements of a two-element array.
    fileprivate var pairs: (Element, Element)? { count == 2 ? (self[0], self[1]) : nil }
}
