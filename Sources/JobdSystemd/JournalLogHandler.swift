import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler that writes structured entries to journald with `sd_journal_sendv(3)`,
/// so metadata become real journal fields (`journalctl JOB_ID=42`) instead of text in MESSAGE.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let syslogIdentifier: String

    public init(
        label: String,
        syslogIdentifier: String = "jobd",
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.syslogIdentifier = syslogIdentifier
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(handler: metadata, provider: metadataProvider, event: event.metadata)
        let fields = Self.fields(
            level: event.level,
            message: event.message.description,
            metadata: merged,
            error: event.error,
            file: event.file,
            function: event.function,
            line: event.line,
            syslogIdentifier: syslogIdentifier
        )
        if Self.send(fields) < 0 {
            // journald is gone (e.g. restarting): keep the line on stderr rather than lose it.
            StderrLogHandler.writeLine(
                TextLogFormatter.line(
                    timestamp: TextLogFormatter.now(), level: event.level, label: label,
                    message: event.message.description, metadata: merged, error: event.error
                )
            )
        }
    }

    // MARK: Pure mapping (unit-tested without journald)

    /// One journal field: `name` is already a valid journald field name.
    public struct Field: Hashable, Sendable, CustomStringConvertible {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
        /// The `NAME=value` form `sd_journal_sendv` takes.
        public var description: String { "\(name)=\(value)" }
    }

    /// Fields this handler sets itself; metadata keys mapping onto them are prefixed so they
    /// can't add a second MESSAGE or PRIORITY to an entry.
    static let reservedNames: Set<String> = [
        "MESSAGE", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "SYSLOG_IDENTIFIER",
    ]

    /// Everything that goes into one journal entry, in a stable order: the fixed fields, then the
    /// metadata sorted by key. Nested metadata (dictionary/array) become their description.
    public static func fields(
        level: Logger.Level,
        message: String,
        metadata: Logger.Metadata,
        error: (any Error)? = nil,
        file: String,
        function: String,
        line: UInt,
        syslogIdentifier: String
    ) -> [Field] {
        var fields: [Field] = [
            Field("MESSAGE", message),
            Field("PRIORITY", String(priority(level))),
            Field("CODE_FILE", file),
            Field("CODE_LINE", String(line)),
            Field("CODE_FUNC", function),
            Field("SYSLOG_IDENTIFIER", syslogIdentifier),
        ]
        if let error {
            fields.append(Field("ERROR", String(describing: error)))
        }
        for key in metadata.keys.sorted() {
            var name = fieldName(forMetadataKey: key)
            if reservedNames.contains(name) { name = "X_" + name }
            fields.append(Field(name, metadata[key]!.description))
        }
        return fields
    }

    /// syslog(3) priorities, which journald stores in PRIORITY.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// journald accepts only `[A-Z0-9_]`, at most 64 characters, starting with a letter
    /// (a leading `_` marks trusted fields and is dropped; a leading digit is rejected).
    /// `job_id` → `JOB_ID`, `job.kind` → `JOB_KIND`, `1st` → `X_1ST`.
    public static func fieldName(forMetadataKey key: String) -> String {
        var name = String(
            key.unicodeScalars.map { scalar -> Character in
                switch scalar {
                case "a"..."z": Character(String(scalar).uppercased())
                case "A"..."Z", "0"..."9", "_": Character(scalar)
                default: "_"
                }
            }
        )
        if !(name.first.map { ("A"..."Z").contains($0) } ?? false) {
            name = "X_" + name
        }
        return String(name.prefix(64))
    }

    // MARK: Output

    /// Hands the fields to journald in one datagram; returns sd_journal_sendv's result (< 0 = -errno).
    static func send(_ fields: [Field]) -> Int32 {
        // One buffer for all fields so a single withUnsafeMutableBytes keeps every iovec's
        // memory alive for the duration of the call.
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.description.utf8)
            ranges.append(start..<bytes.count)
        }
        guard !bytes.isEmpty else { return -EINVAL }
        return bytes.withUnsafeMutableBytes { raw -> Int32 in
            let base = raw.baseAddress!
            let iov = ranges.map { iovec(iov_base: base + $0.lowerBound, iov_len: $0.count) }
            return iov.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }

    /// True when stderr is a stream systemd connected to journald (systemd sets
    /// `JOURNAL_STREAM=<device>:<inode>` of that stream; if fd 2 still is that file, we were
    /// not redirected). The daemon then prefers native journal entries over text.
    public static func isStderrConnectedToJournal() -> Bool {
        guard let raw = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: raw).split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}

/// Handler metadata, then the provider's (task-local context), then the call's; later wins.
func mergedMetadata(
    handler: Logger.Metadata,
    provider: Logger.MetadataProvider?,
    event: Logger.Metadata?
) -> Logger.Metadata {
    var merged = handler
    if let provided = provider?.get(), !provided.isEmpty {
        merged.merge(provided) { _, new in new }
    }
    if let event, !event.isEmpty {
        merged.merge(event) { _, new in new }
    }
    return merged
}
