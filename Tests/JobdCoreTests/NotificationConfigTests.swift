import JobdCore
import JobdNotifications
import Testing

private typealias Key = ConfigurationKey

private func parse(_ values: [Key: String]) throws(ConfigurationError) -> NotificationSettings {
    try NotificationSettings.read(ConfigurationReader { values[$0] })
}

private func rejection(_ values: [Key: String]) -> ConfigurationError? {
    do {
        _ = try parse(values)
        return nil
    } catch {
        return error
    }
}

@Suite("notification configuration")
struct NotificationConfigTests {
    @Test("defaults: no channel configured, 5 s / 30 s timeouts, 50/s per destination, breaker 5 failures / 30 s, 16 transfers")
    func defaults() throws {
        let settings = try parse([:])
        #expect(settings == NotificationSettings.defaults)
        #expect(settings.webhookSecret == nil && settings.webhookAllowedHosts == nil)
        #expect(settings.smtpRelay == nil && settings.smtpFrom == nil && settings.smtpStartTLS == nil)
        #expect(settings.effectiveStartTLS == .try)
        #expect(settings.webhookHostSecrets.isEmpty)
        #expect(settings.networkPolicy == OutboundNetworkPolicy(allowed: []))
        #expect(settings.smsURL == nil && settings.smsToken == nil)
        #expect(settings.connectTimeout == .seconds(5) && settings.timeout == .seconds(30))
        #expect(settings.rateLimit == TokenBucket.Settings(rate: 50, burst: 50))
        #expect(settings.breaker == CircuitBreaker.Settings(failureThreshold: 5, cooldown: .seconds(30)))
        #expect(settings.concurrency == 16)
        #expect(settings.sendingWindow == .seconds(45))
    }

    @Test("every key parses")
    func everything() throws {
        let settings = try parse([
            .webhookSecret: "0123456789abcdef-secret", .webhookAllowedHosts: "hooks.example.com,*.partner.org",
            .smtpURL: "smtp://user:pw@relay.example:587", .smtpFrom: "jobd@example.com", .smtpStartTLS: "REQUIRE",
            .smsURL: "https://sms.example/v1/send", .smsToken: "tok-123",
            .notifyConnectTimeout: "250ms", .notifyTimeout: "1m", .notifyRate: "2.5", .notifyBurst: "10",
            .notifyBreakerFailures: "3", .notifyBreakerCooldown: "2m", .notifyConcurrency: "32",
        ])
        #expect(settings.webhookSecret?.value == "0123456789abcdef-secret")
        #expect(settings.webhookAllowedHosts?.patterns == ["hooks.example.com", "*.partner.org"])
        #expect(settings.smtpRelay?.username == "user" && settings.smtpRelay?.password?.value == "pw")
        #expect(settings.smtpRelay?.curlURL == "smtp://relay.example:587")
        #expect(settings.smtpFrom == "jobd@example.com")
        #expect(settings.smtpStartTLS == .require)
        #expect(settings.smsURL?.destinationKey == "https://sms.example:443")
        #expect(settings.smsToken?.value == "tok-123")
        #expect(settings.connectTimeout == .milliseconds(250) && settings.timeout == .seconds(60))
        #expect(settings.rateLimit == TokenBucket.Settings(rate: 2.5, burst: 10))
        #expect(settings.breaker == CircuitBreaker.Settings(failureThreshold: 3, cooldown: .seconds(120)))
        #expect(settings.concurrency == 32)
    }

    @Test("the rate limit can be switched off; a burst without a rate is refused")
    func rateOff() throws {
        #expect(try parse([.notifyRate: "0"]).rateLimit == nil)
        #expect(try parse([.notifyRate: "off"]).rateLimit == nil)
        #expect(try parse([.notifyRate: "0.5"]).rateLimit == TokenBucket.Settings(rate: 0.5, burst: 1))
        #expect(rejection([.notifyRate: "off", .notifyBurst: "5"])?.key == "JOBD_NOTIFY_BURST")
    }

    @Test("bad values are refused naming the key", arguments: [
        (DaemonConfiguration.Key.webhookAllowedHosts, "a/b"), (.smtpURL, "http://relay"), (.smtpFrom, "nobody"), (.smtpStartTLS, "maybe"),
        (.smsURL, "ftp://sms"), (.notifyConnectTimeout, "soon"), (.notifyTimeout, "0"), (.notifyTimeout, "2h"),
        (.notifyRate, "-1"), (.notifyRate, "fast"), (.notifyBurst, "0"), (.notifyBreakerFailures, "0"),
        (.notifyBreakerCooldown, "x"), (.notifyConcurrency, "0"), (.notifyConcurrency, "1000"),
    ])
    func rejected(key: DaemonConfiguration.Key, value: String) throws {
        let error = try #require(rejection([key: value]))
        #expect(error.key == key.rawValue)
        // A secret key's value is shown as ***.
        #expect(error.description.contains(key.isSecret ? "***" : value))
    }

