import JobdAssembly
import JobdCampaigns
import JobdContent
import JobdCore
import JobdTestRandom
import Testing

/// The time settings are `Duration`s (the daemon's, the notification, content and
/// campaign tiers'): the same text and bounds as before, exact to the nanosecond, and no
/// value an operator can write makes a later conversion trap.
@Suite("Duration settings")
struct DurationConfigurationTests {
    typealias Key = ConfigurationKey

    /// Every key read with the duration reader, with its minimum in seconds and its
    /// field.
    static let durationKeys: [(key: Key, min: Double, field: @Sendable (JobdSettings) -> Duration)] = [
        (.pollInterval, 0.01, { $0.pollInterval }),
        (.lease, 1, { $0.lease }),
        (.shutdownTimeout, 0, { $0.shutdownTimeout }),
        (.maintenanceInterval, 0.05, { $0.maintenanceInterval }),
        (.commandTimeout, 0.1, { $0.commandTimeout }),
        (.completedRetention, 60, { $0.queue.completedRetention }),
        (.scaleSampleInterval, 0.01, { $0.scaling.sampleInterval }),
        (.scaleQuietPeriod, 0.1, { $0.scaling.quietPeriod }),
        (.scaleDownInterval, 0.05, { $0.scaling.downInterval }),
        (.notifyConnectTimeout, 0.1, { $0.notifications.connectTimeout }),
        (.notifyTimeout, 0.1, { $0.notifications.timeout }),
        (.contentIndexInterval, 0.01, { $0.content.indexInterval }),
        (.contentIndexMaxDelay, 0, { $0.content.indexMaxDelay }),
        (.campaignClaimWindow, 70, { $0.campaigns.sendingWindow }),
        (.campaignDeferBase, 1, { $0.campaigns.deferBase }),
        (.campaignDeferMax, 1, { $0.campaigns.deferMaximum }),
        (.campaignPauseRecheck, 0.1, { $0.campaigns.pauseRecheck }),
        (.campaignThrottleWait, 0, { $0.campaigns.throttleWait }),
        (.campaignSweepInterval, 1, { $0.campaigns.sweepInterval }),
    ]

    @Test("decimal seconds are exact to the nanosecond, not truncated below it")
    func exactValues() throws {
        let cases: [(String, Duration)] = [
            ("0.57", .milliseconds(570)), ("1.1", .milliseconds(1_100)), ("250ms", .milliseconds(250)),
            ("1.5", .milliseconds(1_500)), ("5m", .seconds(300)), ("2h", .seconds(7_200)), ("1h30m", .seconds(5_400)),
            ("0.000000001", .nanoseconds(1)),
            // 1.001 · 10⁹ is 1000999999.9999999 in binary floating point: truncating would lose a nanosecond.
            ("1.001", .milliseconds(1_001)), ("1.019", .milliseconds(1_019)),
        ]
        for (text, expected) in cases {
            let config = try JobdSettings.read { $0 == .shutdownTimeout ? text : nil }
            #expect(config.shutdownTimeout == expected, "\(text)")
        }
    }

    @Test("a duration past 292 years is clamped to the largest Duration the daemon converts, not trapped on later")
    func hugeValuesClamp() throws {
        let config = try JobdSettings.read { key in
            [Key.lease, .pollInterval, .shutdownTimeout, .maintenanceInterval, .commandTimeout, .completedRetention]
                .contains(key) ? "1e300" : nil
        }
        let largest = Duration.nanoseconds(Int64.max)
        for duration in [config.lease, config.pollInterval, config.shutdownTimeout, config.maintenanceInterval,
                         config.commandTimeout, config.queue.completedRetention] {
            #expect(duration == largest)
        }
        // The transfer deadline libcurl is given in milliseconds (a connect timeout
        // has no upper bound of its own).
        let notify = try JobdSettings.read { $0 == .notifyConnectTimeout ? "1e300" : nil }
        #expect(notify.notifications.connectTimeout == largest)
        #expect(TotalConversion.milliseconds(notify.notifications.connectTimeout) == 9_223_372_036_854)
        #expect(notify.notifications.sendingWindow == .seconds(45))
        // The conversions the services and adapters make of them.
        #expect(TotalConversion.milliseconds(config.commandTimeout) == 9_223_372_036_854)
        #expect(config.lease / 3 > .zero)
        #expect(config.shutdownTimeout.components.seconds + 15 > 0)
    }

    @Test("hostile duration text never traps: it is refused with the key's name, or accepted within its bounds")
    func hostileText() {
        var generator = SplitMix64(seed: 0x5e77_1265)
        let alphabet = Array("0123456789.e+-msdhwinx \t1e300")
        let fixed = [
            "1e300", "1e308", "1e309", "9e18", "9.3e9", "-0", "-1", "nan", "inf", "-inf", "0x10", "1e-400",
            "99999999999999999999999h", "1e300w", "1e300ms", "1.7976931348623157e308d", ".", "e", "ms", "5m5m5m",
            "0.0000000001", String(repeating: "9", count: 400),
        ]
        var texts = fixed
        for _ in 0..<400 {
            let length = Int(generator.next() % 14)
            texts.append(String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }))
        }
        for (key, minimum, field) in Self.durationKeys {
            for text in texts {
                do {
                    let config = try JobdSettings.read { $0 == key ? text : nil }
                    let value = field(config)
                    #expect(value >= .zero && value <= .nanoseconds(Int64.max), "\(key.rawValue)=\(text)")
                    #expect(value >= TotalConversion.duration(seconds: minimum), "\(key.rawValue)=\(text)")
                    #expect(TotalConversion.milliseconds(value) >= 0)
                } catch {
                    #expect(error.key == key.rawValue, "\(key.rawValue)=\(text): \(error)")
                    #expect(error.reason.contains("is invalid"), "\(key.rawValue)=\(text): \(error)")
                }
            }
        }
    }

    @Test("Duration to milliseconds never traps: negatives are 0, beyond Int is Int.max")
    func millisecondsClamp() {
        let cases: [(Duration, Int)] = [
            (.zero, 0), (.nanoseconds(999_999), 0), (.milliseconds(1_500), 1_500), (.seconds(-1), 0),
            (.milliseconds(-1), 0), (.nanoseconds(-1), 0), (.nanoseconds(Int64.max), 9_223_372_036_854),
            (.seconds(Int64.max), Int.max), (.seconds(Int64.max / 1_000), 9_223_372_036_854_775_000),
            (.seconds(Int64.max / 1_000) + .seconds(1), Int.max),
        ]
        for (duration, milliseconds) in cases {
            #expect(TotalConversion.milliseconds(duration) == milliseconds, "\(duration)")
        }
    }
}
