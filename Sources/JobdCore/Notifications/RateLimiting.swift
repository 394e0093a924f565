/// A token bucket: `rate` tokens per second, holding at most `burst`.
///
/// A caller may reserve a token that is not there yet (the balance goes negative)
/// when the wait is short, so concurrent callers queue up at `1/rate` intervals
/// instead of all waking at the same instant. Instants come from the owner's
/// `MonotonicClock`; waits are `Duration`s, rounded to the nanosecond.
public struct TokenBucket: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        /// Tokens per second; > 0.
        public var rate: Double
        /// Largest balance, so the largest burst after a quiet spell; ≥ 1.
        public var burst: Double

        public init(rate: Double, burst: Double) {
            self.rate = rate
            self.burst = max(1, burst)
        }
    }

    public enum Acquisition: Sendable, Equatable {
        /// Go ahead after waiting `wait` (zero = at once); the token is taken.
        case granted(wait: Duration)
        /// Nothing taken: the next token is `retryIn` away, more than the caller
        /// was willing to wait.
        case denied(retryIn: Duration)
    }

    public let settings: Settings
    /// The balance at `updatedAt`; below zero while reservations are outstanding.
    public private(set) var tokens: Double
    public private(set) var updatedAt: ContinuousClock.Instant

    /// Starts full.
    public init(settings: Settings, now: ContinuousClock.Instant) {
        self.settings = settings
        tokens = settings.burst
        updatedAt = now
    }

    /// The balance at `now`: refilled at `rate` since `updatedAt`, at most `burst`.
    /// Reads only; an instant before `updatedAt` sees the balance at `updatedAt`.
    public func balance(at now: ContinuousClock.Instant) -> Double {
        guard now > updatedAt else { return tokens }
        return min(settings.burst, tokens + updatedAt.duration(to: now).seconds * settings.rate)
    }

    /// How long from `now` until a whole token is there; zero when one is. Reads only.
    public func shortfall(at now: ContinuousClock.Instant) -> Duration {
        wait(forBalance: balance(at: now))
    }

    public mutating func acquire(now: ContinuousClock.Instant, maxWait: Duration) -> Acquisition {
        tokens = balance(at: now)
        updatedAt = max(updatedAt, now)
        if tokens >= 1 {
            tokens -= 1
            return .granted(wait: .zero)
        }
        let wait = wait(forBalance: tokens)
        guard wait <= maxWait else { return .denied(retryIn: wait) }
        tokens -= 1
        return .granted(wait: wait)
    }

    private func wait(forBalance balance: Double) -> Duration {
        balance >= 1 ? .zero : TotalConversion.duration(seconds: (1 - balance) / settings.rate)
    }
}

/// A circuit breaker for one destination, as a value: `admit` before a try,
/// `record` after it; both return what happened so the caller can log it.
///
/// closed —(threshold consecutive failures)→ open —(cooldown)→ half-open: one
/// probe goes through; its success closes the circuit, its failure opens it again
/// for another cooldown. A probe that never reports (its job vanished) is
/// replaced after `cooldown` (at least `probeWait`). Instants (`now`, `until`)
/// come from the owner's `MonotonicClock`, the one its `TokenBucket`s read too.
public struct CircuitBreaker: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        /// Consecutive failures that open the circuit; ≥ 1.
        public var failureThreshold: Int
        /// How long the circuit stays open before a probe is let through; ≥ 0.
        public var cooldown: Duration

        public init(failureThreshold: Int, cooldown: Duration) {
            self.failureThreshold = max(1, failureThreshold)
            self.cooldown = max(.zero, cooldown)
        }
    }

    public enum State: Sendable, Equatable {
        case closed(consecutiveFailures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen(probeStartedAt: ContinuousClock.Instant)
    }

    public enum Admission: Sendable, Equatable {
        case allow
        /// Allowed as the one probe of a half-open circuit: report its result.
        case probe
        /// Do not try; come back in `retryIn`.
        case reject(retryIn: Duration)
    }

    public enum Transition: Sendable, Equatable {
        case none
        /// Just opened (from closed, or again after a failed probe).
        case opened(for: Duration)
        /// Closed again after being open.
        case closed
    }

    /// How long a caller rejected during a probe waits before asking again, and the
    /// shortest time a probe is given before another replaces it.
    public static let probeWait: Duration = .seconds(1)

    public let settings: Settings
    public private(set) var state: State = .closed(consecutiveFailures: 0)

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func admit(now: ContinuousClock.Instant) -> Admission {
        switch state {
        case .closed:
            return .allow
        case .open(let until):
            guard now >= until else { return .reject(retryIn: now.duration(to: until)) }
            state = .halfOpen(probeStartedAt: now)
            return .probe
        case .halfOpen(let started):
            guard started.duration(to: now) >= max(settings.cooldown, Self.probeWait) else {
                return .reject(retryIn: Self.probeWait)
            }
            state = .halfOpen(probeStartedAt: now)
            return .probe
        }
    }

    /// Records a try's result. `failure` is a destination failure
    /// (`DeliveryVerdict.isDestinationFailure`).
    public mutating func record(failure: Bool, now: ContinuousClock.Instant) -> Transition {
        switch (state, failure) {
        case (.closed, false):
            state = .closed(consecutiveFailures: 0)
            return .none
        case (.closed(let count), true):
            guard count + 1 >= settings.failureThreshold else {
                state = .closed(consecutiveFailures: count + 1)
                return .none
            }
            state = .open(until: now + settings.cooldown)
            return .opened(for: settings.cooldown)
        case (.open, false), (.halfOpen, false):
            state = .closed(consecutiveFailures: 0)
            return .closed
        case (.halfOpen, true):
            state = .open(until: now + settings.cooldown)
            return .opened(for: settings.cooldown)
        case (.open, true):
            // A try admitted before the circuit opened, finishing late: already open.
            return .none
        }
    }

    /// The probe was admitted but never tried (the job stopped first): let the next
    /// caller probe at once instead of waiting for the probe timeout.
    public mutating func abandonProbe(now: ContinuousClock.Instant) {
        if case .halfOpen = state { state = .open(until: now) }
    }
}
