import Crypto

/// SHA-256, the key attachments are de-duplicated by and the fingerprint that tells
/// a retried write from a different message reusing an `external_id`.
public enum ContentDigest {
    /// The digest as 64 lower-case hex digits.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        hex(Array(SHA256.hash(data: bytes)))
    }

    /// A running SHA-256 over several fields, each framed by its length so that
    /// ("ab", "c") and ("a", "bc") differ.
    public struct Builder {
        private var hasher = SHA256()
        public init() {}

        public mutating func add(_ bytes: [UInt8]) {
            var length = UInt64(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }

        public mutating func add(_ text: String) { add(Array(text.utf8)) }

        public mutating func add(_ text: String?) {
            // A distinct marker for absent, so nil and "" differ.
            if let text { add(Array(text.utf8)) } else { hasher.update(data: [0xFF]) }
        }

        public func finalizeHex() -> String { hex(Array(hasher.finalize())) }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
