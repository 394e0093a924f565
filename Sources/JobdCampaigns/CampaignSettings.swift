import JobdCore

/// Tunables of campaign sending (`JOBD_CAMPAIGN_*`), read and bounded by `read`.
public struct CampaignSettings: Sendable, Equatable {
    /// List members turned into deliveries per fan-out statement.
    public var pageSize = 1_000
    /// How long a recipient's claim lasts: longer than one SMTP transaction may take.
    public var sendingWindow: Duration = .seconds(120)
    /// Sends to a recipient before a deferring (4xx) relay makes it `failed`.
    public var maxTries = 5
    /// First retry of a deferred recipient; doubles per try up to `deferMaximum`.
    public var deferBase: Duration = .seconds(60)
    public var deferMaximum: Duration = .seconds(3_600)
    /// How often a delivery job of a paused campaign looks again.
    public var pauseRecheck: Duration = .seconds(5)
    /// SMTP transfers at once across campaigns (curl workers).
    public var concurrency = 16
    /// To establish an SMTP connection (TCP + TLS), and for a whole transaction.
    public var connectTimeout: Duration = .seconds(10)
    public var timeout: Duration = .seconds(60)
    /// The longest a batch sleeps for a throttle (domain or account) before it
    /// gives its worker back and snoozes instead.
    public var throttleWait: Duration = .seconds(1)
    /// How often the outbox relay's sweep looks for open recipients of sending
    /// campaigns that no unfinished delivery job covers (and enqueues them again).
    public var sweepInterval: Duration = .seconds(30)
    /// The most recipients a deliver batch claims in one statement and records in
    /// one (fewer when sends are slow: a group spans about 0.25 s of sends). A crash
    /// may send again every recipient of the groups in flight whose sends were
    /// done but not yet recorded: at most this many per curl worker. 1: one claim
    /// and one record per recipient.
    public var sendGroup = 50

    public init() {}
    public static let defaults = CampaignSettings()
}

extension ConfigurationKey {
    public static let campaignPageSize = ConfigurationKey("JOBD_CAMPAIGN_PAGE_SIZE")
    public static let campaignClaimWindow = ConfigurationKey("JOBD_CAMPAIGN_CLAIM_WINDOW")
    public static let campaignMaxTries = ConfigurationKey("JOBD_CAMPAIGN_MAX_TRIES")
    public static let campaignDeferBase = ConfigurationKey("JOBD_CAMPAIGN_DEFER_BASE")
    public static let campaignDeferMax = ConfigurationKey("JOBD_CAMPAIGN_DEFER_MAX")
    public static let campaignPauseRecheck = ConfigurationKey("JOBD_CAMPAIGN_PAUSE_RECHECK")
    public static let campaignConcurrency = ConfigurationKey("JOBD_CAMPAIGN_CONCURRENCY")
    public static let campaignThrottleWait = ConfigurationKey("JOBD_CAMPAIGN_THROTTLE_WAIT")
    public static let campaignSweepInterval = ConfigurationKey("JOBD_CAMPAIGN_SWEEP_INTERVAL")
    public static let campaignSendGroup = ConfigurationKey("JOBD_CAMPAIGN_SEND_GROUP")
}

extension CampaignSettings {
    /// The keys `read` reads.
    public static let keys: [ConfigurationKey] = [
        .campaignPageSize, .campaignClaimWindow, .campaignMaxTries, .campaignDeferBase, .campaignDeferMax,
        .campaignPauseRecheck, .campaignConcurrency, .campaignThrottleWait, .campaignSweepInterval, .campaignSendGroup,
    ]

    /// The `JOBD_CAMPAIGN_*` keys; the first bad one throws, naming it.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> CampaignSettings {
        var settings = CampaignSettings.defaults
        settings.pageSize = try reader.integer(.campaignPageSize, default: settings.pageSize, range: 1...10_000)
        // A claim must outlast the longest SMTP transaction, or a slow send would be
        // claimed (and sent) again by another batch while still under way.
        let transaction = (settings.connectTimeout + settings.timeout).seconds
        settings.sendingWindow = try reader.duration(
            .campaignClaimWindow, default: settings.sendingWindow, min: transaction, max: .seconds(86_400), shown: "1 day")
        settings.maxTries = try reader.integer(.campaignMaxTries, default: settings.maxTries, range: 1...100)
        settings.deferBase = try reader.duration(
            .campaignDeferBase, default: settings.deferBase, min: 1, max: .seconds(86_400), shown: "1 day")
        let maximum = try reader.duration(
            .campaignDeferMax, default: max(settings.deferMaximum, settings.deferBase), min: 1, max: .seconds(7 * 86_400),
            shown: "7 days")
        guard maximum >= settings.deferBase else {
            throw reader.invalid(
                .campaignDeferMax, reader.text(.campaignDeferMax) ?? "",
                "must be at least JOBD_CAMPAIGN_DEFER_BASE (\(settings.deferBase.seconds))")
        }
        settings.deferMaximum = maximum
        settings.pauseRecheck = try reader.duration(
            .campaignPauseRecheck, default: settings.pauseRecheck, min: 0.1, max: .seconds(3_600), shown: "3600 s")
        settings.concurrency = try reader.integer(.campaignConcurrency, default: settings.concurrency, range: 1...256)
        settings.sendGroup = try reader.integer(.campaignSendGroup, default: settings.sendGroup, range: 1...500)
        settings.throttleWait = try reader.duration(
            .campaignThrottleWait, default: settings.throttleWait, min: 0, max: .seconds(60), shown: "60 s")
        settings.sweepInterval = try reader.duration(
            .campaignSweepInterval, default: settings.sweepInterval, min: 1, max: .seconds(3_600), shown: "3600 s")
        return settings
    }
}
