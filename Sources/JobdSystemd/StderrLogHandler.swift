import JobdCore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the daemon writes logs (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// journald when systemd connected stderr to the journal, text otherwise.
    case auto
    /// Native journal entries (``JournalLogHandler``).
    case journald
    /// One readable line per entry on stderr.
    case text
    /// One JSON object per line on stderr, for log shippers.
    case json

    /// `auto` decided for this process; the other cases are returned as they are.
    public func resolved() -> LogFormat {
        guard self == .auto else { return self }
        return JournalLogHandler.isStderrConnectedToJournal() ? .journald : .text
    }

    /// The handler for this format, for `LoggingSystem.bootstrap`.
    public func makeHandler(
        label: String,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        syslogIdentifier: String = "jobd"
    ) -> any LogHandler {
        switch resolved() {
        case .journald:
            JournalLogHandler(label: label, syslogIdentifier: syslogIdentifier, metadataProvider: metadataProvider)
        case .json:
            StderrLogHandler(label: label, style: .json, metadataProvider: metadataProvider)
        case .text, .auto:
            StderrLogHandler(label: label, style: .text, metadataProvider: metadataProvider)
        }
    }
}

/// Writes each entry as one line on stderr, as text or as a JSON object.
public struct StderrLogHandler: LogHandler {
    public enum Style: Sendable { case text, json }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let style: Style

    public init(
        label: String,
        style: Style = .text,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.style = style
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(handler: metadata, provider: metadataProvider, event: event.metadata)
        let ts = TextLogFormatter.now()
        let message = event.message.description
        switch style {
        case .text:
            Self.writeLine(TextLogFormatter.line(
                timestamp: ts, level: event.level, label: label, message: message, metadata: merged, error: event.error))
        case .json:
            Self.writeLine(TextLogFormatter.jsonLine(
                timestamp: ts, level: event.level, label: label, message: message, metadata: merged, error: event.error))
        }
    }

    /// One write(2) per line: lines from concurrent tasks don't interleave (atomic up to PIPE_BUF
    /// on pipes), and there is no stdio buffer to lose on a crash.
    static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(STDERR_FILENO, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return  // nowhere left to report a logging failure
                }
            }
        }
    }
}

/// Pure formatting for the stderr formats (tested without I/O).
enum TextLogFormatter {
    /// `2026-11-25T10:00:00.123Z info jobd: message key=value key2="two words"`, keys sorted.
    static func line(
        timestamp: String, level: Logger.Level, label: String, message: String,
        metadata: Logger.Metadata, error: (any Error)? = nil
    ) -> String {
        // Escaped newlines keep one entry on one line, so grep and tail stay useful.
        var out = "\(timestamp) \(level) \(label): \(escapeControl(message))"
        for key in metadata.keys.sorted() {
            out += " \(key)=\(quoteIfNeeded(metadata[key]!.description))"
        }
        if let error {
            out += " error=\(quoteIfNeeded(String(describing: error)))"
        }
        return out
    }

    /// `{"ts":…,"level":…,"label":…,"message":…,"metadata":{…},"error":…}`; metadata stays nested
    /// so a key like "message" can't clash with the fixed fields.
    static func jsonLine(
        timestamp: String, level: Logger.Level, label: String, message: String,
        metadata: Logger.Metadata, error: (any Error)? = nil
    ) -> String {
        var out = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(level.rawValue))"
        out += ",\"label\":\(jsonString(label)),\"message\":\(jsonString(message))"
        if !metadata.isEmpty {
            out += ",\"metadata\":" + json(.dictionary(metadata))
        }
        if let error {
            out += ",\"error\":" + jsonString(String(describing: error))
        }
        return out + "}"
    }

    static func quoteIfNeeded(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F
        }
        guard needsQuotes else { return value }
        return "\"" + escapeControl(value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")) + "\""
    }

    static func escapeControl(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): jsonString(s)
        case .stringConvertible(let c): jsonString(c.description)
        case .array(let items): "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let dict):
            "{" + dict.keys.sorted().map { jsonString($0) + ":" + json(dict[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = ""
        JSONValue.appendQuoted(s, to: &out)
        return out
    }

    /// Current UTC time, millisecond precision.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return timestamp(epochSeconds: Int(ts.tv_sec), milliseconds: Int(ts.tv_nsec) / 1_000_000)
    }

    /// RFC 3339 UTC: `2026-11-25T10:00:00.123Z`.
    static func timestamp(epochSeconds: Int, milliseconds: Int) -> String {
        var t = time_t(epochSeconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))"
            + "T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}

extension String {
    /// Foundation-free replacement (this target avoids Foundation to keep the daemon lean).
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self {
            if c == target { out += replacement } else { out.append(c) }
        }
        return out
    }
}
