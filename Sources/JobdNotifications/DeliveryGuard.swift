import JobdCore
import JobdQueue
import Synchronization

/// Per-destination token buckets and circuit breakers, shared by every
/// notification job of this process (not across daemons: each daemon limits
/// itself, so N daemons may send N times the configured rate).
///
/// The decisions are the pure `TokenBucket` and `CircuitBreaker` values; this
/// type only keeps one of each per destination under a lock and reads the clock
/// it was given.
final class DeliveryGuard: Sendable {
    enum Admission: Sendable, Equatable {
        /// Send after `wait`; report the result with `record`, or `abandon` if the
        /// send does not happen.
        case go(wait: Duration, probe: Bool)
        /// Not now: snooze the job for `retryIn`.
        case hold(retryIn: Duration, reason: String)
    }

    private struct Entry {
        var bucket: TokenBucket?
        var breaker: CircuitBreaker
        var lastUsed: ContinuousClock.Instant
    }

    private let rateLimit: TokenBucket.Settings?
    private let breakerSettings: CircuitBreaker.Settings
    private let clock: any MonotonicClock
    private let entries = Mutex<[String: Entry]>([:])
    /// Destinations remembered at most. Destinations are chosen by producers, so
    /// this is a hard bound: see `prune`.
    let capacity: Int

    /// A destination idle this long with a closed breaker may be forgotten.
    static let idleForget: Duration = .seconds(600)

    init(
        rateLimit: TokenBucket.Settings?, breaker: CircuitBreaker.Settings, capacity: Int = 10_000,
        clock: any MonotonicClock
    ) {
        self.rateLimit = rateLimit
        self.breakerSettings = breaker
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    /// Destinations remembered now (never more than `capacity`).
    var count: Int { entries.withLock { $0.count } }

    /// The breaker first (a rejected call takes no token), then the bucket; a wait
    /// longer than `maxWait` becomes a snooze so a worker slot is not held idle.
    func admit(_ destination: String, maxWait: Duration) -> Admission {
        let time = clock.now
        return entries.withLock { entries in
            if entries.count >= capacity, entries[destination] == nil { prune(&entries, now: time) }
            var entry = entries[destination] ?? Entry(
                bucket: rateLimit.map { TokenBucket(settings: $0, now: time) },
                breaker: CircuitBreaker(settings: breakerSettings), lastUsed: time)
            defer {
                entry.lastUsed = time
                entries[destination] = entry
            }
            let probe: Bool
            switch entry.breaker.admit(now: time) {
            case .allow: probe = false
            case .probe: probe = true
            case .reject(let retryIn): return .hold(retryIn: retryIn, reason: "circuit_open")
            }
            guard var bucket = entry.bucket else { return .go(wait: .zero, probe: probe) }
            let acquisition = bucket.acquire(now: time, maxWait: maxWait)
            entry.bucket = bucket
            switch acquisition {
            case .granted(let wait):
                return .go(wait: wait, probe: probe)
            case .denied(let retryIn):
                if probe { entry.breaker.abandonProbe(now: time) }
                return .hold(retryIn: retryIn, reason: "rate_limited")
            }
        }
    }

    func record(_ destination: String, failure: Bool) -> CircuitBreaker.Transition {
        let time = clock.now
        return entries.withLock { entries in
            guard var entry = entries[destination] else { return .none }
            let transition = entry.breaker.record(failure: failure, now: time)
            entry.lastUsed = time
            entries[destination] = entry
            return transition
        }
    }

    /// The admitted send did not happen (already sent, busy, cancelled, database down).
    func abandon(_ destination: String, probe: Bool) {
        guard probe else { return }
        let time = clock.now
        entries.withLock { entries in entries[destination]?.breaker.abandonProbe(now: time) }
    }

    /// Makes room for a new destination. First forgets destinations idle for
    /// `idleForget` whose breaker is closed: nothing is lost, a forgotten bucket comes
    /// back full. If that frees nothing (a producer sends to more distinct
    /// destinations than `capacity` within ten minutes), forgets the least recently
    /// used down to nine tenths of `capacity`, closed breakers before open ones: such
    /// a destination is sent to again as if new, which is the price of a bound.
    private func prune(_ entries: inout [String: Entry], now: ContinuousClock.Instant) {
        entries = entries.filter { _, entry in
            if case .closed = entry.breaker.state, entry.lastUsed.duration(to: now) > Self.idleForget { return false }
            return true
        }
        guard entries.count >= capacity else { return }
        func isClosed(_ entry: Entry) -> Bool {
            if case .closed = entry.breaker.state { return true }
            return false
        }
        let keep = capacity - max(1, capacity / 10)
        let doomed = entries
            .sorted { a, b in
                let (closedA, closedB) = (isClosed(a.value), isClosed(b.value))
                return closedA != closedB ? closedA : a.value.lastUsed < b.value.lastUsed
            }
            .prefix(entries.count - keep)
        for (key, _) in doomed { entries[key] = nil }
    }
}

/// Outcomes of sends whose recording failed (the notifications database went away
/// between the provider's answer and our write), by idempotency key. The job is
/// retried; its next run in this process writes the remembered outcome instead of
/// sending again. Bounded, and entries older than an hour are dropped — after that
/// the claim window has long passed and a re-run re-sends with the same
/// Idempotency-Key, which receivers use to drop the duplicate.
final class UnrecordedOutcomes: Sendable {
    struct Entry: Sendable {
        var record: NotificationStore.TryRecord
        var verdict: DeliveryVerdict
        /// When first remembered; kept when a taken entry is remembered again.
        var storedAt: ContinuousClock.Instant?
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity = 10_000
    private let maxAge: Duration = .seconds(3_600)
    private let clock: any MonotonicClock

    init(clock: any MonotonicClock) {
        self.clock = clock
    }

    func remember(_ key: String, _ entry: Entry) {
        let time = clock.now
        var entry = entry
        if entry.storedAt == nil { entry.storedAt = time }
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { isFresh($0.value, at: time) }
                if entries.count >= capacity, let oldest = entries.min(by: { ($0.value.storedAt ?? time) < ($1.value.storedAt ?? time) }) {
                    entries[oldest.key] = nil
                }
            }
            entries[key] = entry
        }
    }

    func take(_ key: String) -> Entry? {
        let time = clock.now
        return entries.withLock { entries in
            guard let entry = entries.removeValue(forKey: key), isFresh(entry, at: time) else { return nil }
            return entry
        }
    }

    private func isFresh(_ entry: Entry, at time: ContinuousClock.Instant) -> Bool {
        guard let storedAt = entry.storedAt else { return true }
        return storedAt.duration(to: time) < maxAge
    }

    var count: Int { entries.withLock { $0.count } }
}
