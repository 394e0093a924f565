import JobdCore
import Testing

@Suite("Configuration: schedules, retention, facts")
struct AnalyticsConfigurationTests {
    typealias Key = DaemonConfiguration.Key

    @Test("defaults: the daily rollup, the hourly prune and the retention jobs, 7 days of retention, 100,000 buffered facts")
    func defaults() throws {
        let config = try DaemonConfiguration.parse { _ in nil }
        #expect(config.schedules.map(\.name) == [
            "analytics-rollup", "queue-prune", "queue-trim", "notifications-trim", "analytics-trim",
        ])
        #expect(config.schedules.map(\.kind) == [
            "analytics.rollup", "queue.prune", "queue.trim", "notifications.trim", "analytics.trim",
        ])
        #expect(config.completedRetention == 7 * 86_400)
        #expect(config.factsBuffer == 100_000)
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
        #expect(Key.factsBuffer.fileKey == "facts_buffer")
    }

    @Test("bad values name their key", arguments: [
        (Key.schedules, "x = 99 * * * * noop", "JOBD_SCHEDULES: schedule x: minute 99"),
        (Key.completedRetention, "soon", "JOBD_COMPLETED_RETENTION: \"soon\" is invalid"),
        (Key.completedRetention, "30s", "must be at least 60"),
        (Key.factsBuffer, "-1", "JOBD_FACTS_BUFFER: \"-1\" is invalid"),
    ])
    func rejected(key: Key, value: String, message: String) {
        #expect {
            try DaemonConfiguration.parse { $0 == key ? value : nil }
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("retention as a duration; a zero buffer turns facts off")
    func values() throws {
        let config = try DaemonConfiguration.parse { key in
            switch key {
            case .completedRetention: "36h"
            case .factsBuffer: "0"
            default: nil
            }
        }
        #expect(config.completedRetention == 36 * 3_600)
        #expect(config.factsBuffer == 0)
    }
}
