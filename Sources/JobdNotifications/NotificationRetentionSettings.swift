import JobdCore
import JobdQueue

/// How long the notifications tier keeps finished notifications, applied by the
/// built-in periodic job `notifications.trim`. A window of nil is `off`.
public struct NotificationRetentionSettings: Sendable, Equatable {
    /// Finished notifications lose their body and their tries' excerpts after this.
    public var archiveAfter: Duration?
    /// Finished notifications (and their tries) are deleted after this.
    public var deleteAfter: Duration?

    public init(archiveAfter: Duration?, deleteAfter: Duration?) {
        self.archiveAfter = archiveAfter
        self.deleteAfter = deleteAfter
    }

    public static let defaults = NotificationRetentionSettings(
        archiveAfter: RetentionWindow.days(30), deleteAfter: RetentionWindow.days(180))
}

extension ConfigurationKey {
    public static let notifyArchiveAfter = ConfigurationKey("JOBD_NOTIFY_ARCHIVE_AFTER")
    public static let notifyRetention = ConfigurationKey("JOBD_NOTIFY_RETENTION")
}

extension NotificationRetentionSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [.notifyArchiveAfter, .notifyRetention]

    /// `JOBD_NOTIFY_ARCHIVE_AFTER` and `JOBD_NOTIFY_RETENTION` (never shorter than the
    /// archive window); the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> NotificationRetentionSettings {
        var settings = NotificationRetentionSettings.defaults
        settings.archiveAfter = try reader.retentionWindow(.notifyArchiveAfter, default: settings.archiveAfter)
        settings.deleteAfter = try reader.retentionWindow(.notifyRetention, default: settings.deleteAfter)
        if let archive = settings.archiveAfter, let delete = settings.deleteAfter, delete < archive {
            throw reader.invalid(.notifyRetention, reader.text(.notifyRetention) ?? "",
                                 "must be at least JOBD_NOTIFY_ARCHIVE_AFTER (\(archive.seconds) s)")
        }
        return settings
    }
}
