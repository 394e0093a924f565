/// Checks every payload before any handler sees it, so hostile input is
/// dead-lettered on its first attempt with a reason code instead of reaching a
/// decoder that recurses once per nesting level (a document nested thousands deep,
/// which PostgreSQL's jsonb happily stores, would overflow a worker's stack).
///
/// One pass over the bytes, no recursion, no allocation: its cost and memory do not
/// depend on what the payload contains. Size is checked earlier, in the claim
/// statement itself (`JOBD_MAX_PAYLOAD_BYTES`), so an oversized payload never even
/// leaves PostgreSQL. Invalid UTF-8 and `\u0000` cannot be stored in a `jsonb`
/// column of a UTF-8 database at all: PostgreSQL refuses them at enqueue.
public enum PayloadGuard {
    /// Deepest nesting of arrays and objects accepted (`{"a": [1]}` is 2).
    public static let maxDepth = 64

    /// The failure to dead-let `text` with, or nil when it may go to its handler.
    public static func check(_ text: String, maxDepth: Int = PayloadGuard.maxDepth) -> JobFailure? {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in text.utf8 {
            if byte == 0 {
                return .permanent("payload contains a NUL byte", code: "payload_invalid")
            }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth {
                    return .permanent(
                        "payload nests deeper than \(maxDepth) levels of arrays and objects",
                        code: "payload_too_deep")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
            default:
                break
            }
        }
        return nil
    }
}
