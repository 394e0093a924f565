/// A token bucket: `rate` tokens per second, holding at most `burst`.
///
/// A caller may reserve a token that is not there yet (the balance goes negative)
/// when the wait is short, so concurrent callers queue up at `1/rate` intervals
/// instead of all waking at the same instant. Times are seconds on any monotonic
/// clock the caller passes in.
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
        /// Go ahead after waiting `wait` seconds (0 = at once); the token is taken.
        case granted(wait: Double)
        /// Nothing taken: the next token is `retryIn` seconds away, more than the
        /// caller was willing to wait.
        case denied(retryIn: Double)
    }

    public let settings: Settings
    public private(set) var tokens: Double
    public private(set) var updatedAt: Double

    /// Starts full.
    public init(settings: Settings, now: Double) {
        self.settings = settings
        tokens = settings.burst
        updatedAt = now
    }

    public mutating func acquire(now: Double, maxWait: Double) -> Acquisition {
        if now > updatedAt {
            tokens = min(settings.burst, tokens + (now - updatedAt) * settings.rate)
            updatedAt = now
        }
        if tokens >= 1 {
            tokens -= 1
            return .granted(wait: 0)
        }
        let wait = (1 - tokens) / settings.rate
        guard wait <= maxWait else { return .denied(retryIn: wait) }
        tokens -= 1
        return .granted(wait: wait)
    }
}

/// A circuit breaker for one destination, as a value: `admit` before a try,
/// `record` after it; both return what happened so the caller can log it.
///
/// closed —(threshold consecutive failures)→ open —(cooldown)→ half-open: one
/// probe goes through; its success closes the circuit, its failure opens it again
/// for another cooldown. A probe that never reports (its job vanished) is
/// replaced after `cooldown`. Times (`now`, `until`) are seconds on a monotonic
/// clock, the one `TokenBucket` reads too; the cooldown is a `Duration`, converted
/// to that clock's seconds in one place (`cooldownSeconds`).
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

        /// `cooldown` in the clock's seconds.
        public var cooldownSeconds: Double { cooldown.seconds }
    }

    public enum State: Sendable, Equatable {
        case closed(consecutiveFailures: Int)
        case open(until: Double)
        case halfOpen(probeStartedAt: Double)
    }

    public enum Admission: Sendable, Equatable {
        case allow
        /// Allowed as the one probe of a half-open circuit: report its result.
        case probe
        /// Do not try; come back in `retryIn` seconds.
        case reject(retryIn: Double)
    }

    public enum Transition: Sendable, Equatable {
        case none
        /// Just opened (from closed, or again after a failed probe).
        case opened(for: Duration)
        /// Closed again after being open.
        case closed
    }

    /// How long a caller rejected during a probe waits before asking again.
    public static let probeWaitSeconds = 1.0

    public let settings: Settings
    public private(set) var state: State = .closed(consecutiveFailures: 0)

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func admit(now: Double) -> Admission {
        switch state {
        case .closed:
            return .allow
        case .open(let until):
            guard now >= until else { return .reject(retryIn: until - now) }
            state = .halfOpen(probeStartedAt: now)
            return .probe
        case .halfOpen(let started):
            guard now - started >= max(settings.cooldownSeconds, Self.probeWaitSeconds) else {
                return .reject(retryIn: Self.probeWaitSeconds)
            }
            state = .halfOpen(probeStartedAt: now)
            return .probe
        }
    }

    /// Records a try's result. `failure` is a destination failure
    /// (`DeliveryVerdict.isDestinationFailure`).
    public mutating func record(failure: Bool, now: Double) -> Transition {
        switch (state, failure) {
        case (.closed, false):
            state = .closed(consecutiveFailures: 0)
            return .none
        case (.closed(let count), true):
            guard count + 1 >= settings.failureThreshold else {
                state = .closed(consecutiveFailures: count + 1)
                return .none
            }
            state = .open(until: now + settings.cooldownSeconds)
            return .opened(for: settings.cooldown)
        case (.open, false), (.halfOpen, false):
            state = .closed(consecutiveFailures: 0)
            return .closed
        case (.halfOpen, true):
            state = .open(until: now + settings.cooldownSeconds)
            return .opened(for: settings.cooldown)
        case (.open, true):
            // A try admitted before the circuit opened, finishing late: already open.
            return .none
        }
    }

    /// The probe was admitted but never tried (the job stopped first): let the next
    /// caller probe at once instead of waiting for the probe timeout.
    public mutating func abandonProbe(now: Double) {
        if case .halfOpen = state { state = .open(until: now) }
    }
}
