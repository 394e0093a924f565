import Logging
import Synchronization

/// The process's log level, shared by every logger so a reload (SIGHUP) can change
/// it at once without re-creating loggers that services captured at start.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<Int>

    public init(_ level: Logger.Level) {
        raw = Atomic(Self.index(level))
    }

    public var level: Logger.Level {
        get { Logger.Level.allCases[raw.load(ordering: .relaxed)] }
        set { raw.store(Self.index(newValue), ordering: .relaxed) }
    }

    private static func index(_ level: Logger.Level) -> Int {
        Logger.Level.allCases.firstIndex(of: level) ?? 2
    }
}

/// Wraps a handler so its level is the process's `LogLevelControl`. Setting
/// `logLevel` on any logger sets it for all: jobd has one level per process.
public struct ProcessLevelLogHandler: LogHandler {
    public var wrapped: any LogHandler
    public let control: LogLevelControl

    public init(wrapping handler: any LogHandler, control: LogLevelControl) {
        self.wrapped = handler
        self.control = control
    }

    public var logLevel: Logger.Level {
        get { control.level }
        set { control.level = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        wrapped.log(event: event)
    }
}
