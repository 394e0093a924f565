/// The elected promoter's memory of the ids it pushed to one lane's Redis list and
/// has not yet seen leave it. Pure: the caller passes in the list lengths it read and
/// the time.
///
/// The promoter is the only writer at the tail of its lists (RPUSH) and workers take
/// from the head (LPOP, BLPOP; a failed claim puts ids back at the head), so the ids
/// of its own still in a list are always the *last* ones it pushed, and there are at
/// most as many as the list is long. A length read therefore says which pushes have
/// certainly left the list: all but the last `length` of those made before the read.
/// A flushed or restarted Redis reads as short or empty lists, and the promoter then
/// forgets at once whatever it pushed before.
///
/// An id that left the list is forgotten only once the read that proved it is
/// `grace` old: a worker pops and then claims, and in between the job still looks
/// waiting; forgetting it at once would push it again (a harmless duplicate, refused
/// by the claim, but a wasted pop). After `grace` a job that still waits is one whose
/// claimer died between pop and claim, and it is pushed again.
///
/// No starvation: every id is forgotten within `grace` of the first length read
/// after it left the list. Bounded: at most `cap` ids are kept (the oldest go first,
/// which at worst pushes a duplicate).
///
/// Where the next read may start. A read walks the lane in dispatch order (run_at,
/// id) from its start and passes over every id remembered here: under a backlog that
/// is the whole list and the ids popped within `grace`, thousands of rows and a hash
/// of thousands of ids for each read. While reads keep filling their batch, the next
/// one may start after the highest key pushed instead (`readStart`), and leave nothing
/// out: no id pushed since `forgetAll` lies beyond it. What it does not see is a job
/// that became due behind that key (a snooze that keeps its place, a rescued job, an
/// insert whose transaction began earlier, a push Redis lost): a read from the start
/// still runs at least every `fullReadInterval`, and whenever a read comes up short.
public struct PushedIDs: Sendable {
    private struct Reading: Sendable {
        var at: ContinuousClock.Instant
        /// Ids pushed before the read with a smaller index than this have left the list.
        var keepFrom: Int
    }

    /// The ids pushed, oldest first; `ids[0]` has absolute index `base`.
    private var ids: [JobID] = []
    private var base = 0
    private var readings: [Reading] = []
    public let grace: Duration
    public let cap: Int
    public let fullReadInterval: Duration
    /// The highest key pushed since `forgetAll`.
    public private(set) var highestPushed: DueKey?
    /// The last read of the lane found as many due jobs as it could take.
    private var lastReadFilled = false
    private var lastFullRead: ContinuousClock.Instant?

    public init(grace: Duration, cap: Int, fullReadInterval: Duration = .milliseconds(100)) {
        self.grace = grace
        self.cap = max(1, cap)
        self.fullReadInterval = fullReadInterval
    }

    /// Where the next read of due jobs starts: after this key, leaving nothing out; or
    /// nil: from the lane's start, leaving out `remembered`.
    public func readStart(now: ContinuousClock.Instant) -> DueKey? {
        guard lastReadFilled, let highestPushed, highestPushed.isExactCursor,
            let lastFullRead, lastFullRead.duration(to: now) < fullReadInterval
        else { return nil }
        return highestPushed
    }

    /// A read of the lane that started at `start` (`readStart`) could take `limit`
    /// jobs and found `found`. A lane not read (limit 0) keeps its state.
    public mutating func read(from start: DueKey?, limit: Int, found: Int, now: ContinuousClock.Instant) {
        guard limit > 0 else { return }
        if start == nil { lastFullRead = now }
        lastReadFilled = found >= limit
    }

    /// The ids to leave out of the next read of due jobs.
    public var remembered: ArraySlice<JobID> { ids[...] }

    public var isEmpty: Bool { ids.isEmpty }

    /// A length of the lane's list, read at `now`, before any push that follows it.
    public mutating func observe(length: Int, now: ContinuousClock.Instant) {
        let pushed = base + ids.count
        readings.append(Reading(at: now, keepFrom: pushed - max(0, length)))
        forgetProven(now: now)
    }

    /// Ids just pushed to the tail of the lane's list, in push order; `highest` is the
    /// highest key among them.
    public mutating func pushed(_ new: [JobID], highest: DueKey? = nil) {
        ids.append(contentsOf: new)
        if ids.count > cap { drop(ids.count - cap) }
        if let highest { highestPushed = max(highestPushed ?? highest, highest) }
    }

    /// Everything: a new promoter session (the lists may hold anything) or standby.
    /// The next read starts from the lane's start.
    public mutating func forgetAll() {
        base += ids.count
        ids.removeAll(keepingCapacity: true)
        readings.removeAll()
        highestPushed = nil
        lastReadFilled = false
        lastFullRead = nil
    }

    private mutating func forgetProven(now: ContinuousClock.Instant) {
        // The newest reading at least `grace` old decides; older ones are spent.
        guard let newest = readings.lastIndex(where: { $0.at.duration(to: now) >= grace }) else { return }
        let keepFrom = readings[newest].keepFrom
        readings.removeFirst(newest)
        if keepFrom > base { drop(min(ids.count, keepFrom - base)) }
    }

    private mutating func drop(_ count: Int) {
        guard count > 0 else { return }
        ids.removeFirst(count)
        base += count
    }
}

/// A waiting job's place in its lane's dispatch order: run_at in microseconds since
/// 1970 (the CHECK of migration 0013 keeps every run_at from 1970 to 9999), then id.
public struct DueKey: Sendable, Hashable, Comparable {
    public var runAtMicros: Int64
    public var id: JobID

    public init(runAtMicros: Int64, id: JobID) {
        self.runAtMicros = runAtMicros
        self.id = id
    }

    /// Before every job: run_at 1970-01-01 00:00 UTC, the earliest the CHECK allows,
    /// and id 0 (ids start at 1).
    public static let start = DueKey(runAtMicros: 0, id: 0)

    /// The statement turns `runAtMicros` back into a timestamp through a float8
    /// product, exact below 2^52 µs (year 2112); a key past it is never a cursor.
    public var isExactCursor: Bool { runAtMicros >= 0 && runAtMicros < 1 << 52 }

    public static func < (lhs: DueKey, rhs: DueKey) -> Bool { (lhs.runAtMicros, lhs.id) < (rhs.runAtMicros, rhs.id) }
}
