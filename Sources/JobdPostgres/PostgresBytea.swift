/// `bytea` over libpq's text protocol: parameters are sent, and results arrive, in
/// Postgres's hex format (`\x` followed by two hex digits a byte; the server's
/// default `bytea_output = hex`).
public enum PostgresBytea {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `\x…` for a `$n::bytea` parameter (or an element of a `$n::bytea[]` array,
    /// through `PostgresArray.texts`, which escapes the backslash).
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        out.withUnsafeMutableBufferPointer { buffer in
            var index = 2
            for byte in bytes {
                buffer[index] = digits[Int(byte >> 4)]
                buffer[index + 1] = digits[Int(byte & 0x0F)]
                index += 2
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a `bytea` result value; nil if it is not `\x` hex (for example the
    /// legacy escape format).
    public static func decode(_ text: String) -> [UInt8]? {
        var utf8 = text.utf8.makeIterator()
        guard utf8.next() == UInt8(ascii: "\\"), utf8.next() == UInt8(ascii: "x") else { return nil }
        let count = text.utf8.count - 2
        guard count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(count / 2)
        while let high = utf8.next() {
            guard let low = utf8.next(), let h = value(high), let l = value(low) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
