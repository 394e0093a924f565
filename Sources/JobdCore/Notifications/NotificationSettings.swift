/// The notification tier's settings (`JOBD_WEBHOOK_*`, `JOBD_SMTP_*`, `JOBD_SMS_*`,
/// `JOBD_NOTIFY_*`). Parsed with the rest of `DaemonConfiguration`.
public struct NotificationSettings: Sendable, Equatable {
    public enum StartTLS: String, Sendable, Equatable, CaseIterable {
        /// Plain SMTP, even if the relay offers STARTTLS.
        case off
        /// STARTTLS when the relay offers it, plain otherwise.
        case `try`
        /// STARTTLS or fail.
        case require
    }

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
        breaker: CircuitBreaker.Settings = CircuitBreaker.Settings(failureThreshold: 5, cooldown: 30),
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

/// A secret setting: its description is always `***`, so printing a configuration
/// (or an error that embeds one) cannot leak it.
public struct SecretText: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "***" }
    public var debugDescription: String { "***" }
}

/// `smtp://[user[:password]@]host[:port]` (STARTTLS per `JOBD_SMTP_STARTTLS`) or
/// `smtps://…` (TLS from the first byte). User and password are percent-decoded.
public struct SMTPRelay: Sendable, Equatable {
    public var implicitTLS: Bool
    public var host: String
    public var port: Int
    public var username: String?
    public var password: SecretText?

    public init?(parsing text: String) {
        let lower = text.lowercased()
        var rest: Substring
        if lower.hasPrefix("smtps://") {
            implicitTLS = true
            rest = text.dropFirst("smtps://".count)
        } else if lower.hasPrefix("smtp://") {
            implicitTLS = false
            rest = text.dropFirst("smtp://".count)
        } else {
            return nil
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?") else { return nil }
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                guard let user = percentDecoded(userInfo[..<colon]),
                      let password = percentDecoded(userInfo[userInfo.index(after: colon)...]) else { return nil }
                username = user
                self.password = SecretText(password)
            } else {
                guard let user = percentDecoded(userInfo) else { return nil }
                username = user
            }
            if username?.isEmpty == true { username = nil }
        }
        guard let hostPort = HostPort(parsing: rest, defaultPort: implicitTLS ? 465 : 25) else { return nil }
        host = hostPort.host
        port = hostPort.port
    }

    /// What libcurl connects to (credentials are passed apart, never in the URL).
    public var curlURL: String { "\(implicitTLS ? "smtps" : "smtp")://\(HostPort.render(host: host, port: port))" }
    public var destinationKey: String { curlURL }
}

private func percentDecoded(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        if byte == UInt8(ascii: "%") {
            guard let high = iterator.next(), let low = iterator.next(),
                  let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
        } else {
            bytes.append(byte)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}
