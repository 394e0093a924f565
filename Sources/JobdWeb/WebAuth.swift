import Crypto
import Foundation
import Synchronization

/// Who made a request.
public struct WebPrincipal: Sendable, Equatable {
    public var name: String
    public var role: WebRole
    /// Authenticated by a bearer token: a browser never sends one by itself, so such a
    /// request cannot be forged cross-site and needs no CSRF token.
    public var viaBearer: Bool

    public var mayAct: Bool { role == .operator }
}

/// Checks `Authorization` headers against the configured users and tokens.
///
/// A password hash costs a few hundred milliseconds of CPU by design, and a browser
/// sends basic credentials with every request (the overview polls): a successful
/// check is remembered by the SHA-256 of the header, so each distinct credential is
/// stretched once per process (at most `cacheLimit` remembered; the oldest half is
/// forgotten when full). Failures are not remembered.
public final class WebAuthenticator: Sendable {
    let settings: WebSettings
    static let cacheLimit = 1_000
    private let verified = Mutex<[String: WebPrincipal]>([:])

    public init(settings: WebSettings) {
        self.settings = settings
    }

    /// nil: not authenticated (answer 401).
    public func authenticate(authorization: String?) -> WebPrincipal? {
        guard settings.requiresAuthentication else {
            return WebPrincipal(name: "local", role: .operator, viaBearer: false)
        }
        guard let authorization, authorization.utf8.count <= 4_096 else { return nil }
        let cacheKey = Hex.encode(SHA256.hash(data: Array(authorization.utf8)))
        if let known = verified.withLock({ $0[cacheKey] }) { return known }
        let principal: WebPrincipal?
        if authorization.lowercased().hasPrefix("bearer ") {
            let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            principal = settings.tokens.first { $0.hash.verify(token) }
                .map { WebPrincipal(name: $0.name, role: $0.role, viaBearer: true) }
        } else if authorization.lowercased().hasPrefix("basic ") {
            let encoded = String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else { return nil }
            let name = String(text[..<colon])
            let password = String(text[text.index(after: colon)...])
            principal = settings.users.first { $0.name == name && $0.hash.verify(password) }
                .map { WebPrincipal(name: $0.name, role: $0.role, viaBearer: false) }
        } else {
            principal = nil
        }
        if let principal {
            verified.withLock { cache in
                if cache.count >= Self.cacheLimit {
                    for key in cache.keys.prefix(Self.cacheLimit / 2) { cache[key] = nil }
                }
                cache[cacheKey] = principal
            }
        }
        return principal
    }

    // MARK: CSRF

    /// The token every form and every cookie- or basic-authenticated POST must carry:
    /// an HMAC of the user's name under the process's secret. A page on another site
    /// can make the browser send a POST with the user's credentials, but cannot read a
    /// page of the console to learn the token (same-origin policy; no CORS here).
    public func csrfToken(for principal: WebPrincipal) -> String {
        let key = SymmetricKey(data: settings.secret)
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(("csrf:" + principal.name).utf8), using: key))
    }

    public func verifyCSRF(_ token: String?, for principal: WebPrincipal) -> Bool {
        guard let token, let given = Hex.decode(token) else { return false }
        guard let expected = Hex.decode(csrfToken(for: principal)) else { return false }
        return Hex.constantTimeEqual(given, expected)
    }
}
