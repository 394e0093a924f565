import JobdCore

/// What jobd does with expired content (`JOBD_CONTENT_RETENTION_ACTION`,
/// `content.tenant_retention.action`).
public enum ContentRetentionAction: String, Sendable, Equatable, CaseIterable {
    /// Delete the message: metadata, bodies, attachment links, unreferenced attachments.
    case purge
    /// Keep the metadata row (who, when, subject, sizes) and delete bodies,
    /// attachments and the search vector.
    case archive
}

/// Settings of the content tier (`JOBD_CONTENT_*`).
public struct ContentSettings: Sendable, Equatable {
    /// zlib level for bodies and attachments, 1 (fastest) … 9 (smallest).
    public var compressionLevel: Int
    /// Default retention for tenants without a row in `content.tenant_retention`; nil
    /// keeps content forever. At most `maximumRetention` (`retention(seconds:)`).
    public var retention: Duration?
    public var retentionAction: ContentRetentionAction
    /// Messages one `content.purge` statement expires at a time.
    public var purgeBatch: Int
    /// Messages whose search vector one indexer statement fills.
    public var indexBatch: Int
    /// How often the indexer looks for unindexed messages when it found none.
    public var indexInterval: Duration
    /// How long the indexer may leave messages unindexed while this process's
    /// `content.write` lane is busy, counted from when it last caught up; then it
    /// catches up busy or not. Zero: it never waits for the lane.
    public var indexMaxDelay: Duration

    public init(
        compressionLevel: Int = 6, retention: Duration? = nil, retentionAction: ContentRetentionAction = .purge,
        purgeBatch: Int = 1_000, indexBatch: Int = 500, indexInterval: Duration = .seconds(1),
        indexMaxDelay: Duration = .seconds(5)
    ) {
        self.compressionLevel = compressionLevel
        self.retention = retention
        self.retentionAction = retentionAction
        self.purgeBatch = purgeBatch
        self.indexBatch = indexBatch
        self.indexInterval = indexInterval
        self.indexMaxDelay = indexMaxDelay
    }

    public static let defaults = ContentSettings()

    /// The longest default retention, 10¹¹ s (3,170 years): older than any row, so the
    /// same as keeping everything, while `now()` minus it stays inside timestamptz's
    /// range.
    public static let maximumRetention: Duration = .seconds(100_000_000_000)

    /// A retention of `seconds` (a configured value of any size): whole seconds,
    /// rounded up, clamped to 0…`maximumRetention`; NaN is 0. Never traps.
    public static func retention(seconds: Double) -> Duration {
        .seconds(Int64(TotalConversion.seconds(seconds.rounded(.up), in: 0...maximumRetention.seconds)))
    }
}

extension ConfigurationKey {
    public static let contentCompressionLevel = ConfigurationKey("JOBD_CONTENT_COMPRESSION_LEVEL")
    public static let contentRetention = ConfigurationKey("JOBD_CONTENT_RETENTION")
    public static let contentRetentionAction = ConfigurationKey("JOBD_CONTENT_RETENTION_ACTION")
    public static let contentPurgeBatch = ConfigurationKey("JOBD_CONTENT_PURGE_BATCH")
    public static let contentIndexBatch = ConfigurationKey("JOBD_CONTENT_INDEX_BATCH")
    public static let contentIndexInterval = ConfigurationKey("JOBD_CONTENT_INDEX_INTERVAL")
    public static let contentIndexMaxDelay = ConfigurationKey("JOBD_CONTENT_INDEX_MAX_DELAY")
}

extension ContentSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [
        .contentCompressionLevel, .contentRetention, .contentRetentionAction, .contentPurgeBatch, .contentIndexBatch,
        .contentIndexInterval, .contentIndexMaxDelay,
    ]

    /// The `JOBD_CONTENT_*` keys; the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> ContentSettings {
        var settings = ContentSettings.defaults
        settings.compressionLevel = try reader.integer(
            .contentCompressionLevel, default: settings.compressionLevel, range: 1...9)
        if let text = reader.text(.contentRetention), !["off", "none", "forever"].contains(text.lowercased()) {
            guard let seconds = DurationText.seconds(text) else {
                throw reader.invalid(.contentRetention, text, "not a duration (such as 90d or 12h) or off")
            }
            guard seconds >= 60 else { throw reader.invalid(.contentRetention, text, "must be at least 60 s, or off") }
            settings.retention = retention(seconds: seconds)
        }
        if let text = reader.text(.contentRetentionAction) {
            guard let action = ContentRetentionAction(rawValue: text.lowercased()) else {
                throw reader.invalid(.contentRetentionAction, text, "expected purge or archive")
            }
            settings.retentionAction = action
        }
        settings.purgeBatch = try reader.integer(.contentPurgeBatch, default: settings.purgeBatch, range: 1...100_000)
        settings.indexBatch = try reader.integer(.contentIndexBatch, default: settings.indexBatch, range: 1...100_000)
        settings.indexInterval = try reader.duration(.contentIndexInterval, default: settings.indexInterval, min: 0.01)
        settings.indexMaxDelay = try reader.duration(
            .contentIndexMaxDelay, default: settings.indexMaxDelay, min: 0, max: .seconds(3_600), shown: "3600 s")
        return settings
    }
}
