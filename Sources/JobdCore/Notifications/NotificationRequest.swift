/// How a notification travels.
public enum NotificationChannel: String, Sendable, CaseIterable, Equatable {
    /// HTTP POST of a JSON object, signed with HMAC-SHA256.
    case webhook
    /// SMTP through the configured relay.
    case email
    /// HTTP POST to the configured SMS provider endpoint.
    case sms
}

/// A validated `notification.send` payload.
///
/// ```json
/// {"channel": "webhook", "to": "https://hooks.example.com/orders", "body": {"order": 42},
///  "idempotency_key": "order-42-shipped"}
/// {"channel": "email", "to": "ops@example.com", "subject": "Disk full", "body": "…", "idempotency_key": "…"}
/// {"channel": "sms", "to": "+15551234567", "body": "Your code is 123456", "idempotency_key": "…"}
/// ```
public struct NotificationRequest: Sendable, Equatable {
    public var channel: NotificationChannel
    /// URL (webhook), address (email) or E.164 number (sms).
    public var to: String
    /// Email only.
    public var subject: String?
    /// The exact bytes sent as the body: canonical JSON text for webhooks, the text otherwise.
    public var body: String
    /// Keys the notification row: a notification with this key is sent at most once.
    public var idempotencyKey: String

    public init(channel: NotificationChannel, to: String, subject: String? = nil, body: String, idempotencyKey: String) {
        self.channel = channel
        self.to = to
        self.subject = subject
        self.body = body
        self.idempotencyKey = idempotencyKey
    }

    public static let kind = "notification.send"
    public static let maxKeyLength = 200
    public static let maxSubjectLength = 500
    public static let maxSMSLength = 1_600
    public static let maxBodyBytes = 1 << 20

    /// Validates a decoded payload. Every problem is a permanent `payload_invalid`
    /// failure naming the field: a malformed notification can never succeed.
    public init(payload object: [String: JSONValue]) throws(JobFailure) {
        func invalid(_ message: String) -> JobFailure {
            .permanent("\(Self.kind) payload: \(message)", code: "payload_invalid")
        }
        let known: Set<String> = ["channel", "to", "subject", "body", "idempotency_key"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("unknown field \"\(unknown)\" (known: channel, to, subject, body, idempotency_key)")
        }
        guard case .string(let channelText)? = object["channel"], let channel = NotificationChannel(rawValue: channelText) else {
            throw invalid("channel must be \"webhook\", \"email\" or \"sms\"")
        }
        guard case .string(let key)? = object["idempotency_key"], !key.isEmpty, key.utf8.count <= Self.maxKeyLength,
              key.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) else {
            throw invalid("idempotency_key must be 1…\(Self.maxKeyLength) visible ASCII characters (no spaces)")
        }
        guard case .string(let to)? = object["to"] else { throw invalid("to must be a string") }

        var subject: String?
        let body: String
        switch channel {
        case .webhook:
            guard EndpointURL(parsing: to) != nil else {
                throw invalid("to must be an http:// or https:// URL without user info")
            }
            guard object["subject"] == nil else { throw invalid("subject is for email only") }
            guard case .object? = object["body"], let value = object["body"] else {
                throw invalid("body must be a JSON object for webhooks")
            }
            guard value.depth <= 64 else { throw invalid("body nests deeper than 64 levels") }
            body = value.canonicalText
        case .email:
            guard EmailAddress.isValid(to) else { throw invalid("to must be an email address (local@domain)") }
            guard case .string(let text)? = object["subject"], !text.isEmpty, text.utf8.count <= Self.maxSubjectLength,
                  !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw invalid("subject must be a single line of 1…\(Self.maxSubjectLength) bytes for email")
            }
            subject = text
            guard case .string(let text)? = object["body"] else { throw invalid("body must be a string for email") }
            body = text
        case .sms:
            guard PhoneNumber.isValid(to) else { throw invalid("to must be an E.164 number such as +15551234567") }
            guard object["subject"] == nil else { throw invalid("subject is for email only") }
            guard case .string(let text)? = object["body"], !text.isEmpty, text.count <= Self.maxSMSLength else {
                throw invalid("body must be a string of 1…\(Self.maxSMSLength) characters for sms")
            }
            body = text
        }
        guard body.utf8.count <= Self.maxBodyBytes else { throw invalid("body is over \(Self.maxBodyBytes) bytes") }
        self.init(channel: channel, to: to, subject: subject, body: body, idempotencyKey: key)
    }
}

