import Synchronization

/// Where rate limits, breakers and other in-memory timers read the time: a
/// monotonic clock passed in by whoever builds them. The daemon passes
/// `ContinuousClock()`; tests pass a `ManualMonotonicClock` and move it by hand,
/// so a cutoff is tested on both sides to the nanosecond instead of by sleeping.
///
/// Instants are `ContinuousClock.Instant` whatever the clock, so the values that
/// keep them (`TokenBucket`, `CircuitBreaker`) stay plain, non-generic structs.
public protocol MonotonicClock: Sendable {
    var now: ContinuousClock.Instant { get }
}

extension ContinuousClock: MonotonicClock {}

/// A monotonic clock that moves only when told to: starts at the real
/// `ContinuousClock.now` and adds what `advance(by:)` is given.
public final class ManualMonotonicClock: MonotonicClock {
    private let instant: Mutex<ContinuousClock.Instant>

    public init(start: ContinuousClock.Instant = ContinuousClock.now) {
        instant = Mutex(start)
    }

    public var now: ContinuousClock.Instant { instant.withLock { $0 } }

    /// Moves the clock forward by `duration` (never back: a negative one is ignored).
    public func advance(by duration: Duration) {
        instant.withLock { $0 = $0 + max(.zero, duration) }
    }
}
