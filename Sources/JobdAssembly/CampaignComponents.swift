import JobdCampaigns
import JobdCore
import JobdQueue
import ServiceLifecycle

/// The OLTP tier's campaign kinds and the outbox relay that feeds them.
/// `campaign.prepare` and `campaign.deliver` are internal kinds: only the OLTP
/// tier (through its outbox) enqueues them.
struct CampaignComponents {
    var handlers: [any JobHandler]
    var services: [any Service]

    init(connections: Connections, databases: TierDatabases, settings: CampaignSettings) {
        let configuration = connections.configuration
        let oltp = databases[.oltp]
        handlers = [
            CampaignPrepareHandler(
                oltp: oltp, content: databases[.content], settings: settings,
                compressionLevel: connections.settings.content.compressionLevel),
            CampaignDeliverHandler(
                oltp: oltp, content: databases[.content], settings: settings, userAgent: "jobd/\(JobdBuild.version)"),
        ]
        services = [OutboxRelay(
            oltp: connections.postgres("oltp-outbox", tier: .oltp), queue: connections.postgres("oltp-relay-queue"),
            interval: configuration.pollInterval, sweepInterval: settings.sweepInterval, logger: connections.logger)]
    }
}