/// An `http(s)://` URL as jobd accepts it for webhooks and the SMS provider:
/// no user info (credentials do not belong in stored, logged URLs), no spaces or
/// control characters. Only what the allow-list and the rate limiter need is parsed.
public struct EndpointURL: Sendable, Equatable {
    public var text: String
    public var isTLS: Bool
    /// Lower-cased, without brackets for IPv6.
    public var host: String
    public var port: Int

    public init?(parsing text: String) {
        guard text.utf8.count <= 2_048,
              !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else { return nil }
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst("https://".count)
        } else if lower.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst("http://".count)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@"), let hostPort = HostPort(parsing: authority, defaultPort: isTLS ? 443 : 80) else {
            return nil
        }
        self.text = text
        host = hostPort.host
        port = hostPort.port
    }

    /// What the rate limiter and the circuit breaker count by.
    public var destinationKey: String { "\(isTLS ? "https" : "http")://\(HostPort.render(host: host, port: port))" }
}

/// `host[:port]` or `[v6][:port]`.
struct HostPort {
    var host: String
    var port: Int

    init?(parsing authority: Substring, defaultPort: Int) {
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
            guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
            }
            if hostPart.hasSuffix(".") { hostPart = hostPart.dropLast() }
            guard !hostPart.isEmpty, hostPart.utf8.count <= 253,
                  hostPart.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
                return nil
            }
        }
        var port = defaultPort
        if let portPart {
            guard let number = Int(portPart), (1...65_535).contains(number) else { return nil }
            port = number
        }
        host = hostPart.lowercased()
        self.port = port
    }

    static func render(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Which webhook hosts may be called. `nil` patterns (unset) allow any host.
///
/// A pattern is a host name (`hooks.example.com`, exact) or `*.example.com` (any
/// subdomain, not the apex). Matching ignores case and a trailing dot.
public struct HostAllowList: Sendable, Equatable {
    public var patterns: [String]

    public init?(parsing text: String) {
        let patterns = text.split(separator: ",").map { String($0).trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
        guard !patterns.isEmpty else { return nil }
        for pattern in patterns {
            let name = pattern.hasPrefix("*.") ? String(pattern.dropFirst(2)) : pattern
            guard !name.isEmpty, !name.contains("*"), !name.contains("/"), !name.contains(where: \.isWhitespace) else {
                return nil
            }
        }
        self.patterns = patterns.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 }
    }

    public func allows(host: String) -> Bool {
        var host = host.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        return patterns.contains { pattern in
            if pattern.hasPrefix("*.") {
                let suffix = pattern.dropFirst(1)  // ".example.com"
                return host.hasSuffix(suffix) && host.count > suffix.count
            }
            return host == pattern
        }
    }
}

/// A deliberately plain check: one `@`, no spaces, no characters that could break
/// an SMTP command or a header (`<>`, CR, LF, `,`, `;`, quotes).
public enum EmailAddress {
    public static func isValid(_ text: String) -> Bool {
        guard text.utf8.count <= 254 else { return false }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64, !parts[1].isEmpty,
              parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            scalar.value > 0x20 && scalar.value != 0x7F && !"<>()[]\\,;:\"".unicodeScalars.contains(scalar)
        }
    }

    /// The part after `@`.
    public static func domain(_ address: String) -> String {
        address.split(separator: "@").last.map(String.init) ?? address
    }
}

/// E.164: `+`, then 8 to 15 digits, the first not 0.
public enum PhoneNumber {
    public static func isValid(_ text: String) -> Bool {
        let digits = text.utf8.dropFirst()
        return text.hasPrefix("+") && (8...15).contains(digits.count)
            && digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            && digits.first != UInt8(ascii: "0")
    }
}

extension JSONValue {
    /// Compact JSON with object keys sorted: the same value always gives the same
    /// bytes, so a signature and an idempotency comparison are stable. Whole numbers
    /// up to 2^53 print without a fraction; others in Swift's shortest round-trip form.
    public var canonicalText: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .number(let value):
            if value == value.rounded(), abs(value) <= 9_007_199_254_740_992 {
                out += String(Int64(value))
            } else {
                out += "\(value)"
            }
        case .string(let value): Self.appendQuoted(value, to: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                Self.appendQuoted(key, to: &out)
                out += ":"
                fields[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string literal, appended to `out`: quotes, backslashes and
    /// control characters escaped, and U+2028/U+2029 too (JavaScript embedders choke
    /// on them raw). The one string quoting of canonical JSON and the JSON log lines.
    public static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
