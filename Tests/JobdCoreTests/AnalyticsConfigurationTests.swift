import JobdCore
import Testing

@Suite("Configuration: schedules, retention")
struct AnalyticsConfigurationTests {
    typealias Key = DaemonConfiguration.Key

    @Test("defaults: the daily rollup, the hourly prune and the retention jobs, 7 days of retention")
    func defaults() throws {
        let config = try DaemonConfiguration.parse { _ in nil }
        #expect(config.schedules.map(\.name) == [
            "analytics-rollup", "queue-prune", "queue-trim", "notifications-trim", "analytics-trim",
        ])
        #expect(config.schedules.map(\.kind) == [
            "analytics.rollup", "queue.prune", "queue.trim", "notifications.trim", "analytics.trim",
        ])
        #expect(config.completedRetention == .seconds(7 * 86_400))
    }

    @Test("JOBD_FACTS_BUFFER is no key: no fact is buffered per attempt (the rollup reads the ledger), so setting it only warns")
    func factsBufferGone() {
        #expect(Key(rawValue: "JOBD_FACTS_BUFFER") == nil)
        let unknown = ConfigurationKeyCheck.unknownEnvironment(["JOBD_FACTS_BUFFER"], known: Key.environmentNames)
        #expect(unknown.map(\.name) == ["JOBD_FACTS_BUFFER"])
        let fileKeys = ConfigurationKeyCheck.unknownFileKeys("facts_buffer: 100000\n", known: Key.fileNames)
        #expect(fileKeys.map(\.name) == ["facts_buffer"])
    }

    @Test("JOBD_SCHEDULES adds, replaces and removes; file keys are the lower-case names")
    func schedules() throws {
        let config = try DaemonConfiguration.parse { key in
            key == .schedules ? "queue-prune = off\nreport = 0 7 * * 1 Europe/Berlin report.send {\"to\": \"ops\"}" : nil
        }
        #expect(config.schedules.map(\.name) == [
            "analytics-rollup", "queue-trim", "notifications-trim", "analytics-trim", "report",
        ])
        #expect(config.schedules[4].cron.timeZone.identifier == "Europe/Berlin")
        #expect(Key.schedules.fileKey == "schedules")
        #expect(Key.completedRetention.fileKey == "completed_retention")
    }

    @Test("bad values name their key", arguments: [
        (Key.schedules, "x = 99 * * * * noop", "JOBD_SCHEDULES: schedule x: minute 99"),
        (Key.completedRetention, "soon", "JOBD_COMPLETED_RETENTION: \"soon\" is invalid"),
        (Key.completedRetention, "30s", "must be at least 60"),
    ])
    func rejected(key: Key, value: String, message: String) {
        #expect {
            try DaemonConfiguration.parse { $0 == key ? value : nil }
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("retention as a duration")
    func values() throws {
        let config = try DaemonConfiguration.parse { key in
            key == .completedRetention ? "36h" : nil
        }
        #expect(config.completedRetention == .seconds(36 * 3_600))
    }
}
