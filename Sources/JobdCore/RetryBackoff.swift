/// Capped exponential backoff with full jitter.
///
/// The deterministic delay for attempt *n* (1-based) is `base · 2^(n-1)`, capped at
/// `maximum`. The delay actually used is drawn uniformly from
/// `[(1 - jitter) · d, d]`: spreading retries apart keeps a burst of failures (a tier
/// that was down) from coming back as a synchronised thundering herd, while the
/// lower bound keeps a retry from firing immediately.
///
/// Every input is total: any attempt number (0, negative, `Int.max`) and any bounds
/// give a delay of at most `maximum`, computed by comparisons and doublings that
/// never overflow, so nothing here traps.
public struct RetryBackoff: Sendable, Equatable {
    public var base: Duration
    public var maximum: Duration
    /// Fraction of the delay that is randomised, 0…1.
    public var jitter: Double

    public init(base: Duration, maximum: Duration, jitter: Double = 0.5) {
        precondition(base > .zero && maximum >= base, "invalid backoff bounds")
        precondition((0...1).contains(jitter), "jitter is a fraction")
        self.base = base
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The capped delay before jitter: `base` doubled once per attempt after the
    /// first, until it reaches `maximum` (at most 127 doublings: a `Duration` has
    /// 128 bits, so any attempt number ends there or sooner).
    public func ceiling(forAttempt attempt: Int) -> Duration {
        var ceiling = base
        var doublings = attempt <= 1 ? 0 : attempt - 1
        let half = maximum / 2
        while doublings > 0 {
            // ceiling ≤ maximum / 2 here, so ceiling · 2 ≤ maximum: no overflow.
            guard ceiling <= half else { return maximum }
            ceiling = ceiling * 2
            doublings -= 1
        }
        return min(ceiling, maximum)
    }

    /// The delay to wait after failed attempt `attempt`.
    public func delay(forAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(forAttempt: attempt)
        // `jitter` is a checked fraction: the floor lies within 0…ceiling.
        let floor = ceiling * (1 - jitter)
        guard ceiling > floor else { return ceiling }
        let drawn = TotalConversion.duration(seconds: Double.random(in: floor.seconds...ceiling.seconds, using: &generator))
        // Rounding to the nanosecond must not step outside the range.
        return min(max(drawn, floor), ceiling)
    }
}
