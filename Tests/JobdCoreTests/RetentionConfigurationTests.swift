import JobdAnalytics
import JobdAssembly
import JobdCore
import JobdNotifications
import JobdQueue
import Testing

@Suite("Configuration: retention of every tier")
struct RetentionConfigurationTests {
    typealias Key = ConfigurationKey
    static func days(_ count: Int) -> Duration { RetentionWindow.days(count) }

    @Test("documented defaults: ledger 30d, dead letters 90d, notification bodies 30d and rows 180d, facts 90d, batch 5000")
    func defaults() throws {
        let retention = try JobdSettings.read { _ in nil }.retention
        #expect(retention == RetentionSettings(
            queue: QueueRetentionSettings(attempts: Self.days(30), deadLetters: Self.days(90), batch: 5_000),
            notifications: NotificationRetentionSettings(archiveAfter: Self.days(30), deleteAfter: Self.days(180)),
            analytics: AnalyticsRetentionSettings(events: Self.days(90))))
    }

    @Test("durations and off")
    func values() throws {
        let values: [Key: String] = [
            .attemptsRetention: "14d", .deadLetterRetention: "off", .notifyArchiveAfter: "48h",
            .notifyRetention: "OFF", .analyticsRetention: "2w", .retentionBatch: "250",
        ]
        let retention = try JobdSettings.read { values[$0] }.retention
        #expect(retention == RetentionSettings(
            queue: QueueRetentionSettings(attempts: Self.days(14), deadLetters: nil, batch: 250),
            notifications: NotificationRetentionSettings(archiveAfter: Self.days(2), deleteAfter: nil),
            analytics: AnalyticsRetentionSettings(events: Self.days(14))))
    }

    @Test("bad values name their key", arguments: [
        ([Key.attemptsRetention: "12h"], "JOBD_ATTEMPTS_RETENTION: \"12h\" is invalid: must be between 1d and 36500d"),
        ([Key.deadLetterRetention: "forever"], "JOBD_DEAD_LETTER_RETENTION: \"forever\" is invalid: not a duration"),
        ([Key.analyticsRetention: "100000d"], "JOBD_ANALYTICS_RETENTION: \"100000d\" is invalid"),
        ([Key.retentionBatch: "0"], "JOBD_RETENTION_BATCH: \"0\" is invalid"),
        ([Key.retentionBatch: "100001"], "JOBD_RETENTION_BATCH: \"100001\" is invalid"),
        ([Key.notifyArchiveAfter: "60d", Key.notifyRetention: "30d"],
         "JOBD_NOTIFY_RETENTION: \"30d\" is invalid: must be at least JOBD_NOTIFY_ARCHIVE_AFTER"),
    ])
    func rejected(values: [Key: String], message: String) {
        #expect {
            try JobdSettings.read { values[$0] }
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("content-purge is built in once JOBD_CONTENT_RETENTION is set, and can be turned off by name")
    func contentPurgeSchedule() throws {
        #expect(try !JobdSettings.read { _ in nil }.queue.schedules.contains { $0.kind == "content.purge" })
        let configured = try JobdSettings.read { $0 == .contentRetention ? "90d" : nil }
        let purge = try #require(configured.queue.schedules.first { $0.name == "content-purge" })
        #expect(purge.kind == "content.purge" && purge.cron.expression == "20 * * * *")
        let off = try JobdSettings.read { key in
            switch key {
            case .contentRetention: "90d"
            case .schedules: "content-purge = off"
            default: nil
            }
        }
        #expect(!off.queue.schedules.contains { $0.kind == "content.purge" })
    }
}
