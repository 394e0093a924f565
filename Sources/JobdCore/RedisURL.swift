/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
///
/// `description` is the redacted form, so interpolating a `RedisURL` into a log line
/// can never leak the password.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A hostname, an IPv4 address, or an IPv6 address without brackets (`::1`).
    public var host: String
    public var port: Int
    /// Secret: never log it; use `redacted`.
    public var password: String?
    /// An ACL user (Redis 6+); nil authenticates as `default`.
    public var username: String?
    public var database: Int

    public init(host: String, port: Int = 6379, password: String? = nil, username: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.password = password
        self.username = username
        self.database = database
    }

    /// Parses a URL; every error message starts with `key` and never quotes the
    /// credentials.
    public init(parsing text: String, key: String = "JOBD_REDIS_URL") throws(JobdInputError) {
        func fail(_ problem: String) -> JobdInputError { JobdInputError("\(key): \(problem)") }

        guard let schemeEnd = text.firstRange(of: "://") else {
            throw fail(#"expected a URL like redis://host:6379/0 (missing "redis://")"#)
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else {
            if scheme == "rediss" {
                throw fail("rediss:// (TLS) is not supported; use redis://")
            }
            throw fail(#"scheme "\#(scheme)" is not supported; use redis://"#)
        }
        var rest = text[schemeEnd.upperBound...]

        // Credentials end at the last "@": a raw password may contain "/", "?", "#"
        // or even "@", while host, port and db never contain "@".
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw fail(#"credentials must be written as [user]:password@ (the ":" is missing)"#)
            }
            guard let user = Self.percentDecoded(userInfo[..<colon]) else {
                throw fail("username has an invalid %-escape")
            }
            guard let secret = Self.percentDecoded(userInfo[userInfo.index(after: colon)...]) else {
                throw fail("password has an invalid %-escape")
            }
            guard !secret.isEmpty else { throw fail(#"password after ":" is empty"#) }
            username = user.isEmpty ? nil : user
            password = secret
        }

        // Not quoted: a query could carry a secret (`?password=…`).
        if rest.contains(where: { $0 == "?" || $0 == "#" }) {
            throw fail(##"query parameters ("?…") and fragments ("#…") are not supported"##)
        }

        let authority: Substring
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard path.allSatisfy(\.isASCIIDigit) else {
                    throw fail(#"database "\#(path)" is not a number"#)
                }
                guard let number = Int(path), number <= Int(Int32.max) else {
                    throw fail(#"database \#(path) is out of range"#)
                }
                database = number
            }
        } else {
            authority = rest
        }

        let host: Substring
        let portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else {
                throw fail(#"IPv6 address is missing its closing "]""#)
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                portText = nil
            } else if after.first == ":" {
                portText = after.dropFirst()
            } else {
                throw fail(#"unexpected "\#(after)" after the IPv6 address (expected ":port")"#)
            }
            guard !host.isEmpty else { throw fail("host is missing") }
            guard host.contains(":"), host.allSatisfy({ ($0.isASCII && $0.isHexDigit) || $0 == ":" || $0 == "." }) else {
                throw fail(#""[\#(host)]" is not an IPv6 address"#)
            }
        } else {
            let colons = authority.filter { $0 == ":" }.count
            if colons > 1 {
                throw fail(#"an IPv6 address must be in brackets, e.g. redis://[::1]:6379"#)
            }
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
                portText = nil
            }
            guard !host.isEmpty else { throw fail("host is missing") }
            if let bad = host.first(where: { !($0.isASCIILetterOrDigit || $0 == "-" || $0 == "." || $0 == "_") }) {
                throw fail(#"host "\#(host)" contains the invalid character "\#(bad)""#)
            }
        }

        var port = 6379
        if let portText {
            guard !portText.isEmpty else { throw fail(#"port after ":" is empty"#) }
            guard portText.allSatisfy(\.isASCIIDigit) else {
                // Not echoed: in "redis://user:secret" (no "@") the password lands here.
                throw fail("port is not a number (a password needs an \"@host\" after it)")
            }
            guard let number = Int(portText), (1...65_535).contains(number) else {
                throw fail("port \(portText) is out of range (1-65535)")
            }
            port = number
        }

        self.init(host: String(host), port: port, password: password, username: username, database: database)
    }

    /// The URL with the password replaced by `***`, safe for logs and status output.
    public var redacted: String {
        var text = "redis://"
        if password != nil {
            text += Self.percentEncoded(username ?? "") + ":***@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(database)"
        return text
    }

    public var description: String { redacted }
    public var debugDescription: String { redacted }

    /// Decodes `%XX` escapes; nil when an escape is malformed or the bytes are not UTF-8.
    private static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Escapes what would break the userinfo part when the redacted URL is read back.
    private static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            let plain = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "~")
            if plain {
                bytes.append(byte)
            } else {
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
}
