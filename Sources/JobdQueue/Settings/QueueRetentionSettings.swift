import JobdCore

/// How long each tier keeps what it no longer needs, applied by the built-in
/// periodic jobs `queue.trim`, `notifications.trim` and `analytics.trim` (and
/// `content.purge` for `JOBD_CONTENT_RETENTION`). A window of nil is `off`: that
/// data is kept for ever. One type beside `RetentionRun`, the loop every tier's trim
/// job shares; each tier's handler reads its own windows from it.
public struct RetentionSettings: Sendable, Equatable {
    /// `queue.attempts` rows of jobs that finished (or are gone) longer ago than this.
    public var attempts: Double?
    /// Dead letters (with their dead jobs) that died longer ago than this.
    public var deadLetters: Double?
    /// Finished notifications lose their body and their tries' excerpts after this.
    public var notificationsArchive: Double?
    /// Finished notifications (and their tries) are deleted after this.
    public var notifications: Double?
    /// Application events (`analytics.events`) are deleted this long after their day ended, once
    /// that day was rolled up.
    public var analytics: Double?
    /// Rows each retention statement deletes or archives at most.
    public var batch: Int

    public init(
        attempts: Double?, deadLetters: Double?, notificationsArchive: Double?, notifications: Double?,
        analytics: Double?, batch: Int
    ) {
        self.attempts = attempts
        self.deadLetters = deadLetters
        self.notificationsArchive = notificationsArchive
        self.notifications = notifications
        self.analytics = analytics
        self.batch = batch
    }

    public static let day = 86_400.0

    public static let defaults = RetentionSettings(
        attempts: 30 * day, deadLetters: 90 * day, notificationsArchive: 30 * day, notifications: 180 * day,
        analytics: 90 * day, batch: 5_000)

    /// The shortest window any retention key accepts: less would delete history an
    /// operator still looks at after a bad night, and the SQL refuses it too.
    public static let minimumWindow = day
    /// The longest window (100 years): past it, timestamp arithmetic overflows.
    public static let maximumWindow = 36_500 * day
    public static let batchRange = 1...100_000
}

extension ConfigurationKey {
    public static let attemptsRetention = ConfigurationKey("JOBD_ATTEMPTS_RETENTION")
    public static let deadLetterRetention = ConfigurationKey("JOBD_DEAD_LETTER_RETENTION")
    public static let notifyArchiveAfter = ConfigurationKey("JOBD_NOTIFY_ARCHIVE_AFTER")
    public static let notifyRetention = ConfigurationKey("JOBD_NOTIFY_RETENTION")
    public static let analyticsRetention = ConfigurationKey("JOBD_ANALYTICS_RETENTION")
    public static let retentionBatch = ConfigurationKey("JOBD_RETENTION_BATCH")
}

extension RetentionSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [
        .attemptsRetention, .deadLetterRetention, .notifyArchiveAfter, .notifyRetention, .analyticsRetention, .retentionBatch,
    ]

    /// The `JOBD_*_RETENTION` keys and `JOBD_RETENTION_BATCH`; the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> RetentionSettings {
        var settings = RetentionSettings.defaults
        settings.attempts = try reader.window(.attemptsRetention, default: settings.attempts)
        settings.deadLetters = try reader.window(.deadLetterRetention, default: settings.deadLetters)
        settings.notificationsArchive = try reader.window(.notifyArchiveAfter, default: settings.notificationsArchive)
        settings.notifications = try reader.window(.notifyRetention, default: settings.notifications)
        if let archive = settings.notificationsArchive, let delete = settings.notifications, delete < archive {
            throw reader.invalid(.notifyRetention, reader.text(.notifyRetention) ?? "",
                                 "must be at least JOBD_NOTIFY_ARCHIVE_AFTER (\(archive) s)")
        }
        settings.analytics = try reader.window(.analyticsRetention, default: settings.analytics)
        settings.batch = try reader.integer(.retentionBatch, default: settings.batch, range: RetentionSettings.batchRange)
        return settings
    }
}

extension ConfigurationReader {
    /// A retention window: a duration between a day and 100 years, or `off` (nil).
    func window(_ key: ConfigurationKey, default value: Double?) throws(ConfigurationError) -> Double? {
        guard let text = text(key) else { return value }
        if text.lowercased() == "off" { return nil }
        guard let seconds = DurationText.seconds(text), seconds.isFinite else {
            throw invalid(key, text, "not a duration (e.g. 30d or 720h) or off")
        }
        guard seconds >= RetentionSettings.minimumWindow, seconds <= RetentionSettings.maximumWindow else {
            throw invalid(key, text, "must be between 1d and 36500d, or off")
        }
        return seconds
    }
}
