import JobdContent
import JobdCore
import JobdQueue
import JobdTestRandom
import PropertyBased
import Testing

/// The conversions from text and numbers into `Duration` that configuration and
/// producer-written payloads reach: for any input, including NaN, infinities,
/// negatives, numbers past `Int64` and malformed text, each either yields a bounded
/// `Duration` or refuses with a named error, and none traps.
@Suite("Durations from configuration and payloads: bounded, never trapping")
struct DurationBoundsPropertyTests {
    /// Seconds a producer or an operator may write: ordinary, edge and hostile.
    static let hostileSeconds: [Double] = [
        0, -0.0, 1, 59.999, 60, 86_399.999, 86_400, 3_153_600_000, 3_153_600_000.001, 9.2e9, 9.3e9, 1e11, 1e11 + 1,
        -1, -86_400, 1e18, 1e19, 1e300, -1e300, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
        .infinity, -.infinity, .nan,
    ]
    static let units = ["", "ms", "s", "sec", "m", "min", "h", "d", "w", "x", "dd"]

    /// Text as it reaches a reader or a payload: a number in any spelling and a unit,
    /// or odd characters.
    static func text(_ seconds: Double, _ unit: String, _ noise: String, _ mode: Int) -> String {
        switch mode {
        case 0: "\(seconds)\(unit)"
        case 1: "\(Int64(exactly: seconds.rounded(.towardZero)) ?? 0)\(unit)"
        case 2: "\(seconds)\(unit)\(noise)"
        case 3: noise
        default: " \(seconds) \(unit) "
        }
    }

    static let unit = Gen<String?>.element(of: units).map { (unit: String?) -> String in unit ?? "" }
    static let special = Gen<Double?>.element(of: hostileSeconds).map { (seconds: Double?) -> Double in seconds ?? 0 }

    static let noise = Gen.oneOf(
        Gen.character(in: "0"..."9"), Gen.character(in: "a"..."z"), Gen.character(in: " "..."/"),
        Gen.character(in: "\u{A0}"..."\u{2FFF}")
    ).string(of: 0...12)

    /// Runs `body` on `count` texts: a hostile or an ordinary number of seconds (up
    /// to ±10¹³) in any spelling and unit, with or without noise, or noise alone.
    static func forAnyText(count: Int, _ body: (String) -> Void) async {
        await propertyCheck(
            count: count,
            input: special, Gen.double(in: -1e13...1e13), unit, noise, Gen.int(in: 0...4), Gen.bool
        ) { special, ordinary, unit, noise, mode, useSpecial in
            body(text(useSpecial ? special : ordinary, unit, noise, mode))
        }
    }