    @Test("secrets are never echoed, even when they are what is wrong")
    func secretsHidden() throws {
        let short = try #require(rejection([.webhookSecret: "hunter2"]))
        #expect(short.key == "JOBD_WEBHOOK_SECRET")
        #expect(!short.description.contains("hunter2"))
        let relay = try #require(rejection([.smtpURL: "smtp://u:hunter2@relay/x"]))
        #expect(relay.key == "JOBD_SMTP_URL")
        #expect(!relay.description.contains("hunter2"))
        let settings = try parse([.webhookSecret: "0123456789abcdef-hunter2", .smsToken: "hunter2"])
        #expect(!"\(settings)".contains("hunter2"))
        #expect("\(SecretText("hunter2"))" == "***")
        #expect(Key.webhookSecret.isSecret && Key.smtpURL.isSecret && Key.smsToken.isSecret)
        #expect(!Key.webhookAllowedHosts.isSecret && !Key.smtpFrom.isSecret && !Key.smsURL.isSecret)
    }

    @Test("JOBD_WEBHOOK_SECRETS gives hosts keys of their own beside the default one")
    func hostSecrets() throws {
        let settings = try parse([
            .webhookSecret: "default-secret-0123456789",
            .webhookSecrets: "hooks.example.com=secretA-0123456789abc, Other.Example.=secretB-0123456789abc",
        ])
        #expect(settings.webhookHostSecrets.mapValues(\.value) == [
            "hooks.example.com": "secretA-0123456789abc", "other.example": "secretB-0123456789abc",
        ])
        #expect(settings.webhookSecret(forHost: "HOOKS.example.com")?.value == "secretA-0123456789abc")
        #expect(settings.webhookSecret(forHost: "other.example.")?.value == "secretB-0123456789abc")
        #expect(settings.webhookSecret(forHost: "third.example")?.value == "default-secret-0123456789")
        // Without a default, only the listed hosts have a key.
        let only = try parse([.webhookSecrets: "hooks.example.com=secretA-0123456789abc"])
        #expect(only.webhookSecret(forHost: "third.example") == nil)
        let hosts = NotificationRequest(channel: .webhook, to: "https://third.example/x", body: "{}", idempotencyKey: "k")
        #expect(throws: JobFailure.self) { try only.route(hosts) }
    }

    @Test("bad JOBD_WEBHOOK_SECRETS entries are refused without echoing any key", arguments: [
        "hooks.example.com", "hooks.example.com=short-hunter2", "=hunter2-0123456789abcdef",
        "*.example.com=hunter2-0123456789abcdef", "a.example=hunter2-0123456789abcdef,a.example=hunter2-0123456789abcdeX", ",",
    ])
    func hostSecretsRejected(value: String) throws {
        let error = try #require(rejection([.webhookSecrets: value]))
        #expect(error.key == "JOBD_WEBHOOK_SECRETS")
        #expect(!error.description.contains("hunter2"))
    }

    @Test("JOBD_NOTIFY_ALLOWED_NETWORKS is a CIDR list; a malformed block or one with host bits set is refused")
    func allowedNetworks() throws {
        let settings = try parse([.notifyAllowedNetworks: "127.0.0.0/8, ::1/128,10.1.2.3"])
        #expect(settings.networkPolicy.allowed.map(\.description) == ["127.0.0.0/8", "::1/128", "10.1.2.3/32"])
        for bad in ["127.0.0.1/8", "10.0.0.0/33", "::1/129", "localhost", "127.0.0.0/", "0177.0.0.0/8", "fe80::1%eth0/128"] {
            let error = try #require(rejection([.notifyAllowedNetworks: bad]), "\(bad)")
            #expect(error.key == "JOBD_NOTIFY_ALLOWED_NETWORKS")
            #expect(error.description.contains("CIDR"))
        }
    }

    @Test("with credentials STARTTLS defaults to require; try or off with credentials over smtp:// is refused")
    func startTLSWithCredentials() throws {
        #expect(try parse([.smtpURL: "smtp://u:pw@relay.example"]).effectiveStartTLS == .require)
        #expect(try parse([.smtpURL: "smtp://u@relay.example"]).effectiveStartTLS == .require)
        #expect(try parse([.smtpURL: "smtp://relay.example"]).effectiveStartTLS == .try)
        #expect(try parse([.smtpURL: "smtp://relay.example", .smtpStartTLS: "off"]).effectiveStartTLS == .off)
        #expect(try parse([.smtpURL: "smtps://u:pw@relay.example", .smtpStartTLS: "try"]).effectiveStartTLS == .try)
        #expect(try parse([.smtpURL: "smtp://u:pw@relay.example", .smtpStartTLS: "require"]).effectiveStartTLS == .require)
        for mode in ["try", "off"] {
            let error = try #require(rejection([.smtpURL: "smtp://u:hunter2@relay.example", .smtpStartTLS: mode]))
            #expect(error.key == "JOBD_SMTP_STARTTLS")
            #expect(error.description.contains("in clear") && !error.description.contains("hunter2"))
        }
    }

    @Test("file keys are the variable names in lower case")
    func fileKeys() {
        #expect(Key.webhookSecret.fileKey == "webhook_secret")
        #expect(Key.notifyBreakerCooldown.fileKey == "notify_breaker_cooldown")
    }
}
