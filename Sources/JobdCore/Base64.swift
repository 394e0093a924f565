/// Standard base64 (RFC 4648 §4), as attachments arrive in `data_base64`.
///
/// Line breaks and spaces are skipped (MIME wraps base64 at 76 columns); padding is
/// optional but, when present, must be correct and last. Anything else is invalid.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = UInt8(index) }
        return table
    }()

    /// The decoded bytes, or nil when `text` is not base64.
    public static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count / 4 * 3)
        var quad: UInt32 = 0
        var filled = 0
        var padding = 0
        for char in text.utf8 {
            switch char {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                continue
            case UInt8(ascii: "="):
                padding += 1
                guard padding <= 2 else { return nil }
                continue
            default:
                guard padding == 0 else { return nil }  // data after padding
                let value = values[Int(char)]
                guard value != 0xFF else { return nil }
                quad = quad << 6 | UInt32(value)
                filled += 1
                if filled == 4 {
                    output.append(UInt8(truncatingIfNeeded: quad >> 16))
                    output.append(UInt8(truncatingIfNeeded: quad >> 8))
                    output.append(UInt8(truncatingIfNeeded: quad))
                    quad = 0
                    filled = 0
                }
            }
        }
        switch filled {
        case 0:
            guard padding == 0 else { return nil }
        case 2:
            guard padding == 0 || padding == 2, quad & 0xF == 0 else { return nil }
            output.append(UInt8(truncatingIfNeeded: quad >> 4))
        case 3:
            guard padding == 0 || padding == 1, quad & 0x3 == 0 else { return nil }
            output.append(UInt8(truncatingIfNeeded: quad >> 10))
            output.append(UInt8(truncatingIfNeeded: quad >> 2))
        default:
            return nil  // a single leftover character carries less than a byte
        }
        return output
    }

    /// Encodes without line breaks, with padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let n = UInt32(bytes[index]) << 16
            output += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        case 2:
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        default:
            break
        }
        return String(decoding: output, as: UTF8.self)
    }
}
