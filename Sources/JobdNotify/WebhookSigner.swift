import Crypto

/// Signs webhook requests with HMAC-SHA256, so a receiver can check that a request
/// came from jobd, was meant for it, and was not replayed long after.
///
/// The signed message (version 2) is six fields joined by line feeds (0x0A):
///
///     v2
///     <timestamp>          Unix seconds, also sent as X-Jobd-Timestamp
///     POST                 the method
///     <url>                the target URL exactly as in the payload's "to"
///     <idempotency key>    also sent as Idempotency-Key
///     <body>               the exact body bytes
///
/// None of the first five can hold a line feed (the URL and key are validated
/// without control characters), so the framing is unambiguous. The header is
/// `X-Jobd-Signature: v2=<64 lowercase hex digits>`. Because the URL and the key
/// are signed, a captured request is worth nothing at another URL, for another
/// notification, or (with a key per host) at another receiver.
public struct WebhookSigner: Sendable {
    public static let signatureHeader = "X-Jobd-Signature"
    public static let timestampHeader = "X-Jobd-Timestamp"
    public static let version = "v2"

    private let secret: [UInt8]

    public init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// The bytes the signature covers.
    public static func message(timestamp: Int64, method: String, url: String, idempotencyKey: String, body: [UInt8]) -> [UInt8] {
        Array("\(version)\n\(timestamp)\n\(method)\n\(url)\n\(idempotencyKey)\n".utf8) + body
    }

    /// `v2=<hex>` over `message(…)`.
    public func signature(timestamp: Int64, method: String = "POST", url: String, idempotencyKey: String, body: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Self.message(timestamp: timestamp, method: method, url: url, idempotencyKey: idempotencyKey, body: body))
        let digest = hmac.finalize()
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return "\(Self.version)=" + String(decoding: hex, as: UTF8.self)
    }

    /// The two header lines for a POST sent at `timestamp`.
    public func headers(timestamp: Int64, url: String, idempotencyKey: String, body: [UInt8]) -> [String] {
        [
            "\(Self.timestampHeader): \(timestamp)",
            "\(Self.signatureHeader): \(signature(timestamp: timestamp, url: url, idempotencyKey: idempotencyKey, body: body))",
        ]
    }
}
