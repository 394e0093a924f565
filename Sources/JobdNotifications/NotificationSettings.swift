import JobdCore

/// The notification tier's settings (`JOBD_WEBHOOK_*`, `JOBD_SMTP_*`, `JOBD_SMS_*`,
/// `JOBD_NOTIFY_*`), read and bounded by `read`.
public struct NotificationSettings: Sendable, Equatable {
    /// `JOBD_SMTP_STARTTLS`; the same modes a campaign's account names.
    public typealias StartTLS = SMTPStartTLS

    /// HMAC-SHA256 key for webhook signatures, for hosts without a key of their own
    /// in `webhookHostSecrets`. A webhook to a host with neither is refused.
    public var webhookSecret: SecretText?
    /// Per destination host (lower case, no trailing dot): its own signing key, so a
    /// receiver holding one key cannot forge requests to another (`JOBD_WEBHOOK_SECRETS`).
    public var webhookHostSecrets: [String: SecretText]
    /// nil: any host.
    public var webhookAllowedHosts: HostAllowList?
    /// The relay all email goes through; email is refused while unset.
    public var smtpRelay: SMTPRelay?
    /// The envelope and `From:` address.
    public var smtpFrom: String?
    /// nil: `require` when the relay URL carries credentials, `try` otherwise (see
    /// `effectiveStartTLS`).
    public var smtpStartTLS: StartTLS?
    /// The SMS provider's endpoint; SMS is refused while unset.
    public var smsURL: EndpointURL?
    /// Sent as `Authorization: Bearer …` to the SMS provider.
    public var smsToken: SecretText?
    /// Which addresses webhooks and SMS may connect to (`JOBD_NOTIFY_ALLOWED_NETWORKS`).
    /// The SMTP relay is exempt: the operator chose it, and producers only name
    /// recipients, which the relay routes.
    public var networkPolicy: OutboundNetworkPolicy
    /// To establish a connection (TCP + TLS).
    public var connectTimeout: Duration
    /// For a whole transfer, connect included.
    public var timeout: Duration
    /// Per destination, per process; nil = unlimited.
    public var rateLimit: TokenBucket.Settings?
    /// Per destination, per process.
    public var breaker: CircuitBreaker.Settings
    /// Transfers at once, per process: each runs on its own thread with its own
    /// libcurl handle (and that handle's kept-alive connections). The default matches
    /// the default `JOBD_WORKERS`, so a notification job never waits for a transfer worker.
    public var concurrency: Int

    public init(
        webhookSecret: SecretText? = nil, webhookHostSecrets: [String: SecretText] = [:],
        webhookAllowedHosts: HostAllowList? = nil, smtpRelay: SMTPRelay? = nil,
        smtpFrom: String? = nil, smtpStartTLS: StartTLS? = nil, smsURL: EndpointURL? = nil, smsToken: SecretText? = nil,
        networkPolicy: OutboundNetworkPolicy = OutboundNetworkPolicy(), connectTimeout: Duration = .seconds(5),
        timeout: Duration = .seconds(30),
        rateLimit: TokenBucket.Settings? = TokenBucket.Settings(rate: 50, burst: 50),
        breaker: CircuitBreaker.Settings = CircuitBreaker.Settings(failureThreshold: 5, cooldown: .seconds(30)),
        concurrency: Int = 16
    ) {
        self.webhookSecret = webhookSecret
        self.webhookHostSecrets = webhookHostSecrets
        self.webhookAllowedHosts = webhookAllowedHosts
        self.smtpRelay = smtpRelay
        self.smtpFrom = smtpFrom
        self.smtpStartTLS = smtpStartTLS
        self.smsURL = smsURL
        self.smsToken = smsToken
        self.networkPolicy = networkPolicy
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.rateLimit = rateLimit
        self.breaker = breaker
        self.concurrency = concurrency
    }

    public static let defaults = NotificationSettings()

