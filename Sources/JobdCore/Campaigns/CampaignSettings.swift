/// Tunables of campaign sending (`JOBD_CAMPAIGN_*`). Here rather than in
/// JobdCampaigns because `DaemonConfiguration` (this pure core) parses and bounds
/// them with every other key.
public struct CampaignSettings: Sendable, Equatable {
    /// List members turned into deliveries per fan-out statement.
    public var pageSize = 1_000
    /// How long a recipient's claim lasts: longer than one SMTP transaction may take.
    public var sendingWindow: Double = 120
    /// Sends to a recipient before a deferring (4xx) relay makes it `failed`.
    public var maxTries = 5
    /// First retry of a deferred recipient; doubles per try up to `deferMaximum`.
    public var deferBase: Double = 60
    public var deferMaximum: Double = 3_600
    /// How often a delivery job of a paused campaign looks again.
    public var pauseRecheck: Double = 5
    /// SMTP transfers at once across campaigns (curl workers).
    public var concurrency = 16
    public var connectTimeout: Double = 10
    public var timeout: Double = 60
    /// The longest a batch sleeps for a throttle (domain or account) before it
    /// gives its worker back and snoozes instead.
    public var throttleWait: Double = 1
    /// How often the outbox relay's sweep looks for open recipients of sending
    /// campaigns that no unfinished delivery job covers (and enqueues them again).
    public var sweepInterval: Double = 30
    /// The most recipients a deliver batch claims in one statement and records in
    /// one (fewer when sends are slow: a group spans about 0.25 s of sends). A crash
    /// may send again every recipient of the groups in flight whose sends were
    /// done but not yet recorded: at most this many per curl worker. 1: one claim
    /// and one record per recipient.
    public var sendGroup = 50

    public init() {}
    public static let defaults = CampaignSettings()
}
