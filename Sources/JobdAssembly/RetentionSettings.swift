import JobdAnalytics
import JobdCore
import JobdNotifications
import JobdQueue

/// The retention of the tiers whose trim jobs share `RetentionRun`, composed: each
/// tier declares, reads and bounds its own windows; this only gathers them (the
/// content tier's retention is part of `ContentSettings`, applied by `content.purge`).
public struct RetentionSettings: Sendable, Equatable {
    /// `queue.trim`'s windows, and `JOBD_RETENTION_BATCH` for every trim job.
    public var queue: QueueRetentionSettings
    /// `notifications.trim`'s windows.
    public var notifications: NotificationRetentionSettings
    /// `analytics.trim`'s window.
    public var analytics: AnalyticsRetentionSettings

    public init(
        queue: QueueRetentionSettings = .defaults, notifications: NotificationRetentionSettings = .defaults,
        analytics: AnalyticsRetentionSettings = .defaults
    ) {
        self.queue = queue
        self.notifications = notifications
        self.analytics = analytics
    }

    public static let defaults = RetentionSettings()

    /// Rows each retention statement of every tier touches at most.
    public var batch: Int { queue.batch }

    /// The keys `read` reads: each tier's.
    public static let keys: [ConfigurationKey] =
        QueueRetentionSettings.keys + NotificationRetentionSettings.keys + AnalyticsRetentionSettings.keys

    /// Each tier's retention keys, in the order the keys have always been read (so the
    /// first bad one is the one reported, as before).
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> RetentionSettings {
        let queue = try QueueRetentionSettings.read(reader)
        let notifications = try NotificationRetentionSettings.read(reader)
        let analytics = try AnalyticsRetentionSettings.read(reader)
        return RetentionSettings(queue: queue, notifications: notifications, analytics: analytics)
    }
}
