/// A configuration key by its environment name (`JOBD_LEASE`). A config file uses the
/// same name in lower case without `JOBD_` (`lease`).
///
/// Keys are declared where they are read, as static members: the daemon-wide ones beside
/// `DaemonConfiguration`, each tier's in its own module beside its settings type. Each
/// settings type lists its keys (`keys`); the keys the daemon reads — what the unknown-key
/// warning accepts and a reload compares — are the union the assembly builds from them.
/// Equal names are the same key.
public struct ConfigurationKey: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    /// A value never to be printed: it is shown as `***` in errors and never logged.
    public let isSecret: Bool

    public init(_ rawValue: String, secret: Bool = false) {
        self.rawValue = rawValue
        self.isSecret = secret
    }

    /// The name in a config file.
    public var fileKey: String { String(rawValue.dropFirst("JOBD_".count)).lowercased() }

    public var description: String { rawValue }

    public static func == (lhs: ConfigurationKey, rhs: ConfigurationKey) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

extension Array where Element == ConfigurationKey {
    /// Every key by its environment name.
    public var environmentNames: [String] { map(\.rawValue) }
    /// Every key by its config-file name.
    public var fileNames: [String] { map(\.fileKey) }
}

/// A configuration value that could not be used; the message names the key.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
    public var description: String { "\(key): \(reason)" }
}

/// Reads raw values from the shared configuration source (environment over file, as the
/// CLI assembles them; a dictionary in tests) and checks them: the parsing helpers every
/// settings type uses, so the same text means the same thing, and fails with the same
/// message, for every key. A blank value is unset.
public struct ConfigurationReader {
    private let lookup: (ConfigurationKey) -> String?

    public init(lookup: @escaping (ConfigurationKey) -> String?) {
        self.lookup = lookup
    }

    /// The trimmed value, nil when unset or blank.
    public func text(_ key: ConfigurationKey) -> String? {
        guard let raw = lookup(key) else { return nil }
        let value = raw.trimmingSpaces()
        return value.isEmpty ? nil : value
    }

    /// The error for a bad value: the key, the value (`***` for a secret) and why.
    public func invalid(_ key: ConfigurationKey, _ value: String, _ reason: String) -> ConfigurationError {
        let shown = key.isSecret ? "***" : value
        return ConfigurationError(key: key.rawValue, reason: "\"\(shown)\" is invalid: \(reason)")
    }

    /// Seconds written as a duration (`30`, `1.5`, `250ms`, `5m`, `2h`), at least `min`.
    public func seconds(_ key: ConfigurationKey, default value: Double, min: Double) throws(ConfigurationError) -> Double {
        guard let text = text(key) else { return value }
        guard let seconds = DurationText.seconds(text) else {
            throw invalid(key, text, "not a duration (seconds such as 30 or 1.5, or 250ms, 5m, 2h)")
        }
        guard seconds >= min else { throw invalid(key, text, "must be at least \(min) s") }
        return seconds
    }

    /// `seconds` as a `Duration`: the same syntax, bound and messages; `min` stays in
    /// seconds so the message reads as before. A value past 292 years (the most a
    /// `Duration` of nanoseconds in `Int64` holds) is clamped there, never trapped on.
    public func duration(_ key: ConfigurationKey, default value: Duration, min: Double) throws(ConfigurationError) -> Duration {
        guard text(key) != nil else { return value }
        return TotalConversion.duration(seconds: try seconds(key, default: 0, min: min))
    }

    /// `duration` with an upper bound too: a value above `max` is refused, naming the
    /// bound as `shown` (`1 day`, `3600 s`).
    public func duration(
        _ key: ConfigurationKey, default value: Duration, min: Double, max: Duration, shown: String
    ) throws(ConfigurationError) -> Duration {
        let result = try duration(key, default: value, min: min)
        guard result <= max else { throw invalid(key, text(key) ?? "", "must be at most \(shown)") }
        return result
    }

    public func integer(_ key: ConfigurationKey, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = text(key) else { return value }
        guard let number = Int(text) else { throw invalid(key, text, "not a whole number") }
        guard range.contains(number) else {
            throw invalid(key, text, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }
}
