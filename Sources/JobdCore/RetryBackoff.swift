/// Capped exponential backoff with full jitter.
///
/// The deterministic delay for attempt *n* (1-based) is `base · 2^(n-1)`, capped at
/// `maximum`. The delay actually used is drawn uniformly from
/// `[(1 - jitter) · d, d]`: spreading retries apart keeps a burst of failures (a tier
/// that was down) from coming back as a synchronised thundering herd, while the
/// lower bound keeps a retry from firing immediately.
public struct RetryBackoff: Sendable, Equatable {
    public var base: Double
    public var maximum: Double
    /// Fraction of the delay that is randomised, 0…1.
    public var jitter: Double

    public init(baseSeconds: Double, maximumSeconds: Double, jitter: Double = 0.5) {
        precondition(baseSeconds > 0 && maximumSeconds >= baseSeconds, "invalid backoff bounds")
        precondition((0...1).contains(jitter), "jitter is a fraction")
        self.base = baseSeconds
        self.maximum = maximumSeconds
        self.jitter = jitter
    }

    /// The capped delay before jitter, in seconds.
    public func ceiling(forAttempt attempt: Int) -> Double {
        let exponent = attempt <= 1 ? 0 : Double(attempt - 1)
        // 2^64 already overflows any sane cap; clamp the exponent to stay finite.
        let raw = base * pow2(min(exponent, 62))
        return min(raw, maximum)
    }

    /// The delay to wait after failed attempt `attempt`, in seconds.
    public func delay(forAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Double {
        let ceiling = ceiling(forAttempt: attempt)
        let floor = ceiling * (1 - jitter)
        guard ceiling > floor else { return ceiling }
        return Double.random(in: floor...ceiling, using: &generator)
    }

    private func pow2(_ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= 2
            remaining -= 1
        }
        return result
    }
}