    /// A payload field's conversion either returns a value `bounded` checks or fails
    /// the job permanently as `payload_invalid`, which `refused` checks further.
    static func expectBoundedOrRefused<T>(
        _ convert: () throws -> T, bounded: (T) -> Void, refused: (JobFailure) -> Void
    ) {
        do {
            bounded(try convert())
        } catch let failure as JobFailure {
            #expect(failure.severity == .permanent && failure.code == "payload_invalid")
            refused(failure)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("a retention window is off, within 1d…36500d, or refused — from any text")
    func retentionWindowText() async {
        await Self.forAnyText(count: 400) { text in
            switch RetentionWindow.parse(text) {
            case .off:
                #expect(text.lowercased() == "off")
            case .window(let window):
                #expect(window >= RetentionWindow.minimum && window <= RetentionWindow.maximum, "\(text) → \(window)")
                // The window is the text's seconds, to the nanosecond.
                if let seconds = DurationText.seconds(text) {
                    #expect(abs(window.seconds - seconds) <= 1e-6, "\(text)")
                }
            case .notADuration:
                #expect(DurationText.seconds(text) == nil, "\(text)")
            case .outOfRange:
                let seconds = DurationText.seconds(text)
                #expect(seconds != nil && (seconds! < 86_400 || seconds! > 36_500 * 86_400), "\(text)")
            }
        }
    }

    @Test("a whole number of days within the bounds is that many days exactly")
    func retentionWindowDays() async {
        await propertyCheck(count: 200, input: Gen.int(in: 1...36_500)) { days in
            #expect(RetentionWindow.parse("\(days)d") == .window(.seconds(days * 86_400)))
            #expect(RetentionWindow.parse("\(days * 24)h") == .window(.seconds(days * 86_400)))
        }
        #expect(RetentionWindow.parse("36501d") == .outOfRange)
        #expect(RetentionWindow.parse("23h") == .outOfRange)
        #expect(RetentionWindow.parse("OFF") == .off)
    }

    @Test("a trim job's payload window: a bounded Duration, off, or a permanent payload_invalid failure — never a trap")
    func retentionWindowPayload() async {
        await propertyCheck(
            count: 300,
            input: Self.special, Gen.double(in: -1e12...1e12),
            Self.unit, Self.noise, Gen.int(in: 0...4), Gen.int(in: 0...2)
        ) { special, ordinary, unit, noise, mode, shape in
            let value: JSONValue = switch shape {
            case 0: .string(Self.text(special, unit, noise, mode))
            case 1: .string(Self.text(ordinary, unit, noise, mode))
            default: .number(special)
            }
            Self.expectBoundedOrRefused {
                try RetentionWindow.payload(value, field: "older_than", kind: "analytics.trim")
            } bounded: { window in
                if let window { #expect(window >= RetentionWindow.minimum && window <= RetentionWindow.maximum) }
            } refused: { failure in
                #expect(failure.message.contains("older_than must be a duration between 1d and 36500d"))
            }
        }
    }

    @Test("queue.prune's older_than: at least a minute, clamped at 292 years, or refused")
    func pruneOlderThan() async {
        await propertyCheck(
            count: 300,
            input: Self.special,
            Self.unit, Self.noise, Gen.int(in: 0...4)
        ) { seconds, unit, noise, mode in
            let text = Self.text(seconds, unit, noise, mode)
            Self.expectBoundedOrRefused {
                try QueuePruneHandler.olderThan(.string(text))
            } bounded: { olderThan in
                #expect(olderThan >= .seconds(60) && olderThan <= .nanoseconds(Int64.max), "\(text)")
            } refused: { _ in
                let parsed = DurationText.seconds(text)
                #expect(parsed == nil || parsed! < 60, "\(text) was refused")
            }
        }
    }

    @Test("JOBD_CONTENT_RETENTION and the reader's durations: bounded from any text, refused with the key's name")
    func configuredDurations() async {
        await Self.forAnyText(count: 300) { text in
            let reader = ConfigurationReader { _ in text }
            do {
                let settings = try ContentSettings.read(ConfigurationReader { $0 == .contentRetention ? text : nil })
                if let retention = settings.retention {
                    #expect(retention >= .seconds(60) && retention <= ContentSettings.maximumRetention, "\(text)")
                }
            } catch {
                #expect((error as? ConfigurationError)?.key == "JOBD_CONTENT_RETENTION")
            }
            do {
                let duration = try reader.duration(.notifyBreakerCooldown, default: .seconds(30), min: 0.1)
                #expect(duration >= .milliseconds(100) && duration <= .nanoseconds(Int64.max), "\(text)")
            } catch {
                #expect((error as? ConfigurationError)?.key == "JOBD_NOTIFY_BREAKER_COOLDOWN")
            }
            do {
                let window = try reader.retentionWindow(.analyticsRetention, default: nil)
                if let window { #expect(window >= RetentionWindow.minimum && window <= RetentionWindow.maximum) }
            } catch {
                #expect((error as? ConfigurationError)?.key == "JOBD_ANALYTICS_RETENTION")
            }
        }
    }

    @Test("ContentSettings.retention(seconds:) is whole seconds, rounded up, in 0…10¹¹ s, for any Double")
    func contentRetentionSeconds() async {
        await propertyCheck(
            count: 300, input: Self.special, Gen.double(in: -1e12...1e12), Gen.bool
        ) { special, ordinary, useSpecial in
            let seconds = useSpecial ? special : ordinary
            let retention = ContentSettings.retention(seconds: seconds)
            #expect(retention >= .zero && retention <= ContentSettings.maximumRetention)
            #expect(retention.components.attoseconds == 0)
            if seconds.isFinite, seconds >= 0, seconds <= 1e11 {
                #expect(retention == .seconds(Int64(seconds.rounded(.up))))
            }
        }
    }

    @Test("RetryBackoff: for any bounds, jitter and attempt, the delay lies in [(1-jitter)·ceiling, ceiling] and the ceiling in [base, maximum]")
    func retryBackoff() async {
        await propertyCheck(
            count: 500,
            input: Gen.int64(in: 1...Int64.max), Gen.int64(in: 0...Int64.max), Gen.double(in: 0...1),
            Gen.oneOf(Gen.int(in: -5...200), Gen.int(in: .min ... .max)), Gen.uint64(in: 0...UInt64.max)
        ) { baseNanoseconds, extraNanoseconds, jitter, attempt, seed in
            let base = Duration.nanoseconds(baseNanoseconds)
            let maximum = base + .nanoseconds(extraNanoseconds)
            let backoff = RetryBackoff(base: base, maximum: maximum, jitter: jitter)
            let ceiling = backoff.ceiling(forAttempt: attempt)
            #expect(ceiling >= base && ceiling <= maximum)
            #expect(backoff.ceiling(forAttempt: attempt == .max ? attempt : attempt + 1) >= ceiling)
            var generator = SplitMix64(seed: seed)
            let delay = backoff.delay(forAttempt: attempt, using: &generator)
            #expect(delay >= ceiling * (1 - jitter) && delay <= ceiling, "\(delay) for \(backoff) at \(attempt)")
        }
    }
}
