import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdQueue

/// Every setting of jobd, validated: the daemon-wide ones (`DaemonConfiguration`, in
/// JobdCore) and each tier's, each read and bounded by the module that owns it from one
/// shared source. The daemon-wide fields read directly (`settings.lease`); a tier's are
/// under its name (`settings.notifications.timeout`).
@dynamicMemberLookup
public struct JobdSettings: Sendable, Equatable {
    /// Connections, workers, the queue runtime's timing and bounds, logging, metrics, console.
    public var daemon: DaemonConfiguration
    /// The queue tier's periodic jobs and finished-job retention.
    public var queue: QueueSettings
    /// Each tier's retention windows for its trim job (they share `RetentionRun`).
    public var retention: RetentionSettings
    /// The content tier (`JOBD_CONTENT_*`).
    public var content: ContentSettings
    /// Webhook, email and SMS delivery (`notification.send`).
    public var notifications: NotificationSettings
    /// Campaign fan-out and delivery (`JOBD_CAMPAIGN_*`).
    public var campaigns: CampaignSettings

    public init(
        daemon: DaemonConfiguration = .defaults, queue: QueueSettings = .defaults, retention: RetentionSettings = .defaults,
        content: ContentSettings = .defaults, notifications: NotificationSettings = .defaults,
        campaigns: CampaignSettings = .defaults
    ) {
        self.daemon = daemon
        self.queue = queue
        self.retention = retention
        self.content = content
        self.notifications = notifications
        self.campaigns = campaigns
    }

    public static let defaults = JobdSettings()

    public subscript<T>(dynamicMember path: WritableKeyPath<DaemonConfiguration, T>) -> T {
        get { daemon[keyPath: path] }
        set { daemon[keyPath: path] = newValue }
    }

    public subscript<T>(dynamicMember path: KeyPath<DaemonConfiguration, T>) -> T {
        daemon[keyPath: path]
    }
}

extension JobdSettings {
    /// Every key jobd reads: the union of the keys each settings type declares, in the
    /// order `read` reads them. The unknown-key warning accepts exactly these names, and
    /// a reload compares exactly these values.
    public static let keys: [ConfigurationKey] =
        DaemonConfiguration.keys + ContentSettings.keys + QueueSettings.keys + NotificationSettings.keys
        + CampaignSettings.keys + RetentionSettings.keys

    /// Reads every tier's settings from one source; the first bad key throws, naming the
    /// key and the value (or `***` for a secret).
    public static func read(_ lookup: @escaping (ConfigurationKey) -> String?) throws(ConfigurationError) -> JobdSettings {
        let reader = ConfigurationReader(lookup: lookup)
        let daemon = try DaemonConfiguration.read(reader)
        let content = try ContentSettings.read(reader)
        let queue = try QueueSettings.read(reader, contentPurge: content.retention != nil)
        let notifications = try NotificationSettings.read(reader)
        let campaigns = try CampaignSettings.read(reader)
        let retention = try RetentionSettings.read(reader)
        return JobdSettings(
            daemon: daemon, queue: queue, retention: retention, content: content, notifications: notifications,
            campaigns: campaigns)
    }
}
