/// Conversions of seconds (as `Double`) into whole units that never trap.
///
/// Seconds that come from rows, payloads or peers (a queue wait computed from a
/// producer's `run_at`, a `Retry-After`, a payload's time) may be NaN, infinite or
/// beyond `Int64`; `Int64(_:)` traps on each of those and would take the daemon down
/// with every attempt in flight. Here NaN and anything below zero become 0 and
/// anything beyond the type's range becomes its maximum.
public enum TotalConversion {
    /// `seconds · 10⁹`, in 0…Int64.max.
    public static func nanoseconds(_ seconds: Double) -> Int64 { scaled(seconds, by: 1e9) }

    /// `seconds · 10⁶`, in 0…Int64.max.
    public static func microseconds(_ seconds: Double) -> Int64 { scaled(seconds, by: 1e6) }

    /// `seconds · 10³`, in 0…Int.max.
    public static func milliseconds(_ seconds: Double) -> Int { Int(truncatingIfNeeded: scaled(seconds, by: 1e3)) }

    /// A `Duration` of `seconds`, rounded to the nearest nanosecond (so `0.57` is
    /// exactly 570 ms), in 0…Int64.max nanoseconds (292 years). The one way from
    /// seconds (configuration text, rows, payloads) into `Duration`.
    public static func duration(seconds: Double) -> Duration {
        .nanoseconds(scaled(seconds, by: 1e9, rounding: .toNearestOrAwayFromZero))
    }

    /// `duration` in whole milliseconds (truncated), in 0…Int.max: the one way from
    /// `Duration` to the milliseconds a C library or a SQL text takes. A negative
    /// duration is 0; none traps, however long.
    public static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 || seconds > 0 else { return 0 }
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
        guard !overflow else { return .max }
        let (total, overflowSum) = whole.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        guard !overflowSum else { return .max }
        return Int(truncatingIfNeeded: max(0, total))
    }

    /// `seconds` clamped to `range` (an infinity to the bound on its side); nil and NaN
    /// become `fallback`, clamped too.
    public static func seconds(_ seconds: Double?, in range: ClosedRange<Double>, fallback: Double = 0) -> Double {
        guard let seconds, !seconds.isNaN else { return min(max(fallback, range.lowerBound), range.upperBound) }
        return min(max(seconds, range.lowerBound), range.upperBound)
    }

    private static func scaled(
        _ seconds: Double, by factor: Double, rounding: FloatingPointRoundingRule = .towardZero
    ) -> Int64 {
        let value = (seconds * factor).rounded(rounding)
        // NaN fails every comparison: test for "positive" so that it lands on 0.
        guard value > 0 else { return 0 }
        // Double(Int64.max) rounds up to 2⁶³, which Int64(_:) refuses.
        guard value < 0x1p63 else { return .max }
        return Int64(value)
    }
}
