/// What a configuration reload (SIGHUP) may change in a running daemon.
///
/// Reloadable keys take effect at once; every other changed key is reported by name
/// as needing a restart and keeps its running value, so a reload never half-applies
/// a connection change. Decided from the raw values of each key before and after,
/// over the keys the daemon reads (every tier's), so a key added later is covered
/// without touching this type.
public struct ReloadPlan: Sendable, Equatable {
    public typealias Key = ConfigurationKey

    /// Keys whose value changed, in the order of `keys`.
    public var changed: [Key]
    /// Changed keys applied without a restart.
    public var live: [Key] { changed.filter(\.isReloadable) }
    /// Changed keys that need a restart to take effect.
    public var needRestart: [Key] { changed.filter { !$0.isReloadable } }

    public init(old: [Key: String], new: [Key: String], keys: [Key]) {
        func normalized(_ value: String?) -> String? {
            guard let value else { return nil }
            let trimmed = value.trimmingSpaces()
            return trimmed.isEmpty ? nil : trimmed
        }
        changed = keys.filter { normalized(old[$0]) != normalized(new[$0]) }
    }
}

extension ConfigurationKey {
    /// Keys a running daemon applies on SIGHUP. Worker counts are live as long as the
    /// pool layout keeps its lanes (the runtime checks and says so otherwise).
    public var isReloadable: Bool { self == .logLevel || self == .workers }
}
