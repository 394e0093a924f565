import Logging
import Synchronization

/// Collects log entries in memory so tests can assert what was logged.
public final class LogCapture: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public var all: [Entry] { entries.withLock { $0 } }

    public func messages(_ text: String) -> [Entry] { all.filter { $0.message == text } }

    public func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "jobd.test") { _ in InMemoryLogHandler(capture: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
}

public struct InMemoryLogHandler: LogHandler {
    let capture: LogCapture
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        capture.append(.init(
            level: event.level, message: "\(event.message)",
            metadata: merged.mapValues { "\($0)" }))
    }
}
