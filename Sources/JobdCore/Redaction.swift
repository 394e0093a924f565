/// Secrets never reach a log line or a status output. These helpers render
/// connection strings with their passwords replaced.
public enum Redaction {
    /// Redacts a libpq conninfo (`host=x password=secret`) or URI
    /// (`postgresql://user:secret@host/db?password=…`). Any parameter whose name
    /// contains "password" (`password`, `sslpassword`) is hidden.
    public static func connectionString(_ text: String) -> String {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            return redactURI(text)
        }
        return redactConninfo(text)
    }

    private static func isSecretKey(_ key: some StringProtocol) -> Bool {
        key.lowercased().contains("password")
    }

    /// conninfo: `key = value` pairs separated by whitespace; values may be
    /// single-quoted with backslash escapes.
    private static func redactConninfo(_ text: String) -> String {
        let chars = Array(text)
        var index = 0
        var pairs: [String] = []
        func skipSpace() { while index < chars.count, chars[index].isWhitespace { index += 1 } }
        while true {
            skipSpace()
            guard index < chars.count else { break }
            var key = ""
            while index < chars.count, chars[index] != "=", !chars[index].isWhitespace {
                key.append(chars[index]); index += 1
            }
            skipSpace()
            guard index < chars.count, chars[index] == "=" else {
                // Not a conninfo we understand: show nothing that could be a secret.
                return pairs.isEmpty ? "***" : pairs.joined(separator: " ") + " ***"
            }
            index += 1
            skipSpace()
            var value = ""
            if index < chars.count, chars[index] == "'" {
                value.append("'"); index += 1
                while index < chars.count, chars[index] != "'" {
                    if chars[index] == "\\", index + 1 < chars.count { value.append(chars[index]); index += 1 }
                    value.append(chars[index]); index += 1
                }
                if index < chars.count { value.append("'"); index += 1 }
            } else {
                while index < chars.count, !chars[index].isWhitespace { value.append(chars[index]); index += 1 }
            }
            pairs.append("\(key)=\(isSecretKey(key) ? "***" : value)")
        }
        return pairs.joined(separator: " ")
    }

    private static func redactURI(_ uri: String) -> String {
        guard let scheme = uri.firstRange(of: "://") else { return uri }
        var rest = uri[scheme.upperBound...]
        var result = String(uri[..<scheme.upperBound])
        // user:password@ — the user info ends at the last "@" before the first "/"
        // (a password may itself contain "?" or ":").
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<slash].lastIndex(of: "@") {
            let userInfo = rest[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                result += userInfo[..<colon] + ":***"
            } else {
                result += userInfo
            }
            result += "@"
            rest = rest[rest.index(after: at)...]
        }
        guard let queryStart = rest.firstIndex(of: "?") else { return result + rest }
        result += rest[...queryStart]
        let parameters = rest[rest.index(after: queryStart)...]
            .split(separator: "&", omittingEmptySubsequences: false)
            .map { parameter -> String in
                guard let equals = parameter.firstIndex(of: "="), isSecretKey(parameter[..<equals]) else {
                    return String(parameter)
                }
                return parameter[...equals] + "***"
            }
        return result + parameters.joined(separator: "&")
    }
}
