import JobdCore

/// The queue tier's own settings beside the runtime's (`DaemonConfiguration`): its
/// periodic jobs and how long finished jobs are kept.
public struct QueueSettings: Sendable, Equatable {
    /// Periodic jobs (`JOBD_SCHEDULES`): the built-in ones plus the configured ones.
    public var schedules: [ScheduledJob] = ScheduledJob.defaults
    /// `queue.prune` deletes completed and cancelled jobs finished longer ago than this.
    public var completedRetention: Duration = .seconds(7 * 86_400)

    public init() {}
    public static let defaults = QueueSettings()
}

extension ConfigurationKey {
    public static let schedules = ConfigurationKey("JOBD_SCHEDULES")
    public static let completedRetention = ConfigurationKey("JOBD_COMPLETED_RETENTION")
}

extension QueueSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [.schedules, .completedRetention]

    /// `JOBD_SCHEDULES` and `JOBD_COMPLETED_RETENTION`. `contentPurge`: whether the
    /// content tier keeps content for a limited time (`JOBD_CONTENT_RETENTION`), which
    /// adds `content-purge` to the built-in schedules.
    public static func read(_ reader: ConfigurationReader, contentPurge: Bool) throws(ConfigurationError) -> QueueSettings {
        var settings = QueueSettings.defaults
        do {
            settings.schedules = try ScheduledJob.resolve(
                reader.text(.schedules), defaults: ScheduledJob.builtIns(contentRetention: contentPurge))
        } catch {
            throw ConfigurationError(key: ConfigurationKey.schedules.rawValue, reason: error.message)
        }
        settings.completedRetention = try reader.duration(.completedRetention, default: settings.completedRetention, min: 60)
        return settings
    }
}
