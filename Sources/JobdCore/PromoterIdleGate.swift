/// The promoter's side of the wake-up protocol (Migrations/queue/0010_queue_wakeup.sql),
/// as a value: what it may do when it has nothing more to promote. Pure: the caller
/// runs the statements and passes in the time.
///
/// The insert trigger sends NOTIFY only while some promoter's row in
/// `queue.listeners` says idle. So a promoter may sleep waiting for a NOTIFY only
/// after it has *announced* idle (upserted idle = true and taken the wake-up
/// advisory lock, proving that no inserter that read "busy" is still uncommitted) and
/// then run one more pass. If the lock was busy it must *settle*: re-check after a
/// short backoff, with a pass each time, until the lock is free.
public struct PromoterIdleGate: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// Its row says busy, or nobody knows (start, after an error, after a
        /// promote statement that marked it busy): inserts may not notify.
        case busy
        /// Announced idle, but an inserter that read "busy" was still open: re-check
        /// the lock at `nextCheck`. `attempt` counts failed checks since `since`.
        case settling(since: ContinuousClock.Instant, attempt: Int, nextCheck: ContinuousClock.Instant)
        /// Announced idle and the lock was free: inserts notify; sleep on NOTIFY.
        case idle
    }

    /// What to do when the last pass found nothing more due (lists not full).
    public enum Step: Sendable, Equatable {
        /// Upsert the row idle, try the lock, then pass once more.
        case announce
        /// Try the lock again now (then pass once more).
        case recheck
        /// Wait for a wake-up, at most this many seconds (nil: until the idle deadline).
        case wait(seconds: Double?)
    }

    public private(set) var phase: Phase = .busy
    /// When the promoter last asked every lane (no lane skipped as drained).
    public private(set) var lastFullAsk: ContinuousClock.Instant?

    /// The first re-check after a failed try-lock, doubling up to `maximumBackoff`.
    public var firstBackoff: Double
    public var maximumBackoff: Double
    /// How long short re-checks go on before they fall back to `pollInterval` (an
    /// inserter whose transaction stays open that long is a long transaction; its
    /// job is found within a poll interval of its commit).
    public var settleWindow: Double
    public var pollInterval: Double
    /// While busy, inserts do not wake the promoter, so lanes skipped as drained on
    /// pop-only wakes are asked again at least this often.
    public var fullAskInterval: Double
    /// After a pass that promoted something, look again after this long before
    /// announcing idle: while jobs keep arriving the promoter then stays busy and
    /// finds them itself, instead of being woken by (and serialising) a NOTIFY per insert.
    public var linger: Double

    public init(
        pollInterval: Double, firstBackoff: Double = 0.002, maximumBackoff: Double = 0.1,
        settleWindow: Double = 1, fullAskInterval: Double = 0.02, linger: Double = 0.002
    ) {
        self.linger = linger
        self.pollInterval = pollInterval
        self.firstBackoff = firstBackoff
        self.maximumBackoff = maximumBackoff
        self.settleWindow = settleWindow
        self.fullAskInterval = fullAskInterval
    }

    /// A promote statement that marked the row busy committed, or an error left
    /// the row's state unknown.
    public mutating func becameBusy() { phase = .busy }

    /// The outcome of an announce or a re-check: whether the try-lock succeeded.
    public mutating func lockTried(acquired: Bool, now: ContinuousClock.Instant) {
        if acquired {
            phase = .idle
            return
        }
        let (since, attempt): (ContinuousClock.Instant, Int)
        if case .settling(let s, let a, _) = phase { (since, attempt) = (s, a + 1) } else { (since, attempt) = (now, 0) }
        phase = .settling(since: since, attempt: attempt, nextCheck: now + .seconds(backoff(attempt: attempt, since: since, now: now)))
    }

    /// Seconds to the next re-check after `attempt` failed ones.
    func backoff(attempt: Int, since: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Double {
        if since.duration(to: now) >= .seconds(settleWindow) { return pollInterval }
        let doubled = firstBackoff * Double(1 << min(attempt, 30))
        return min(maximumBackoff, doubled, pollInterval)
    }

    /// Whether this pass should try the lock first instead of marking the row busy:
    /// settling and the re-check is due.
    public func recheckDue(now: ContinuousClock.Instant) -> Bool {
        if case .settling(_, _, let next) = phase { return now >= next }
        return false
    }

    /// The next step once a pass found nothing more due and the lists are not full.
    public func step(now: ContinuousClock.Instant) -> Step {
        switch phase {
        case .busy: return .announce
        case .idle: return .wait(seconds: nil)
        case .settling(_, _, let next):
            let left = now.duration(to: next)
            return left <= .zero ? .recheck : .wait(seconds: left.seconds)
        }
    }

    /// Seconds to wait before the next pass instead of announcing idle, or nil: only
    /// while busy and only after a pass that found work.
    public func lingerSeconds(afterPromoting promoted: Int) -> Double? {
        guard phase == .busy, promoted > 0, linger > 0 else { return nil }
        return min(linger, pollInterval)
    }

    /// Whether lanes known to be drained may be skipped on this pop-only wake. Once
    /// announced idle, inserts notify again, so skipping is as safe as before the
    /// protocol; while busy, every lane is asked at least every `fullAskInterval`.
    public func maySkipDrained(poppedOnly: Bool, now: ContinuousClock.Instant) -> Bool {
        guard poppedOnly else { return false }
        guard phase == .busy else { return true }
        guard let last = lastFullAsk else { return false }
        return last.duration(to: now) < .seconds(fullAskInterval)
    }

    /// A pass asked every lane.
    public mutating func askedAll(now: ContinuousClock.Instant) { lastFullAsk = now }
}
