/// Renders a plain-text email (RFC 5322 + MIME) ready for SMTP `DATA`.
///
/// Every input is already validated (no CR/LF in addresses or the subject), so no
/// header can be injected. The body is base64, so no line-length limit or leading
/// dot can bite; the subject is RFC 2047-encoded when it is not plain ASCII. The
/// `Message-ID` derives from the idempotency key, so a receiver sees the same id if
/// the crash window (sent, not yet recorded) ever makes jobd send a message twice.
public enum EmailMessage {
    public static func render(
        from: String, to: String, subject: String, body: String, idempotencyKey: String, date unixSeconds: Int64
    ) -> String {
        var lines = [
            "From: <\(from)>",
            "To: <\(to)>",
            "Subject: \(encodeHeader(subject))",
            "Date: \(rfc5322Date(unixSeconds))",
            "Message-ID: \(messageID(idempotencyKey: idempotencyKey, from: from))",
            "Idempotency-Key: \(idempotencyKey)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
        ]
        var normalized = body.replacingCRLF()
        if !normalized.hasSuffix("\n") && !normalized.isEmpty { normalized += "\n" }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(normalized.utf8.count + normalized.utf8.count / 20)
        for byte in normalized.utf8 {
            if byte == UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\r")) }
            bytes.append(byte)
        }
        let encoded = Base64.encode(bytes)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// `<32 hex digits@sender's domain>`, the same for the same key.
    public static func messageID(idempotencyKey: String, from: String) -> String {
        let a = FNV1a.hash(idempotencyKey.utf8)
        let b = FNV1a.hash(idempotencyKey.utf8, basis: 0x6c62_272e_07bb_0142)
        return "<\(hex(a))\(hex(b))@\(EmailAddress.domain(from))>"
    }

    /// Plain printable ASCII as is; otherwise UTF-8 base64 encoded-words of at most
    /// 75 characters each, folded onto continuation lines.
    public static func encodeHeader(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) }) { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append("=?UTF-8?B?\(Base64.encode(chunk))?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Base64.encode(chunk))?=") }
        return words.joined(separator: "\r\n ")
    }

    /// `Wed, 25 Nov 2026 07:38:52 +0000`.
    public static func rfc5322Date(_ unixSeconds: Int64) -> String {
        let c = CivilTime.components(unixSeconds)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[c.weekday]), \(two(c.day)) \(months[c.month - 1]) \(c.year) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) +0000"
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

// Base64 is `JobdCore.Base64` (Content/Base64.swift), shared with the content tier.

extension String {
    /// CRLF and lone CR become LF.
    fileprivate func replacingCRLF() -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out.unicodeScalars.append("\n")
                previousCR = true
                continue
            }
            if scalar == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = false
            out.unicodeScalars.append(scalar)
        }
        return out
    }
}
