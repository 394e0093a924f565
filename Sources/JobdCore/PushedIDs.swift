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

    public init(grace: Duration, cap: Int) {
        self.grace = grace
        self.cap = max(1, cap)
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

    /// Ids just pushed to the tail of the lane's list, in push order.
    public mutating func pushed(_ new: [JobID]) {
        ids.append(contentsOf: new)
        if ids.count > cap { drop(ids.count - cap) }
    }

    /// Everything: a new promoter session (the lists may hold anything) or standby.
    public mutating func forgetAll() {
        base += ids.count
        ids.removeAll(keepingCapacity: true)
        readings.removeAll()
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
