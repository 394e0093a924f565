import Foundation
import JobdCore
import Testing

@Suite("terminal text")
struct TerminalTextTests {
    @Test("control characters, C1 and bidi overrides become visible escapes", arguments: [
        ("\u{1B}[2J\u{1B}]0;pwned\u{07}", #"\x1b[2J\x1b]0;pwned\x07"#),
        ("ok\rFAKE", #"ok\rFAKE"#),
        ("a\u{0}b\u{7F}c", #"a\x00b\x7fc"#),
        ("\u{9B}31m", #"\x9b31m"#),
        ("user\u{202E}gnp.exe", #"user\u202egnp.exe"#),
        ("\u{2066}\u{2067}\u{2068}\u{2069}\u{202A}\u{202B}\u{202C}\u{202D}", #"\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d"#),
        ("\u{200E}\u{200F}\u{061C}", #"\u200e\u200f\u061c"#),
        ("line 1\nline 2\tx", #"line 1\nline 2\tx"#),
    ])
    func escapes(input: String, shown: String) {
        #expect(TerminalText.escape(input) == shown)
    }

    @Test("ordinary text, accents, emoji and other scripts are left alone")
    func leavesTextAlone() {
        for text in ["", "plain", "Größe: 95 %", "日本語のテキスト", "👩‍💻 done", "שלום עולם", "back\\slash", "\u{A0}nbsp"] {
            #expect(TerminalText.escape(text) == text)
            #expect(TerminalText.escape(text, multiline: true) == text)
        }
    }

    @Test("multiline keeps line feeds and tabs, never CR or ESC")
    func multiline() {
        #expect(TerminalText.escape("a\nb\tc\r\n\u{1B}[1m", multiline: true) == "a\nb\tc\\r\n\\x1b[1m")
    }

    @Test("the output holds no byte a terminal acts on, whatever the input")
    func exhaustiveSmallScalars() {
        var all = ""
        for value in 0...0x2100 {
            if let scalar = Unicode.Scalar(value) { all.unicodeScalars.append(scalar) }
        }
        let shown = TerminalText.escape(all)
        #expect(!shown.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        #expect(!shown.unicodeScalars.contains { [0x061C, 0x200E, 0x200F].contains($0.value) || (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value) })
    }

    @Test("JSON keeps its meaning: escaped characters come back when parsed")
    func json() throws {
        let value = ["s": "a\u{1B}[31m\u{202E}b\u{85}c\nd"]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
        let safe = TerminalText.json(text)
        #expect(!safe.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E || $0.value == 0x85 })
        #expect(safe.contains(#"\u202e"#) && safe.contains(#"\u0085"#))
        let parsed = try JSONSerialization.jsonObject(with: Data(safe.utf8)) as? [String: String]
        #expect(parsed == value)
    }
}