    /// The STARTTLS mode in force: the configured one, else `require` when the relay
    /// carries credentials (they must never cross in clear) and `try` otherwise.
    public var effectiveStartTLS: StartTLS {
        smtpStartTLS ?? (smtpRelay?.username != nil || smtpRelay?.password != nil ? .require : .try)
    }

    /// The key webhooks to `host` are signed with: the host's own, else the default.
    public func webhookSecret(forHost host: String) -> SecretText? {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return webhookHostSecrets[name] ?? webhookSecret
    }

    /// How long a claimed notification stays `sending` before another run may take
    /// it over: the longest transfer (the total timeout includes connecting) plus
    /// room for the claim's and the final write's round trips, so a live sender is
    /// never overtaken. Also how long a crashed sender delays the next try.
    public var sendingWindow: Duration { timeout + .seconds(15) }

    /// Where a request goes and what the rate limiter and breaker count it by, or a
    /// permanent failure when the destination is not allowed or not configured.
    public func route(_ request: NotificationRequest) throws(JobFailure) -> NotificationRoute {
        switch request.channel {
        case .webhook:
            guard let url = EndpointURL(parsing: request.to) else {
                throw JobFailure.permanent("webhook URL is invalid", code: "payload_invalid")
            }
            if let allowed = webhookAllowedHosts, !allowed.allows(host: url.host) {
                throw JobFailure.permanent(
                    "webhook host \(url.host) is not in JOBD_WEBHOOK_ALLOWED_HOSTS", code: "destination_not_allowed")
            }
            guard webhookSecret(forHost: url.host) != nil else {
                throw JobFailure.permanent(
                    "webhooks are signed and neither JOBD_WEBHOOK_SECRET nor a JOBD_WEBHOOK_SECRETS entry for \(url.host) is set; set one and retry the dead letter",
                    code: "channel_not_configured")
            }
            return NotificationRoute(endpoint: url.text, destinationKey: url.destinationKey)
        case .email:
            guard let relay = smtpRelay, smtpFrom != nil else {
                throw JobFailure.permanent(
                    "email needs JOBD_SMTP_URL and JOBD_SMTP_FROM; set them and retry the dead letter",
                    code: "channel_not_configured")
            }
            return NotificationRoute(endpoint: relay.curlURL, destinationKey: relay.destinationKey)
        case .sms:
            guard let url = smsURL else {
                throw JobFailure.permanent(
                    "sms needs JOBD_SMS_URL; set it and retry the dead letter", code: "channel_not_configured")
            }
            return NotificationRoute(endpoint: url.text, destinationKey: url.destinationKey)
        }
    }
}

/// Where one notification is sent.
public struct NotificationRoute: Sendable, Equatable {
    /// The URL the transport connects to (webhook URL, SMS endpoint, SMTP relay).
    public var endpoint: String
    /// `scheme://host:port`: the unit of rate limiting and circuit breaking.
    public var destinationKey: String

    public init(endpoint: String, destinationKey: String) {
        self.endpoint = endpoint
        self.destinationKey = destinationKey
    }
}

