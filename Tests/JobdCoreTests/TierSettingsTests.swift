import JobdAnalytics
import JobdAssembly
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdQueue
import Testing

/// Each settings type declares the keys it reads, reads them from the shared source and
/// reports its own bad values; the daemon's set of known keys is the union of what they declare.
@Suite("Configuration: each tier's settings and keys")
struct TierSettingsTests {
    /// The keys a reader asks the source for.
    private static func asked(_ read: (ConfigurationReader) throws(ConfigurationError) -> Void) throws -> [String] {
        var names: [String] = []
        try read(ConfigurationReader { key in
            names.append(key.rawValue)
            return nil
        })
        return names
    }

    /// Each settings type with the keys it declares and a read of it.
    static var tiers: [(name: String, keys: [ConfigurationKey], read: (ConfigurationReader) throws(ConfigurationError) -> Void)] {[
        ("daemon", DaemonConfiguration.keys, { reader throws(ConfigurationError) in _ = try DaemonConfiguration.read(reader) }),
        ("queue", QueueSettings.keys, { reader throws(ConfigurationError) in _ = try QueueSettings.read(reader, contentPurge: true) }),
        ("queue retention", QueueRetentionSettings.keys, { reader throws(ConfigurationError) in _ = try QueueRetentionSettings.read(reader) }),
        ("notification retention", NotificationRetentionSettings.keys, { reader throws(ConfigurationError) in
            _ = try NotificationRetentionSettings.read(reader)
        }),
        ("analytics retention", AnalyticsRetentionSettings.keys, { reader throws(ConfigurationError) in
            _ = try AnalyticsRetentionSettings.read(reader)
        }),
        ("content", ContentSettings.keys, { reader throws(ConfigurationError) in _ = try ContentSettings.read(reader) }),
        ("notifications", NotificationSettings.keys, { reader throws(ConfigurationError) in _ = try NotificationSettings.read(reader) }),
        ("campaigns", CampaignSettings.keys, { reader throws(ConfigurationError) in _ = try CampaignSettings.read(reader) }),
    ]}

    @Test("each settings type reads exactly the keys it declares")
    func declaredKeysAreRead() throws {
        for tier in Self.tiers {
            #expect(Set(try Self.asked(tier.read)) == Set(tier.keys.map(\.rawValue)), "\(tier.name)")
        }
    }

    @Test("the known keys are the union each settings type declares, each name once, and all of them are read")
    func knownKeysAreTheUnion() throws {
        let union = Self.tiers.flatMap(\.keys)
        #expect(Set(JobdSettings.keys) == Set(union))
        #expect(Set(JobdSettings.keys.map(\.rawValue)).count == JobdSettings.keys.count)
        #expect(Set(try Self.asked { reader throws(ConfigurationError) in
            _ = try JobdSettings.read { reader.text($0) }
        }) == Set(JobdSettings.keys.map(\.rawValue)))
        // The 73 keys of the move to per-tier settings, none lost, plus
        // JOBD_CONTENT_INDEX_MAX_DELAY and JOBD_CLAIM_PIPELINES: a new key is counted
        // here on purpose.
        #expect(JobdSettings.keys.count == 75)
    }

    @Test("a tier's bad value is reported by its own reader, and by the whole read, naming the key")
    func tierReportsItsInvalidKey() throws {
        let values: [ConfigurationKey: String] = [.campaignPageSize: "0", .notifyBurst: "many", .contentIndexInterval: "0"]
        let reader = ConfigurationReader { values[$0] }
        #expect(throws: ConfigurationError.self) { try CampaignSettings.read(reader) }
        do {
            _ = try CampaignSettings.read(reader)
        } catch {
            #expect(error.key == "JOBD_CAMPAIGN_PAGE_SIZE")
            #expect(error.reason.contains("\"0\" is invalid"))
        }
        do {
            _ = try NotificationSettings.read(reader)
            Issue.record("JOBD_NOTIFY_BURST=many was accepted")
        } catch {
            #expect(error.key == "JOBD_NOTIFY_BURST")
        }
        do {
            _ = try ContentSettings.read(reader)
            Issue.record("JOBD_CONTENT_INDEX_INTERVAL=0 was accepted")
        } catch {
            #expect(error.key == "JOBD_CONTENT_INDEX_INTERVAL")
        }
        // Not the daemon-wide reader's keys: it reads none of them.
        #expect(try DaemonConfiguration.read(reader) == .defaults)
        // The whole read stops at the first tier in read order with a bad key.
        #expect {
            try JobdSettings.read { values[$0] }
        } throws: { error in
            (error as? ConfigurationError)?.key == "JOBD_CONTENT_INDEX_INTERVAL"
        }
    }

    @Test("a misspelt tier key is unknown, and its closest known key is the tier's")
    func misspeltTierKey() {
        let unknown = ConfigurationKeyCheck.unknownEnvironment(
            ["JOBD_CAMPAIGN_PAGE_SIZ", "JOBD_NOTIFY_TIMEOUT", "JOBD_CONTENT_RETENTON"], known: JobdSettings.keys.environmentNames)
        #expect(unknown.map(\.name) == ["JOBD_CAMPAIGN_PAGE_SIZ", "JOBD_CONTENT_RETENTON"])
        #expect(unknown.map(\.closest) == ["JOBD_CAMPAIGN_PAGE_SIZE", "JOBD_CONTENT_RETENTION"])
        let file = ConfigurationKeyCheck.unknownFileKeys("smtp_form: a@b.c\nsmtp_from: a@b.c\n", known: JobdSettings.keys.fileNames)
        #expect(file.map(\.name) == ["smtp_form"])
        #expect(file.map(\.closest) == ["smtp_from"])
    }

    @Test("the daemon-wide fields read through JobdSettings, and write through it")
    func daemonFieldsThroughSettings() throws {
        var settings = try JobdSettings.read { $0 == .lease ? "45s" : nil }
        #expect(settings.lease == .seconds(45))
        settings.lease = .seconds(5)
        #expect(settings.daemon.lease == .seconds(5))
        #expect(settings == JobdSettings(daemon: settings.daemon))
    }
}
