/// How an `smtp://` relay is secured (`JOBD_SMTP_STARTTLS`, a campaign account's mode);
/// here because the JobdNotify adapter takes it.
public enum SMTPStartTLS: String, Sendable, Equatable, CaseIterable {
    /// Plain SMTP, even if the relay offers STARTTLS.
    case off
    /// STARTTLS when the relay offers it, plain otherwise.
    case `try`
    /// STARTTLS or fail.
    case require
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
