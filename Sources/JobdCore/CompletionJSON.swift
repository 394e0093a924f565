/// The completion batch as the JSON array `QueueStore.complete` hands Postgres
/// (`jsonb_to_recordset`): one object per attempt with the keys `id`, `attempt`,
/// `token`, `outcome`, `delay`, `run`, `wait`, when present `code` and `error`, and
/// `place` (true) for a snooze that keeps its place (`AttemptCompletion.keepsPlace`).
///
/// Built directly into a byte buffer rather than through Foundation's
/// JSONSerialization, whose `Any` bridging cost about a third of the daemon's CPU at
/// full load. Pure and allocation-light: one growing buffer per batch.
public enum CompletionJSON {
    public static func encode(_ batch: [AttemptCompletion]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(batch.count * 80)
        out.append(UInt8(ascii: "["))
        for (index, completion) in batch.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            append(#"{"id":"#, to: &out)
            append(String(completion.fence.id), to: &out)
            append(#","attempt":"#, to: &out)
            append(String(completion.fence.attempt), to: &out)
            append(#","token":"#, to: &out)
            append(String(completion.fence.token), to: &out)
            append(#","outcome":"#, to: &out)
            appendString(completion.outcome.rawValue, to: &out)
            append(#","delay":"#, to: &out)
            appendNumber(completion.delay.seconds, to: &out)
            append(#","run":"#, to: &out)
            appendNumber(completion.runSeconds, to: &out)
            append(#","wait":"#, to: &out)
            appendNumber(completion.queueWaitSeconds, to: &out)
            if let code = completion.errorCode {
                append(#","code":"#, to: &out)
                appendString(code, to: &out)
            }
            if let message = completion.errorMessage {
                append(#","error":"#, to: &out)
                appendString(message, to: &out)
            }
            if completion.keepsPlace {
                append(#","place":true"#, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ raw: String, to out: inout [UInt8]) {
        out.append(contentsOf: raw.utf8)
    }

    /// JSON has no NaN or infinity; a run or wait time is never either, but a bad
    /// value must not make the whole batch unwritable.
    private static func appendNumber(_ value: Double, to out: inout [UInt8]) {
        guard value.isFinite else {
            out.append(UInt8(ascii: "0"))
            return
        }
        // Swift prints doubles in the shortest form that round-trips ("0.25", "1e-05"),
        // all of which are valid JSON numbers.
        append("\(value)", to: &out)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string literal. NUL becomes U+FFFD: Postgres refuses `\u0000` in jsonb
    /// text, which would make the batch fail on every retry.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0: out.append(contentsOf: "\\ufffd".utf8)
            case 1..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0f)])
            default:
                // Bytes of a multi-byte character pass through: the text is valid UTF-8.
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
