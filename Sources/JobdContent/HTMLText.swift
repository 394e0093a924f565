import JobdCore

/// Readable text from an HTML mail body, for full-text search.
///
/// Not a browser: a single pass over the UTF-8 bytes that drops markup, comments
/// (including Outlook's `<!--[if mso]>` blocks), `<head>`, `<script>`, `<style>` and
/// `<title>` wholesale, decodes character references, turns block boundaries into
/// line breaks and table cells into spaces (so `<td>a</td><td>b</td>` never glues
/// into `ab`), and collapses whitespace as a browser would. Invisible preheader
/// fillers (`&zwnj;`, `&#847;`, soft hyphens, zero-width spaces) disappear.
public enum HTMLText {
    public static func extract(_ html: String) -> String {
        var scanner = Scanner(Array(html.utf8))
        return scanner.run()
    }

    /// Elements whose whole content is not text a reader sees.
    static let skippedElements: Set<String> = ["head", "script", "style", "title", "template", "noscript", "xml"]
    /// Boundaries that start a new paragraph.
    static let paragraphElements: Set<String> = [
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "hr",
        "section", "article", "header", "footer", "dl", "figure",
    ]
    /// Boundaries that start a new line.
    static let lineElements: Set<String> = [
        "br", "div", "tr", "li", "center", "dd", "dt", "tbody", "thead", "tfoot", "address", "main", "nav",
        "figcaption", "caption", "body", "html",
    ]
    /// Boundaries that separate words.
    static let spaceElements: Set<String> = ["td", "th", "img", "button", "input", "option", "label"]

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var output: [UInt8] = []
        var pendingSpace = false
        var pendingBreaks = 0

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            output.reserveCapacity(bytes.count / 3)
        }

        mutating func run() -> String {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "<"):
                    tag()
                case UInt8(ascii: "&"):
                    entity()
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"), 0x0C:
                    pendingSpace = true
                    index += 1
                case 0xC2 where next(1) == 0xA0:  // U+00A0 no-break space
                    pendingSpace = true
                    index += 2
                case 0xC2 where next(1) == 0xAD, 0xCD where next(1) == 0x8F:  // U+00AD soft hyphen, U+034F: invisible
                    index += 2
                case 0xE2 where next(1) == 0x80 && (0x8B...0x8D).contains(next(2)):  // U+200B…U+200D
                    index += 3
                case 0xEF where next(1) == 0xBB && next(2) == 0xBF:  // U+FEFF
                    index += 3
                default:
                    emit(byte)
                    index += 1
                }
            }
            return String(decoding: output, as: UTF8.self)
        }

        func next(_ offset: Int) -> UInt8 {
            index + offset < bytes.count ? bytes[index + offset] : 0
        }

        /// Appends one byte of visible text, after any pending separator.
        mutating func emit(_ byte: UInt8) {
            if !output.isEmpty {
                if pendingBreaks > 0 {
                    output.append(contentsOf: repeatElement(UInt8(ascii: "\n"), count: pendingBreaks))
                } else if pendingSpace {
                    output.append(UInt8(ascii: " "))
                }
            }
            pendingBreaks = 0
            pendingSpace = false
            output.append(byte)
        }

        mutating func emit(scalar: Unicode.Scalar) {
            switch scalar.value {
            case 0x20, 0x09, 0x0A, 0x0D, 0x0C, 0xA0, 0x2002, 0x2003, 0x2009:
                pendingSpace = true
            case 0xAD, 0x34F, 0x200B, 0x200C, 0x200D, 0xFEFF:
                break
            default:
                for byte in String(Character(scalar)).utf8 { emit(byte) }
            }
        }

        mutating func boundary(breaks: Int) {
            if breaks == 0 {
                pendingSpace = true
            } else {
                pendingBreaks = max(pendingBreaks, breaks)
            }
        }

        /// At `<`: a comment, a declaration, a tag, or a literal `<`.
        mutating func tag() {
            if starts(with: "<!--") {
                index = find("-->", from: index + 4).map { $0 + 3 } ?? bytes.count
                return
            }
            if next(1) == UInt8(ascii: "!") || next(1) == UInt8(ascii: "?") {
                index = find(">", from: index + 2).map { $0 + 1 } ?? bytes.count
                return
            }
            var cursor = index + 1
            let closing = cursor < bytes.count && bytes[cursor] == UInt8(ascii: "/")
            if closing { cursor += 1 }
            let nameStart = cursor
            while cursor < bytes.count, isNameByte(bytes[cursor]) { cursor += 1 }
            guard cursor > nameStart, isLetter(bytes[nameStart]) else {
                emit(UInt8(ascii: "<"))  // "a < b" is text
                index += 1
                return
            }
            let name = String(decoding: bytes[nameStart..<cursor].map(lowercased), as: UTF8.self)
            index = endOfTag(from: cursor)
            if !closing, HTMLText.skippedElements.contains(name) {
                skipElement(named: name)
                return
            }
            if HTMLText.paragraphElements.contains(name) {
                boundary(breaks: 2)
            } else if HTMLText.lineElements.contains(name) {
                boundary(breaks: 1)
            } else if HTMLText.spaceElements.contains(name) {
                boundary(breaks: 0)
            }
        }

        /// The index just past the tag's `>`, skipping quoted attribute values.
        func endOfTag(from start: Int) -> Int {
            var cursor = start
            var quote: UInt8 = 0
            while cursor < bytes.count {
                let byte = bytes[cursor]
                if quote != 0 {
                    if byte == quote { quote = 0 }
                } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                    quote = byte
                } else if byte == UInt8(ascii: ">") {
                    return cursor + 1
                }
                cursor += 1
            }
            return bytes.count
        }

        /// Skips to just past `</name …>` (case-insensitive), or to the end.
        mutating func skipElement(named name: String) {
            let pattern = Array("</\(name)".utf8)
            var cursor = index
            while cursor + pattern.count <= bytes.count {
                if bytes[cursor] == UInt8(ascii: "<"), matches(pattern, at: cursor),
                   cursor + pattern.count == bytes.count || !isNameByte(bytes[cursor + pattern.count]) {
                    index = endOfTag(from: cursor + pattern.count)
                    return
                }
                cursor += 1
            }
            index = bytes.count
        }

        /// At `&`: a character reference, or a literal `&`.
        mutating func entity() {
            var cursor = index + 1
            let limit = min(bytes.count, index + 40)
            while cursor < limit, bytes[cursor] != UInt8(ascii: ";"), isNameByte(bytes[cursor]) || bytes[cursor] == UInt8(ascii: "#") {
                cursor += 1
            }
            guard cursor < limit, bytes[cursor] == UInt8(ascii: ";"), cursor > index + 1 else {
                emit(UInt8(ascii: "&"))
                index += 1
                return
            }
            let body = String(decoding: bytes[(index + 1)..<cursor], as: UTF8.self)
            if let scalar = HTMLText.decodeReference(body) {
                emit(scalar: scalar)
                index = cursor + 1
            } else {
                emit(UInt8(ascii: "&"))
                index += 1
            }
        }

        func starts(with text: String) -> Bool { matches(Array(text.utf8), at: index) }

        func matches(_ pattern: [UInt8], at start: Int) -> Bool {
            guard start + pattern.count <= bytes.count else { return false }
            for offset in 0..<pattern.count where lowercased(bytes[start + offset]) != pattern[offset] { return false }
            return true
        }

        func find(_ text: String, from start: Int) -> Int? {
            let pattern = Array(text.utf8)
            var cursor = start
            while cursor + pattern.count <= bytes.count {
                if bytes[cursor] == pattern[0], matches(pattern, at: cursor) { return cursor }
                cursor += 1
            }
            return nil
        }
    }

    /// `amp`, `#38`, `#x26` → `&`; nil if unknown.
    static func decodeReference(_ body: String) -> Unicode.Scalar? {
        if body.hasPrefix("#") {
            let digits = body.dropFirst()
            let value: UInt32?
            if digits.first == "x" || digits.first == "X" {
                value = UInt32(digits.dropFirst(), radix: 16)
            } else {
                value = UInt32(digits, radix: 10)
            }
            guard let value, value != 0 else { return nil }
            return Unicode.Scalar(value) ?? Unicode.Scalar(0xFFFD)
        }
        return namedReferences[body]
    }

    static let namedReferences: [String: Unicode.Scalar] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}",
        "ensp": "\u{2002}", "emsp": "\u{2003}", "thinsp": "\u{2009}",
        "zwnj": "\u{200C}", "zwj": "\u{200D}", "shy": "\u{AD}",
        "copy": "©", "reg": "®", "trade": "™", "hellip": "…", "mdash": "—", "ndash": "–",
        "lsquo": "‘", "rsquo": "’", "sbquo": "‚", "ldquo": "“", "rdquo": "”", "bdquo": "„",
        "laquo": "«", "raquo": "»", "lsaquo": "‹", "rsaquo": "›",
        "bull": "•", "middot": "·", "dagger": "†", "deg": "°", "times": "×", "divide": "÷",
        "plusmn": "±", "micro": "µ", "para": "¶", "sect": "§", "frac12": "½", "frac14": "¼", "frac34": "¾",
        "sup1": "¹", "sup2": "²", "sup3": "³", "iexcl": "¡", "iquest": "¿",
        "euro": "€", "pound": "£", "yen": "¥", "cent": "¢", "curren": "¤",
        "larr": "←", "rarr": "→", "uarr": "↑", "darr": "↓", "harr": "↔", "hearts": "♥", "star": "☆",
        "check": "✓", "minus": "−", "prime": "′", "Prime": "″", "permil": "‰",
        "agrave": "à", "aacute": "á", "acirc": "â", "atilde": "ã", "auml": "ä", "aring": "å", "aelig": "æ",
        "ccedil": "ç", "egrave": "è", "eacute": "é", "ecirc": "ê", "euml": "ë",
        "igrave": "ì", "iacute": "í", "icirc": "î", "iuml": "ï", "ntilde": "ñ",
        "ograve": "ò", "oacute": "ó", "ocirc": "ô", "otilde": "õ", "ouml": "ö", "oslash": "ø",
        "ugrave": "ù", "uacute": "ú", "ucirc": "û", "uuml": "ü", "yacute": "ý", "yuml": "ÿ", "szlig": "ß",
        "Agrave": "À", "Aacute": "Á", "Acirc": "Â", "Auml": "Ä", "Aring": "Å", "AElig": "Æ", "Ccedil": "Ç",
        "Egrave": "È", "Eacute": "É", "Ecirc": "Ê", "Iacute": "Í", "Ntilde": "Ñ", "Oacute": "Ó",
        "Ouml": "Ö", "Oslash": "Ø", "Uacute": "Ú", "Uuml": "Ü", "oelig": "œ", "OElig": "Œ",
    ]
}

private func isLetter(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
}

private func isNameByte(_ byte: UInt8) -> Bool {
    isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
        || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_")
}

private func lowercased(_ byte: UInt8) -> UInt8 {
    (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
}
