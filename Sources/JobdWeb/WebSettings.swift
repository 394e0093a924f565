import Crypto
import Foundation
import JobdCore

/// What a console user may do.
public enum WebRole: String, Sendable, Codable {
    /// Sees the pages and the API; payload bodies and secrets hidden; no actions.
    case read
    /// Also sees payload bodies and may retry, cancel, discard, pause and resume.
    case `operator`
}

/// A stored credential: never the password or token itself.
public enum CredentialHash: Sendable, Equatable {
    /// SHA-256 of the secret (for random tokens, whose entropy needs no stretching).
    case sha256([UInt8])
    /// PBKDF2-HMAC-SHA256 (for passwords a person chose).
    case pbkdf2(iterations: Int, salt: [UInt8], hash: [UInt8])

    /// `sha256:HEX` or `pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX`.
    public init(parsing text: String) throws(JobdInputError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "sha256":
            guard parts.count == 2, let digest = Hex.decode(parts[1]), digest.count == 32 else {
                throw JobdInputError("a sha256 hash is sha256:<64 hex digits>")
            }
            self = .sha256(digest)
        case "pbkdf2-sha256":
            guard parts.count == 4, let iterations = Int(parts[1]), (1_000...10_000_000).contains(iterations),
                  let salt = Hex.decode(parts[2]), salt.count >= 8,
                  let hash = Hex.decode(parts[3]), hash.count == 32 else {
                throw JobdInputError("a pbkdf2 hash is pbkdf2-sha256:<iterations 1000…10000000>:<salt hex, 8+ bytes>:<64 hex digits>")
            }
            self = .pbkdf2(iterations: iterations, salt: salt, hash: hash)
        default:
            throw JobdInputError("a hash starts with sha256: or pbkdf2-sha256: (make one with `jobd web hash`)")
        }
    }

    public var text: String {
        switch self {
        case .sha256(let digest): "sha256:" + Hex.encode(digest)
        case .pbkdf2(let iterations, let salt, let hash):
            "pbkdf2-sha256:\(iterations):\(Hex.encode(salt)):\(Hex.encode(hash))"
        }
    }

    /// The SHA-256 form, for a random token.
    public static func sha256Hash(of token: String) -> CredentialHash {
        .sha256(Array(SHA256.hash(data: Array(token.utf8))))
    }

    /// A new PBKDF2 hash of `password` with a random salt.
    public static func make(password: String, iterations: Int = 200_000) -> CredentialHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return .pbkdf2(iterations: iterations, salt: salt, hash: PBKDF2.sha256(password: Array(password.utf8), salt: salt, iterations: iterations, length: 32))
    }

    /// Constant-time comparison of the derived value.
    public func verify(_ secret: String) -> Bool {
        switch self {
        case .sha256(let digest):
            return Hex.constantTimeEqual(Array(SHA256.hash(data: Array(secret.utf8))), digest)
        case .pbkdf2(let iterations, let salt, let hash):
            return Hex.constantTimeEqual(
                PBKDF2.sha256(password: Array(secret.utf8), salt: salt, iterations: iterations, length: hash.count), hash)
        }
    }
}

/// One configured identity: a user for HTTP basic authentication, or a bearer token's name.
public struct WebCredential: Sendable, Equatable {
    public var name: String
    public var role: WebRole
    public var hash: CredentialHash

    /// `NAME:ROLE:HASH,NAME:ROLE:HASH,…` (ROLE is `read` or `operator`).
    public static func parseList(_ text: String, what: String) throws(JobdInputError) -> [WebCredential] {
        var result: [WebCredential] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == ";" }) {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, !parts[0].isEmpty, parts[0].count <= 64 else {
                throw JobdInputError("\(what): each entry is NAME:ROLE:HASH")
            }
            guard let role = WebRole(rawValue: parts[1]) else {
                throw JobdInputError("\(what): role of \(parts[0]) must be read or operator, not \(parts[1])")
            }
            let hash: CredentialHash
            do {
                hash = try CredentialHash(parsing: parts[2])
            } catch {
                throw JobdInputError("\(what): \(parts[0]): \(error.message)")
            }
            if result.contains(where: { $0.name == parts[0] }) {
                throw JobdInputError("\(what): \(parts[0]) is listed twice")
            }
            result.append(WebCredential(name: parts[0], role: role, hash: hash))
        }
        return result
    }
}

