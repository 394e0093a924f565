/// Stored text made safe to print on an operator's terminal.
///
/// Anything a producer or a remote party wrote (kinds, error messages, subjects,
/// bodies, header values) may carry bytes a terminal acts on: ESC starts control
/// sequences that recolour, move the cursor, retitle the window or write to the
/// clipboard; CR returns to the start of the line and hides what came before; the
/// C1 controls (U+0080–U+009F, CSI among them) do the same on some terminals; the
/// bidirectional formatting characters reorder what is displayed, so a line reads
/// differently from what it holds. Each of those is shown as a visible escape
/// instead — `\x1b`, `\r`, `\u202e` — and everything else is left as it is.
public enum TerminalText {
    /// - Parameter multiline: keep line feeds and tabs (bodies); otherwise they are
    ///   escaped too, so a value stays on its line and in its column.
    public static func escape(_ text: String, multiline: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, multiline: multiline) }) else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 16)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, multiline: multiline) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                out += scalar.value < 0x100
                    ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                    : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out
    }

    /// JSON text (as a JSON encoder wrote it) with the characters `escape` shows
    /// escaped written as `\uXXXX`: still the same JSON, but inert on a terminal.
    /// Encoders already escape C0 controls inside strings; outside strings JSON
    /// holds only ASCII, so every scalar replaced here is inside a string.
    public static func json(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, multiline: true) && $0 != "\r" }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if needsEscape(scalar, multiline: true), scalar != "\r" {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar, multiline: Bool) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: return !multiline
        case 0x00...0x1F, 0x7F...0x9F: return true
        // ALM, LRM, RLM, the embeddings and overrides (LRE … RLO), the isolates (LRI … PDI).
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
