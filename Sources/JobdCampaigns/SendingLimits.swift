import Foundation
import JobdCore
import Synchronization

/// What limits one recipient's send, as read for its batch (`oltp.domain_limits`:
/// the account's own row for the domain, else the row for all accounts).
public struct RecipientLimit: Sendable, Equatable {
    public var contact: Int64
    /// The address's domain, lower case.
    public var domain: String
    /// Messages per second to the domain; nil: no rate.
    public var rate: Double?
    public var burst: Int
    /// Transactions to the domain in flight at once; nil: no limit.
    public var maxTransfers: Int?

    public init(contact: Int64, domain: String, rate: Double?, burst: Int, maxTransfers: Int?) {
        self.contact = contact
        self.domain = domain
        self.rate = rate
        self.burst = burst
        self.maxTransfers = maxTransfers
    }

    var isLimited: Bool { rate != nil || maxTransfers != nil }
}

/// The daemon's throttles: a token bucket per account (its messages per second) and
/// per (account, recipient domain), and a count of transactions in flight per
/// (account, domain). Every delivery batch of the daemon shares them, so the limits
/// hold for the daemon as a whole; each daemon enforces them on its own (documented:
/// N daemons may together reach N times a limit).
///
/// `take` never waits: it grants a permit at once or says how long until one may be
/// granted, so a batch sends other recipients meanwhile and sleeps (or snoozes)
/// only when none of its recipients can go.
public final class CampaignThrottles: Sendable {
    struct Key: Hashable {
        var account: Int64
        /// nil: the account's own limit.
        var domain: String?
    }

    /// Why a recipient must wait.
    public enum Cause: Sendable, Equatable {
        case account
        case domain(String)
    }

    public enum Decision: Sendable, Equatable {
        /// Send now; give the permit back with `release` after the transaction.
        case go(Permit)
        /// Not before `retryIn` from now.
        case wait(retryIn: Duration, cause: Cause)
    }

    /// A granted send; `transfers` names the in-flight count it holds, if any.
    public struct Permit: Sendable, Equatable {
        var transfers: Key?
    }

    private struct State {
        var buckets: [Key: TokenBucket] = [:]
        var inFlight: [Key: Int] = [:]
    }

    private let state = Mutex(State())
    private let clock: any MonotonicClock
    /// Buckets kept before idle (full) ones are dropped.
    static let bucketLimit = 10_000
    /// How soon a recipient held back by `max_transfers` looks again (no token
    /// bucket says when a transaction ends).
    static let transferRecheck: Duration = .milliseconds(50)

    public init(clock: any MonotonicClock = ContinuousClock()) {
        self.clock = clock
    }

    /// A permit for one send to `recipient` from `account` (whose own rate is
    /// `accountRate`), or how long to wait.
    public func take(account: Int64, accountRate: Double?, recipient: RecipientLimit) -> Decision {
        let now = clock.now
        return state.withLock { state in
            let accountKey = Key(account: account, domain: nil)
            let domainKey = Key(account: account, domain: recipient.domain)
            var waits: [(Duration, Cause)] = []
            if let rate = accountRate {
                let settings = TokenBucket.Settings(rate: rate, burst: max(1, rate.rounded(.down)))
                if let wait = Self.shortfall(&state, accountKey, settings, now) { waits.append((wait, .account)) }
            }
            if let rate = recipient.rate {
                let settings = TokenBucket.Settings(rate: rate, burst: Double(recipient.burst))
                if let wait = Self.shortfall(&state, domainKey, settings, now) { waits.append((wait, .domain(recipient.domain))) }
            }
            if let limit = recipient.maxTransfers, state.inFlight[domainKey, default: 0] >= limit {
                waits.append((Self.transferRecheck, .domain(recipient.domain)))
            }
            if let longest = waits.max(by: { $0.0 < $1.0 }) { return .wait(retryIn: longest.0, cause: longest.1) }
            // Everything is available: take it all.
            if accountRate != nil { _ = state.buckets[accountKey]?.acquire(now: now, maxWait: .zero) }
            if recipient.rate != nil { _ = state.buckets[domainKey]?.acquire(now: now, maxWait: .zero) }
            guard recipient.maxTransfers != nil else { return .go(Permit(transfers: nil)) }
            state.inFlight[domainKey, default: 0] += 1
            return .go(Permit(transfers: domainKey))
        }
    }

    public func release(_ permit: Permit) {
        guard let key = permit.transfers else { return }
        state.withLock { state in
            let left = state.inFlight[key, default: 1] - 1
            state.inFlight[key] = left > 0 ? left : nil
        }
    }

