/// What the web console shows of a job's payload.
///
/// Secrets (a key that names one: password, secret, token, api key, authorization,
/// credential, cookie, private key) are hidden from everyone. Bodies (message text,
/// HTML, attachment data, any string longer than `bodyThreshold`) are hidden from
/// read-only viewers, who see the payload's shape and its short fields only.
public enum PayloadRedaction {
    public enum Audience: Sendable {
        /// Sees bodies; secrets are still hidden.
        case `operator`
        /// Sees neither bodies nor secrets.
        case readOnly
    }

    /// Strings longer than this count as a body for read-only viewers.
    public static let bodyThreshold = 200

    static let secretWords = ["password", "passwd", "secret", "token", "apikey", "api_key", "authorization",
                              "credential", "cookie", "private_key", "privatekey"]
    static let bodyKeys: Set<String> = ["text", "html", "body", "content", "message", "data", "data_base64",
                                        "attachments", "raw", "mime"]

    public static func isSecretKey(_ key: String) -> Bool {
        let lowered = String(key.lowercased().map { $0 == "-" ? "_" : $0 })
        return secretWords.contains { lowered.contains($0) }
    }

    public static func redact(_ value: JSONValue, for audience: Audience) -> JSONValue {
        redact(value, key: nil, audience: audience)
    }

    private static func redact(_ value: JSONValue, key: String?, audience: Audience) -> JSONValue {
        if let key, isSecretKey(key), value != .null {
            return .string("‹secret hidden›")
        }
        if audience == .readOnly, let key, bodyKeys.contains(key.lowercased()), value != .null {
            return .string("‹body hidden: \(sizeOf(value)) bytes›")
        }
        switch value {
        case .object(let fields):
            var out: [String: JSONValue] = [:]
            for (name, field) in fields { out[name] = redact(field, key: name, audience: audience) }
            return .object(out)
        case .array(let items):
            return .array(items.map { redact($0, key: nil, audience: audience) })
        case .string(let text) where audience == .readOnly && text.utf8.count > bodyThreshold:
            return .string("‹body hidden: \(text.utf8.count) bytes›")
        default:
            return value
        }
    }

    /// The size of a value's JSON text, roughly (strings by their UTF-8 length).
    static func sizeOf(_ value: JSONValue) -> Int {
        switch value {
        case .null: 4
        case .bool(let flag): flag ? 4 : 5
        case .number(let number): "\(number)".utf8.count
        case .string(let text): text.utf8.count + 2
        case .array(let items): 2 + items.reduce(0) { $0 + sizeOf($1) + 1 }
        case .object(let fields): 2 + fields.reduce(0) { $0 + $1.key.utf8.count + 4 + sizeOf($1.value) }
        }
    }

    /// Indented JSON text with sorted keys. Integral numbers within ±2^53 print without
    /// a fraction; JSONValue holds numbers as Double, so larger integers print rounded.
    public static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number):
            if number.isFinite, number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
                return String(Int64(number))
            }
            return number.isFinite ? "\(number)" : "null"
        case .string(let text): return quote(text)
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{\n" + fields.keys.sorted().map { key in
                inner + quote(key) + ": " + pretty(fields[key]!, indent: inner)
            }.joined(separator: ",\n") + "\n\(indent)}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