extension ConfigurationKey {
    public static let webhookSecret = ConfigurationKey("JOBD_WEBHOOK_SECRET", secret: true)
    public static let webhookSecrets = ConfigurationKey("JOBD_WEBHOOK_SECRETS", secret: true)
    public static let webhookAllowedHosts = ConfigurationKey("JOBD_WEBHOOK_ALLOWED_HOSTS")
    public static let notifyAllowedNetworks = ConfigurationKey("JOBD_NOTIFY_ALLOWED_NETWORKS")
    public static let smtpURL = ConfigurationKey("JOBD_SMTP_URL", secret: true)
    public static let smtpFrom = ConfigurationKey("JOBD_SMTP_FROM")
    public static let smtpStartTLS = ConfigurationKey("JOBD_SMTP_STARTTLS")
    public static let smsURL = ConfigurationKey("JOBD_SMS_URL")
    public static let smsToken = ConfigurationKey("JOBD_SMS_TOKEN", secret: true)
    public static let notifyConnectTimeout = ConfigurationKey("JOBD_NOTIFY_CONNECT_TIMEOUT")
    public static let notifyTimeout = ConfigurationKey("JOBD_NOTIFY_TIMEOUT")
    public static let notifyRate = ConfigurationKey("JOBD_NOTIFY_RATE")
    public static let notifyBurst = ConfigurationKey("JOBD_NOTIFY_BURST")
    public static let notifyBreakerFailures = ConfigurationKey("JOBD_NOTIFY_BREAKER_FAILURES")
    public static let notifyBreakerCooldown = ConfigurationKey("JOBD_NOTIFY_BREAKER_COOLDOWN")
    public static let notifyConcurrency = ConfigurationKey("JOBD_NOTIFY_CONCURRENCY")
}

