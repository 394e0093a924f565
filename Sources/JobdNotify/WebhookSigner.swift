import Crypto

/// Signs webhook bodies with HMAC-SHA256, so a receiver can check that a request
/// came from jobd and was not replayed long after.
///
/// The signed message is `"<timestamp>.<body>"`: the Unix time in seconds (also sent
/// as `X-Jobd-Timestamp`), a full stop, then the exact body bytes. The signature
/// header is `X-Jobd-Signature: sha256=<64 lowercase hex digits>`. A receiver
/// recomputes it with the shared secret, compares in constant time and rejects
/// timestamps too far from its own clock.
public struct WebhookSigner: Sendable {
    public static let signatureHeader = "X-Jobd-Signature"
    public static let timestampHeader = "X-Jobd-Timestamp"

    private let secret: [UInt8]

    public init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// `sha256=<hex>` over `"<timestamp>.<body>"`.
    public func signature(timestamp: Int64, body: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Array("\(timestamp).".utf8))
        hmac.update(data: body)
        let digest = hmac.finalize()
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return "sha256=" + String(decoding: hex, as: UTF8.self)
    }

    /// The two header lines for a request sent at `timestamp`.
    public func headers(timestamp: Int64, body: [UInt8]) -> [String] {
        [
            "\(Self.timestampHeader): \(timestamp)",
            "\(Self.signatureHeader): \(signature(timestamp: timestamp, body: body))",
        ]
    }
}
