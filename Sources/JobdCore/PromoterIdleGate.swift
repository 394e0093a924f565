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
        /// Wait for a wake-up, at most this long (nil: until the idle deadline).
        case wait(Duration?)
    }

    public private(set) var phase: Phase = .busy
    /// When the promoter last asked every lane (no lane skipped as drained).
    public private(set) var lastFullAsk: ContinuousClock.Instant?

    /// The first re-check after a failed try-lock, doubling up to `maximumBackoff`.
    public var firstBackoff: Duration
    public var maximumBackoff: Duration
    /// How long short re-checks go on before they fall back to `pollInterval` (an
    /// inserter whose transaction stays open that long is a long transaction; its
    /// job is found within a poll interval of its commit).
    public var settleWindow: Duration
    public var pollInterval: Duration
    /// While busy, inserts do not wake the promoter, so lanes skipped as drained on
    /// pop-only wakes are asked again at least this often.
    public var fullAskInterval: Duration
    /// The longest linger (see `linger(afterPromoting:since:)`): after a pass that
    /// found work, the promoter looks again after a while before announcing idle, so
    /// that while jobs keep arriving it stays busy and finds them itself, instead of
    /// being woken by (and serialising) a NOTIFY per insert.
    public var linger: Duration
    /// How many of the last pass's mean arrival gaps a linger spans: the next pass
    /// then expects about this many jobs more, so it rarely comes back empty (an
    /// empty pass announces idle, and every insert after that notifies).
    public var lingerGaps: Int
    /// A linger shorter than this is not slept: the promoter looks again at once (a
    /// timer that short costs about what it saves).
    public var shortestLinger: Duration

    public init(
        pollInterval: Duration, firstBackoff: Duration = .milliseconds(2), maximumBackoff: Duration = .milliseconds(100),
        settleWindow: Duration = .seconds(1), fullAskInterval: Duration = .milliseconds(20),
        linger: Duration = .milliseconds(2), lingerGaps: Int = 3, shortestLinger: Duration = .microseconds(100)
    ) {
        self.linger = linger
        self.lingerGaps = lingerGaps
        self.shortestLinger = shortestLinger
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
        phase = .settling(since: since, attempt: attempt, nextCheck: now + backoff(attempt: attempt, since: since, now: now))
    }

    /// The wait before the next re-check after `attempt` failed ones.
    func backoff(attempt: Int, since: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Duration {
        if since.duration(to: now) >= settleWindow { return pollInterval }
        let doubled = firstBackoff * (1 << min(attempt, 30))
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
        case .idle: return .wait(nil)
        case .settling(_, _, let next):
            let left = now.duration(to: next)
            return left <= .zero ? .recheck : .wait(left)
        }
    }

    /// How long to wait before the next pass instead of announcing idle; `.zero`: pass
    /// again at once; nil: announce idle. Only while busy and only after a pass that
    /// found work.
    ///
    /// The linger spans `lingerGaps` of the mean gaps between the jobs the last pass
    /// found (`since`: the time since the read before it, over which they became
    /// due), at most `linger` (and the poll interval). So it shrinks as jobs arrive
    /// faster: a pass that found many in a short time looks again soon (a job that
    /// arrives meanwhile waits less), while one that found few, far apart, waits the
    /// full `linger` and its next pass still finds some. A count alone could not tell
    /// these apart: few jobs after a short wait is the rate at which the next pass
    /// may come back empty and go idle. `since` nil (no read before): the full linger.
    public func linger(afterPromoting promoted: Int, since: Duration?) -> Duration? {
        guard phase == .busy, promoted > 0, linger > .zero else { return nil }
        let cap = min(linger, pollInterval)
        guard let since, lingerGaps > 0 else { return cap }
        let span = since * lingerGaps / promoted
        if span < shortestLinger { return .zero }
        return min(cap, span)
    }

    /// Whether lanes known to be drained may be skipped on this pop-only wake. Once
    /// announced idle, inserts notify again, so skipping is as safe as before the
    /// protocol; while busy, every lane is asked at least every `fullAskInterval`.
    public func maySkipDrained(poppedOnly: Bool, now: ContinuousClock.Instant) -> Bool {
        guard poppedOnly else { return false }
        guard phase == .busy else { return true }
        guard let last = lastFullAsk else { return false }
        return last.duration(to: now) < fullAskInterval
    }

    /// A pass asked every lane.
    public mutating func askedAll(now: ContinuousClock.Instant) { lastFullAsk = now }
}