extension NotificationSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [
        .webhookSecret, .webhookSecrets, .webhookAllowedHosts, .notifyAllowedNetworks, .smtpURL, .smtpFrom, .smtpStartTLS,
        .smsURL, .smsToken, .notifyConnectTimeout, .notifyTimeout, .notifyRate, .notifyBurst, .notifyBreakerFailures,
        .notifyBreakerCooldown, .notifyConcurrency,
    ]

    /// The notification keys; the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> NotificationSettings {
        var settings = NotificationSettings.defaults
        if let secret = reader.text(.webhookSecret) {
            // HMAC keys shorter than this are guessable; the value itself is never shown.
            guard secret.utf8.count >= 16 else { throw reader.invalid(.webhookSecret, secret, "use at least 16 characters") }
            settings.webhookSecret = SecretText(secret)
        }
        if let text = reader.text(.webhookSecrets) {
            settings.webhookHostSecrets = try parseHostSecrets(text)
        }
        if let text = reader.text(.notifyAllowedNetworks) {
            guard let blocks = OutboundNetworkPolicy.parseNetworks(text) else {
                throw reader.invalid(
                    .notifyAllowedNetworks, text,
                    "expected CIDR blocks separated by commas, e.g. 127.0.0.0/8,::1/128 (network addresses: host bits zero)")
            }
            settings.networkPolicy = OutboundNetworkPolicy(allowed: blocks)
        }
        if let text = reader.text(.webhookAllowedHosts) {
            guard let list = HostAllowList(parsing: text) else {
                throw reader.invalid(.webhookAllowedHosts, text, "expected host names or *.domain patterns separated by commas")
            }
            settings.webhookAllowedHosts = list
        }
        if let text = reader.text(.smtpURL) {
            guard let relay = SMTPRelay(parsing: text) else {
                throw reader.invalid(.smtpURL, text, "expected smtp://[user[:password]@]host[:port] or smtps://…")
            }
            settings.smtpRelay = relay
        }
        if let text = reader.text(.smtpFrom) {
            guard EmailAddress.isValid(text) else { throw reader.invalid(.smtpFrom, text, "expected an address such as jobd@example.com") }
            settings.smtpFrom = text
        }
        if let text = reader.text(.smtpStartTLS) {
            guard let mode = StartTLS(rawValue: text.lowercased()) else {
                throw reader.invalid(.smtpStartTLS, text, "expected off, try or require")
            }
            settings.smtpStartTLS = mode
            // Credentials over plain SMTP would cross in clear whenever the relay (or
            // whoever strips its STARTTLS offer) does not offer TLS.
            if let relay = settings.smtpRelay, !relay.implicitTLS, relay.username != nil || relay.password != nil, mode != .require {
                throw reader.invalid(
                    .smtpStartTLS, text,
                    "JOBD_SMTP_URL carries credentials, which must not cross in clear: use require (the default with credentials) or smtps://")
            }
        }
        if let text = reader.text(.smsURL) {
            guard let url = EndpointURL(parsing: text) else {
                throw reader.invalid(.smsURL, text, "expected an http:// or https:// URL without user info")
            }
            settings.smsURL = url
        }
        if let token = reader.text(.smsToken) {
            guard !token.contains(where: { $0.isNewline }) else { throw reader.invalid(.smsToken, token, "must be one line") }
            settings.smsToken = SecretText(token)
        }
        settings.connectTimeout = try reader.duration(.notifyConnectTimeout, default: settings.connectTimeout, min: 0.1)
        settings.timeout = try reader.duration(.notifyTimeout, default: settings.timeout, min: 0.1)
        if settings.timeout > .seconds(3_600) {
            throw reader.invalid(.notifyTimeout, reader.text(.notifyTimeout) ?? "", "must be at most 3600 s")
        }
        if let text = reader.text(.notifyRate) {
            if text == "0" || text.lowercased() == "off" {
                settings.rateLimit = nil
            } else {
                guard let rate = Double(text), rate.isFinite, rate > 0, rate <= 1_000_000 else {
                    throw reader.invalid(.notifyRate, text, "expected sends per second per destination (e.g. 50 or 0.5), or off")
                }
                settings.rateLimit = TokenBucket.Settings(rate: rate, burst: max(1, rate))
            }
        }
        if let text = reader.text(.notifyBurst) {
            guard let burst = Int(text), (1...1_000_000).contains(burst) else {
                throw reader.invalid(.notifyBurst, text, "must be a whole number between 1 and 1000000")
            }
            guard let rate = settings.rateLimit else {
                throw reader.invalid(.notifyBurst, text, "a burst needs a rate (JOBD_NOTIFY_RATE is off)")
            }
            settings.rateLimit = TokenBucket.Settings(rate: rate.rate, burst: Double(burst))
        }
        let failures = try reader.integer(.notifyBreakerFailures, default: settings.breaker.failureThreshold, range: 1...10_000)
        let cooldown = try reader.duration(.notifyBreakerCooldown, default: settings.breaker.cooldown, min: 0.1)
        settings.breaker = CircuitBreaker.Settings(failureThreshold: failures, cooldown: cooldown)
        settings.concurrency = try reader.integer(.notifyConcurrency, default: settings.concurrency, range: 1...256)
        return settings
    }

    /// `hooks.example.com=secretA,other.example=secretB`: exact host names (no
    /// wildcards), each key at least 16 characters and without commas. Never echoes a key.
    private static func parseHostSecrets(_ text: String) throws(ConfigurationError) -> [String: SecretText] {
        var secrets: [String: SecretText] = [:]
        for (index, part) in text.split(separator: ",").enumerated() {
            let entry = String(part).trimmingSpaces()
            guard !entry.isEmpty else { continue }
            func bad(_ reason: String) -> ConfigurationError {
                ConfigurationError(key: ConfigurationKey.webhookSecrets.rawValue, reason: "entry \(index + 1): \(reason)")
            }
            guard let equals = entry.firstIndex(of: "=") else { throw bad("expected host=secret") }
            var host = String(entry[..<equals]).trimmingSpaces().lowercased()
            let secret = String(entry[entry.index(after: equals)...]).trimmingSpaces()
            if host.hasSuffix(".") { host.removeLast() }
            guard !host.isEmpty, host.utf8.count <= 253,
                  host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" || $0 == ":" }) else {
                throw bad("\"\(host)\" is not a host name (exact names only, no wildcards)")
            }
            guard secret.utf8.count >= 16 else { throw bad("the secret for \(host) must have at least 16 characters") }
            guard secrets[host] == nil else { throw bad("\(host) is given twice") }
            secrets[host] = SecretText(secret)
        }
        guard !secrets.isEmpty else {
            throw ConfigurationError(key: ConfigurationKey.webhookSecrets.rawValue, reason: "expected host=secret entries separated by commas")
        }
        return secrets
    }
}
