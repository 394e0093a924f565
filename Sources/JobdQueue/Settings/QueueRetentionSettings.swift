import JobdCore

/// How long the queue tier keeps its history, applied by the built-in periodic job
/// `queue.trim`; and `JOBD_RETENTION_BATCH`, the batch every tier's trim job runs
/// with (the batch belongs to `RetentionRun`, the loop of this module they all share;
/// the assembly hands it to each tier's job). A window of nil is `off`: that data is
/// kept for ever. The other tiers' windows are their own
/// (`NotificationRetentionSettings`, `AnalyticsRetentionSettings`, `ContentSettings`).
public struct QueueRetentionSettings: Sendable, Equatable {
    /// `queue.attempts` rows of jobs that finished (or are gone) longer ago than this.
    public var attempts: Duration?
    /// Dead letters (with their dead jobs) that died longer ago than this.
    public var deadLetters: Duration?
    /// Rows each retention statement of every tier deletes or archives at most.
    public var batch: Int

    public init(attempts: Duration?, deadLetters: Duration?, batch: Int) {
        self.attempts = attempts
        self.deadLetters = deadLetters
        self.batch = batch
    }

    public static let defaults = QueueRetentionSettings(
        attempts: RetentionWindow.days(30), deadLetters: RetentionWindow.days(90), batch: RetentionRun.defaultBatch)
}

extension ConfigurationKey {
    public static let attemptsRetention = ConfigurationKey("JOBD_ATTEMPTS_RETENTION")
    public static let deadLetterRetention = ConfigurationKey("JOBD_DEAD_LETTER_RETENTION")
    public static let retentionBatch = ConfigurationKey("JOBD_RETENTION_BATCH")
}

extension QueueRetentionSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [.attemptsRetention, .deadLetterRetention, .retentionBatch]

    /// `JOBD_ATTEMPTS_RETENTION`, `JOBD_DEAD_LETTER_RETENTION` and `JOBD_RETENTION_BATCH`;
    /// the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> QueueRetentionSettings {
        var settings = QueueRetentionSettings.defaults
        settings.attempts = try reader.retentionWindow(.attemptsRetention, default: settings.attempts)
        settings.deadLetters = try reader.retentionWindow(.deadLetterRetention, default: settings.deadLetters)
        settings.batch = try reader.integer(.retentionBatch, default: settings.batch, range: RetentionRun.batchRange)
        return settings
    }
}
