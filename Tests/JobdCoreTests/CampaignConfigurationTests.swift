import JobdCampaigns
import JobdCore
import Testing

private func parse(_ values: [ConfigurationKey: String]) throws(ConfigurationError) -> CampaignSettings {
    try CampaignSettings.read(ConfigurationReader { values[$0] })
}

private func rejection(_ values: [ConfigurationKey: String]) -> ConfigurationError? {
    do {
        _ = try parse(values)
        return nil
    } catch {
        return error
    }
}

@Suite("Configuration: campaign keys (CampaignSettings.read)")
struct CampaignConfigurationTests {
    @Test("JOBD_CAMPAIGN_* keys set the campaign settings")
    func campaignKeys() throws {
        #expect(try parse([:]) == CampaignSettings.defaults)
        let config = try parse([
            .campaignPageSize: "250", .campaignClaimWindow: "5m", .campaignMaxTries: "8", .campaignDeferBase: "30",
            .campaignDeferMax: "2h", .campaignPauseRecheck: "500ms", .campaignConcurrency: "32", .campaignThrottleWait: "2.5",
            .campaignSweepInterval: "2m", .campaignSendGroup: "200",
        ])
        #expect(config.pageSize == 250)
        #expect(config.sendingWindow == .seconds(300))
        #expect(config.maxTries == 8)
        #expect(config.deferBase == .seconds(30))
        #expect(config.deferMaximum == .seconds(7_200))
        #expect(config.pauseRecheck == .milliseconds(500))
        #expect(config.concurrency == 32)
        #expect(config.throttleWait == .milliseconds(2_500))
        #expect(config.sweepInterval == .seconds(120))
        #expect(config.sendGroup == 200)
    }

    @Test("JOBD_CAMPAIGN_* keys refuse values out of range, naming the key", arguments: [
        (ConfigurationKey.campaignPageSize, "0"), (.campaignPageSize, "10001"), (.campaignPageSize, "many"),
        (.campaignClaimWindow, "30"), (.campaignClaimWindow, "2d"), (.campaignMaxTries, "0"), (.campaignMaxTries, "101"),
        (.campaignDeferBase, "0.5"), (.campaignDeferBase, "2d"), (.campaignDeferMax, "8d"), (.campaignPauseRecheck, "50ms"),
        (.campaignPauseRecheck, "2h"), (.campaignConcurrency, "0"), (.campaignConcurrency, "257"),
        (.campaignThrottleWait, "-1"), (.campaignThrottleWait, "61"), (.campaignSweepInterval, "0.5"),
        (.campaignSweepInterval, "2h"), (.campaignSendGroup, "0"), (.campaignSendGroup, "501"),
    ])
    func campaignKeysBounded(key: ConfigurationKey, value: String) {
        #expect(rejection([key: value])?.key == key.rawValue, "\(key.rawValue)=\(value)")
    }

    @Test("JOBD_CAMPAIGN_DEFER_MAX below JOBD_CAMPAIGN_DEFER_BASE is refused")
    func campaignDeferOrder() throws {
        let error = rejection([.campaignDeferBase: "10m", .campaignDeferMax: "5m"])
        #expect(error?.key == "JOBD_CAMPAIGN_DEFER_MAX")
        #expect(error?.reason.contains("JOBD_CAMPAIGN_DEFER_BASE") == true)
        // Only a base above the default maximum raises the maximum with it.
        #expect(try parse([.campaignDeferBase: "2h"]).deferMaximum == .seconds(7_200))
    }
}