/// The console's settings: where it listens and who may use it.
public struct WebSettings: Sendable {
    public var host: String
    public var port: Int
    /// HTTP basic users (`JOBD_WEB_USERS`).
    public var users: [WebCredential]
    /// Bearer tokens (`JOBD_WEB_TOKENS`); the hash is of the token.
    public var tokens: [WebCredential]
    /// Key of the CSRF tokens' HMAC; random per process unless configured (several
    /// consoles behind one address need the same).
    public var secret: [UInt8]
    /// How old the shared overview snapshot may be.
    public var refreshInterval: Duration = .seconds(3)
    /// Connections to PostgreSQL the console's requests share.
    public var connections: Int = 4
    /// Deadline of each of its statements, seconds.
    public var queryTimeout: Double = 5
    /// Databases of the tiers that are not in the queue's (`JOBD_<TIER>_DATABASE_URL`):
    /// the notifications, campaigns and content pages read there, two connections each.
    public var tierURLs: [DataTier: String] = [:]
    /// The periodic jobs (`JOBD_SCHEDULES` and the built-in ones) the periodic-jobs
    /// page lists with their next slots.
    public var schedules: [ScheduledJob] = []

    public init(host: String = "127.0.0.1", port: Int = 8080, users: [WebCredential] = [], tokens: [WebCredential] = [],
                secret: [UInt8]? = nil) {
        self.host = host
        self.port = port
        self.users = users
        self.tokens = tokens
        var generator = SystemRandomNumberGenerator()
        self.secret = secret ?? (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Authentication is required unless the console listens on loopback with no
    /// credential configured (then every local request is the operator "local").
    public var requiresAuthentication: Bool {
        !Self.isLoopback(host) || !users.isEmpty || !tokens.isEmpty
    }

    /// Refuses to listen beyond loopback with nobody able to log in.
    public func validate() throws(JobdInputError) {
        if !Self.isLoopback(host) && users.isEmpty && tokens.isEmpty {
            throw JobdInputError(
                "the web console listens on \(host), beyond loopback: set JOBD_WEB_USERS or JOBD_WEB_TOKENS (or listen on 127.0.0.1)")
        }
        if !(1...64).contains(connections) { throw JobdInputError("web console connections must be 1…64") }
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// `HOST:PORT`, `:PORT` (loopback) or `[V6]:PORT`.
    public static func parseListen(_ text: String) throws(JobdInputError) -> (host: String, port: Int) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]),
              (0...65_535).contains(port) else {
            throw JobdInputError("listen address must be HOST:PORT, e.g. 127.0.0.1:8080 (got \"\(text)\")")
        }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}

/// RFC 8018 PBKDF2 with HMAC-SHA256 (swift-crypto 3 has no Swift API for it).
enum PBKDF2 {
    static func sha256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var output: [UInt8] = []
        var block: UInt32 = 1
        while output.count < length {
            var u = Array(HMAC<SHA256>.authenticationCode(for: salt + withUnsafeBytes(of: block.bigEndian, Array.init), using: key))
            var t = u
            if iterations > 1 {
                for _ in 1..<iterations {
                    u = Array(HMAC<SHA256>.authenticationCode(for: u, using: key))
                    for index in 0..<t.count { t[index] ^= u[index] }
                }
            }
            output += t
            block += 1
        }
        return Array(output.prefix(length))
    }
}

enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = value(chars[index]), let low = value(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
