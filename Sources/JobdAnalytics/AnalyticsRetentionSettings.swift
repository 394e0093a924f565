import JobdCore
import JobdQueue

/// How long the analytics tier keeps application events, applied by the built-in
/// periodic job `analytics.trim`. A window of nil is `off`.
public struct AnalyticsRetentionSettings: Sendable, Equatable {
    /// Application events (`analytics.events`) are deleted this long after their day
    /// ended, once that day was rolled up.
    public var events: Duration?

    public init(events: Duration?) {
        self.events = events
    }

    public static let defaults = AnalyticsRetentionSettings(events: RetentionWindow.days(90))
}

extension ConfigurationKey {
    public static let analyticsRetention = ConfigurationKey("JOBD_ANALYTICS_RETENTION")
}

extension AnalyticsRetentionSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [.analyticsRetention]

    /// `JOBD_ANALYTICS_RETENTION`; a bad value throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> AnalyticsRetentionSettings {
        AnalyticsRetentionSettings(events: try reader.retentionWindow(.analyticsRetention, default: defaults.events))
    }
}
