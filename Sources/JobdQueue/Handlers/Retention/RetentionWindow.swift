import JobdCore

/// A retention window — how long a tier keeps a kind of row — as configuration
/// (`JOBD_*_RETENTION`) and trim-job payloads (`"older_than": "30d"`) write it: a
/// duration between a day and 100 years, or `off`. One parser for both doors, so the
/// same text means the same window everywhere and no text, however long, negative or
/// malformed, reaches a `Duration` or a statement unbounded.
public enum RetentionWindow {
    /// The shortest window: less would delete history an operator still looks at after
    /// a bad night, and the queue's SQL refuses it too.
    public static let minimum = days(1)
    /// The longest window (100 years): past it, timestamp arithmetic overflows.
    public static let maximum = days(36_500)

    /// `count` days.
    public static func days(_ count: Int) -> Duration { .seconds(count * 86_400) }

    public enum Parsed: Sendable, Equatable {
        /// `off` (any case): keep for ever.
        case off
        /// A duration within `minimum...maximum`.
        case window(Duration)
        /// Not a duration (`DurationText`) nor `off`.
        case notADuration
        /// A duration outside `minimum...maximum`.
        case outOfRange
    }

    /// `text` as a window. Never traps: `DurationText` refuses NaN, infinities and
    /// negative numbers, and the bounds are checked on the seconds before any
    /// conversion, so only a value within 100 years becomes a `Duration`.
    public static func parse(_ text: String) -> Parsed {
        if text.lowercased() == "off" { return .off }
        guard let seconds = DurationText.seconds(text), seconds.isFinite else { return .notADuration }
        guard seconds >= minimum.seconds, seconds <= maximum.seconds else { return .outOfRange }
        return .window(TotalConversion.duration(seconds: seconds))
    }

    /// A payload field that is a window: a string `parse` accepts; nil is `"off"`.
    /// Anything else fails the job permanently, naming the field and the bounds.
    public static func payload(_ value: JSONValue, field: String, kind: String) throws -> Duration? {
        if case .string(let text) = value {
            switch parse(text) {
            case .off: return nil
            case .window(let window): return window
            case .notADuration, .outOfRange: break
            }
        }
        throw JobFailure.permanent(
            "\(kind) payload: \(field) must be a duration between 1d and 36500d (e.g. \"30d\") or \"off\"",
            code: "payload_invalid")
    }
}

extension ConfigurationReader {
    /// A retention window (`RetentionWindow.parse`), `default` when unset; nil is `off`.
    public func retentionWindow(_ key: ConfigurationKey, default value: Duration?) throws(ConfigurationError) -> Duration? {
        guard let text = text(key) else { return value }
        switch RetentionWindow.parse(text) {
        case .off: return nil
        case .window(let window): return window
        case .notADuration: throw invalid(key, text, "not a duration (e.g. 30d or 720h) or off")
        case .outOfRange: throw invalid(key, text, "must be between 1d and 36500d, or off")
        }
    }
}
