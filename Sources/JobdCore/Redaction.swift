/// Secrets never reach a log line or a status output. These helpers render
/// connection strings with their passwords replaced.
public enum Redaction {
    /// Redacts a libpq conninfo (`host=x password=secret`) or URI
    /// (`postgresql://user:secret@host/db?password=…`).
    public static func connectionString(_ text: String) -> String {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            return redactURI(text)
        }
        // conninfo: key = value pairs, values optionally single-quoted.
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            guard let range = text[index...].firstRange(of: "password") else {
                output += text[index...]
                break
            }
            output += text[index..<range.upperBound]
            var cursor = range.upperBound
            while cursor < text.endIndex, text[cursor] == " " { output.append(" "); cursor = text.index(after: cursor) }
            guard cursor < text.endIndex, text[cursor] == "=" else { index = cursor; continue }
            output += "="
            cursor = text.index(after: cursor)
            while cursor < text.endIndex, text[cursor] == " " { output.append(" "); cursor = text.index(after: cursor) }
            if cursor < text.endIndex, text[cursor] == "'" {
                cursor = text.index(after: cursor)
                while cursor < text.endIndex, text[cursor] != "'" {
                    if text[cursor] == "\\" { cursor = text.index(after: cursor) }
                    if cursor < text.endIndex { cursor = text.index(after: cursor) }
                }
                if cursor < text.endIndex { cursor = text.index(after: cursor) }
            } else {
                while cursor < text.endIndex, text[cursor] != " " { cursor = text.index(after: cursor) }
            }
            output += "***"
            index = cursor
        }
        return output
    }

    private static func redactURI(_ uri: String) -> String {
        guard let scheme = uri.firstRange(of: "://") else { return uri }
        var rest = String(uri[scheme.upperBound...])
        var head = String(uri[..<scheme.upperBound])
        // user:password@ — the authority ends at the first / or ?
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                head += userInfo[..<colon] + ":***"
            } else {
                head += userInfo
            }
            rest = String(rest[at...])
        }
        var result = head + rest
        // query parameter password=…
        if let query = result.firstRange(of: "password=") {
            let valueEnd = result[query.upperBound...].firstIndex(of: "&") ?? result.endIndex
            result.replaceSubrange(query.upperBound..<valueEnd, with: "***")
        }
        return result
    }
}
