import JobdCore
import JobdQueue
import Synchronization

/// Per-destination token buckets and circuit breakers, shared by every
/// notification job of this process (not across daemons: each daemon limits
/// itself, so N daemons may send N times the configured rate).
///
/// The decisions are the pure `TokenBucket` and `CircuitBreaker` values; this
/// type only keeps one of each per destination under a lock and reads the clock.
final class DeliveryGuard: Sendable {
    enum Admission: Sendable, Equatable {
        /// Send after `wait` seconds; report the result with `record`, or `abandon`
        /// if the send does not happen.
        case go(wait: Double, probe: Bool)
        /// Not now: snooze the job for `seconds`.
        case hold(seconds: Double, reason: String)
    }

    private struct Entry {
        var bucket: TokenBucket?
        var breaker: CircuitBreaker
        var lastUsed: Double
    }

    private let rateLimit: TokenBucket.Settings?
    private let breakerSettings: CircuitBreaker.Settings
    private let now: @Sendable () -> Double
    private let entries = Mutex<[String: Entry]>([:])
    /// Destinations remembered at most. Destinations are chosen by producers, so
    /// this is a hard bound: see `prune`.
    let capacity: Int

    /// - Parameter now: monotonic seconds.
    init(
        rateLimit: TokenBucket.Settings?, breaker: CircuitBreaker.Settings, capacity: Int = 10_000,
        now: @escaping @Sendable () -> Double
    ) {
        self.rateLimit = rateLimit
        self.breakerSettings = breaker
        self.capacity = max(1, capacity)
        self.now = now
    }

    /// Destinations remembered now (never more than `capacity`).
    var count: Int { entries.withLock { $0.count } }

    /// The breaker first (a rejected call takes no token), then the bucket; a wait
    /// longer than `maxWait` becomes a snooze so a worker slot is not held idle.
    func admit(_ destination: String, maxWait: Double) -> Admission {
        let time = now()
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
            case .reject(let retryIn): return .hold(seconds: retryIn, reason: "circuit_open")
            }
            guard var bucket = entry.bucket else { return .go(wait: 0, probe: probe) }
            let acquisition = bucket.acquire(now: time, maxWait: maxWait)
            entry.bucket = bucket
            switch acquisition {
            case .granted(let wait):
                return .go(wait: wait, probe: probe)
            case .denied(let retryIn):
                if probe { entry.breaker.abandonProbe(now: time) }
                return .hold(seconds: retryIn, reason: "rate_limited")
            }
        }
    }

    func record(_ destination: String, failure: Bool) -> CircuitBreaker.Transition {
        let time = now()
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
        let time = now()
        entries.withLock { entries in entries[destination]?.breaker.abandonProbe(now: time) }
    }

    /// Makes room for a new destination. First forgets destinations idle for ten
    /// minutes whose breaker is closed: nothing is lost, a forgotten bucket comes
    /// back full. If that frees nothing (a producer sends to more distinct
    /// destinations than `capacity` within ten minutes), forgets the least recently
    /// used down to nine tenths of `capacity`, closed breakers before open ones: such
    /// a destination is sent to again as if new, which is the price of a bound.
    private func prune(_ entries: inout [String: Entry], now: Double) {
        entries = entries.filter { _, entry in
            if case .closed = entry.breaker.state, now - entry.lastUsed > 600 { return false }
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
        var storedAt: Double = 0
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity = 10_000
    private let maxAge = 3_600.0
    private let now: @Sendable () -> Double

    init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    func remember(_ key: String, _ entry: Entry) {
        let time = now()
        var entry = entry
        if entry.storedAt == 0 { entry.storedAt = time }
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { time - $0.value.storedAt < maxAge }
                if entries.count >= capacity, let oldest = entries.min(by: { $0.value.storedAt < $1.value.storedAt }) {
                    entries[oldest.key] = nil
                }
            }
            entries[key] = entry
        }
    }

    func take(_ key: String) -> Entry? {
        let time = now()
        return entries.withLock { entries in
            guard let entry = entries.removeValue(forKey: key), time - entry.storedAt < maxAge else { return nil }
            return entry
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