    /// How long until `key`'s bucket holds a token, nil when it holds one now. A
    /// bucket is made (full) on first use, and remade when its limit changed.
    private static func shortfall(
        _ state: inout State, _ key: Key, _ settings: TokenBucket.Settings, _ now: ContinuousClock.Instant
    ) -> Duration? {
        if state.buckets[key]?.settings != settings {
            if state.buckets[key] == nil, state.buckets.count >= bucketLimit { dropIdle(&state, now) }
            state.buckets[key] = TokenBucket(settings: settings, now: now)
        }
        guard let wait = state.buckets[key]?.shortfall(at: now), wait > .zero else { return nil }
        return wait
    }

    /// Forgets buckets that refilled completely (forgetting one changes nothing).
    private static func dropIdle(_ state: inout State, _ now: ContinuousClock.Instant) {
        state.buckets = state.buckets.filter { _, bucket in bucket.balance(at: now) < bucket.settings.burst }
    }
}

/// What this daemon measured while sending each campaign: totals (tried, bounced)
/// and the current window's time split. A batch adds to it as it goes and, about
/// once a second (and after a bounce), writes it to `oltp.campaign_senders`, where
/// `jobd campaign status` reads what limits the rate and the auto-pause sums the
/// bounce rate over daemons.
public final class CampaignSendMonitor: Sendable {
    public struct Window: Sendable, Equatable {
        public var tried = 0
        public var bounced = 0
        public var windowStart: Double
        public var sends = 0
        public var deferrals = 0
        public var poolWait = 0.0
        public var accountWait = 0.0
        public var database = 0.0
        public var smtp = 0.0
        public var domainWaits: [String: Double] = [:]
        var lastFlush: Double

        /// A new window is written at the first chance: a campaign a daemon just
        /// started on is visible at once.
        init(now: Double) {
            windowStart = now
            lastFlush = -.infinity
        }

        public var domainWait: Double { domainWaits.values.reduce(0, +) }
        public var throttledDomain: String? { domainWaits.max { $0.value < $1.value }?.key }
    }

    /// This daemon's name in `oltp.campaign_senders`.
    public let daemon: String
    private let windows = Mutex<[Int64: Window]>([:])
    /// Campaigns a report of this daemon found no longer sending (paused, by the
    /// auto-pause or by hand, or cancelled), with that status: every batch of the
    /// daemon stops, not only the one that wrote the report.
    private let stopped = Mutex<[Int64: (status: String, at: Double)]>([:])
    private let epoch = ContinuousClock.now

    public init(daemon: String? = nil) {
        self.daemon = daemon ?? "\(ProcessInfo.processInfo.hostName):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// Seconds on the monitor's monotonic clock.
    public func now() -> Double {
        let elapsed = ContinuousClock.now - epoch
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    public func add(_ campaign: Int64, _ update: (inout Window) -> Void) {
        let now = now()
        windows.withLock { windows in
            var window = windows[campaign] ?? Window(now: now)
            update(&window)
            windows[campaign] = window
        }
    }

    /// The window to write (and its length in seconds) when `minimumInterval`
    /// passed since the last write, or `force`; a fresh window begins. Nil otherwise.
    public func flush(_ campaign: Int64, minimumInterval: Double, force: Bool = false) -> (window: Window, seconds: Double)? {
        let now = now()
        return windows.withLock { windows -> (window: Window, seconds: Double)? in
            guard var window = windows[campaign] else { return nil }
            guard force || now - window.lastFlush >= minimumInterval else { return nil }
            let taken = window
            window.windowStart = now
            window.lastFlush = now
            window.sends = 0
            window.deferrals = 0
            window.poolWait = 0
            window.accountWait = 0
            window.database = 0
            window.smtp = 0
            window.domainWaits = [:]
            windows[campaign] = window
            return (taken, now - taken.windowStart)
        }
    }

    public func markStopped(_ campaign: Int64, status: String) {
        let now = now()
        stopped.withLock { $0[campaign] = (status, now) }
    }

    /// A batch found the campaign sending (resumed) in a read that began at `readAt`
    /// (`now()`): a stop marked before that read is over; one marked since stands.
    public func clearStopped(_ campaign: Int64, readAt: Double) {
        stopped.withLock { stopped in
            if let mark = stopped[campaign], mark.at < readAt { stopped[campaign] = nil }
        }
    }

    public func stoppedStatus(_ campaign: Int64) -> String? { stopped.withLock { $0[campaign]?.status } }
}
