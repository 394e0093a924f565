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

    /// HMAC-SHA256 key for webhook signatures. Webhooks are refused while unset.
    public var webhookSecret: SecretText?
    /// nil: any host.
    public var webhookAllowedHosts: HostAllowList?
    /// The relay all email goes through; email is refused while unset.
    public var smtpRelay: SMTPRelay?
    /// The envelope and `From:` address.
    public var smtpFrom: String?
    public var smtpStartTLS: StartTLS
    /// The SMS provider's endpoint; SMS is refused while unset.
    public var smsURL: EndpointURL?
    /// Sent as `Authorization: Bearer …` to the SMS provider.
    public var smsToken: SecretText?
    /// Seconds to establish a connection (TCP + TLS).
    public var connectTimeout: Double
    /// Seconds for a whole transfer, connect included.
    public var timeout: Double
    /// Per destination, per process; nil = unlimited.
    public var rateLimit: TokenBucket.Settings?
    /// Per destination, per process.
    public var breaker: CircuitBreaker.Settings
    /// Transfers at once, per process: each runs on its own thread with its own
    /// libcurl handle (and that handle's kept-alive connections). The default matches
    /// the default `JOBD_WORKERS`, so a notification job never waits for a transfer worker.
    public var concurrency: Int

    public init(
        webhookSecret: SecretText? = nil, webhookAllowedHosts: HostAllowList? = nil, smtpRelay: SMTPRelay? = nil,
        smtpFrom: String? = nil, smtpStartTLS: StartTLS = .try, smsURL: EndpointURL? = nil, smsToken: SecretText? = nil,
        connectTimeout: Double = 5, timeout: Double = 30,
        rateLimit: TokenBucket.Settings? = TokenBucket.Settings(rate: 50, burst: 50),
        breaker: CircuitBreaker.Settings = CircuitBreaker.Settings(failureThreshold: 5, cooldown: 30),
        concurrency: Int = 16
    ) {
        self.webhookSecret = webhookSecret
        self.webhookAllowedHosts = webhookAllowedHosts
        self.smtpRelay = smtpRelay
        self.smtpFrom = smtpFrom
        self.smtpStartTLS = smtpStartTLS
        self.smsURL = smsURL
        self.smsToken = smsToken
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.rateLimit = rateLimit
        self.breaker = breaker
        self.concurrency = concurrency
    }

    public static let defaults = NotificationSettings()

    /// How long a claimed notification stays `sending` before another run may take
    /// it over: the longest transfer (the total timeout includes connecting) plus
    /// room for the claim's and the final write's round trips, so a live sender is
    /// never overtaken. Also how long a crashed sender delays the next try.
    public var sendingWindow: Double { timeout + 15 }

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
            guard webhookSecret != nil else {
                throw JobFailure.permanent(
                    "webhooks are signed and JOBD_WEBHOOK_SECRET is not set; set it and retry the dead letter",
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
