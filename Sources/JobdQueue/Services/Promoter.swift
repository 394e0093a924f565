import JobdCore
import JobdPostgres
import JobdRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Pushes due jobs' ids from Postgres to the Redis lists, by priority, writing
/// nothing to `queue.jobs`: the claim moves a job from `available` or `retryable` to
/// `running` itself.
///
/// One promoter per queue database pushes at a time: the one whose connection holds
/// the promoter lock (a session-level advisory lock, taken by its read of due jobs
/// when free). The others stand by, trying the lock once per poll interval; their
/// pools pop and claim as usual. Losing the connection loses the lock, and whoever
/// takes it next starts with an empty memory.
///
/// One pass: read the three list lengths; for each list that has drained below half
/// its high-water mark, read up to `high water − length` due jobs, all priorities in
/// one statement, leaving out the ids this promoter pushed and has not seen leave
/// (`PushedIDs`), then push them in one pipeline and remember them. Redis thus holds
/// only what workers will take soon, and a newly due high-priority job is never
/// buried behind a deep low list.
///
/// Nothing is lost: a job waits in Postgres until a claim moves it, and the promoter
/// pushes again any waiting job it does not remember, so an id lost from Redis (a
/// flush, a restart, a claimer that died between pop and claim) is pushed again once
/// the list lengths show it gone. An id pushed twice is claimed once.
public struct Promoter: Service {
    let store: QueueStore
    let dispatch: RedisDispatch
    let wake: WakeSignal
    let configuration: DaemonConfiguration
    let stats: DaemonStats
    let logger: Logger
    /// This daemon's row in `queue.listeners`; nil runs without the wake-up protocol
    /// (then inserts never notify for it, and it finds jobs by polling).
    let daemonID: String?
    /// The fault suite's switches; nil (production): no lookup on the loop's path.
    let testFaults: TestFaults?
    /// What this promoter pushed and has not seen leave the lists, and whether it is
    /// the elected one; shared by the loop and `promoteOnce`.
    let memory: PromoterMemory

    public init(
        store: QueueStore, dispatch: RedisDispatch, wake: WakeSignal,
        configuration: DaemonConfiguration, stats: DaemonStats, logger: Logger, daemonID: String? = nil,
        testFaults: TestFaults? = nil
    ) {
        self.testFaults = testFaults
        self.memory = PromoterMemory(cap: 2 * configuration.redisHighWater)
        self.daemonID = daemonID
        self.store = store
        self.dispatch = dispatch
        self.wake = wake
        self.configuration = configuration
        self.stats = stats
        self.logger = logger
    }

    public func run() async throws {
        let loop = ResilientLoop(name: "promoter", logger: logger, stats: stats)
        await cancelWhenGracefulShutdown {
            // Lanes whose last promotion found nothing more due. A wake that only says
            // a worker popped cannot have made anything due, so those lanes are not
            // asked again until a NOTIFY, a timeout, another signal, or
            // `gate.fullAskInterval` (inserts do not notify while this promoter is busy).
            var drained: Set<JobPriority> = []
            var poppedOnly = false
            // End of the current idle wait; pops do not move due times, so they do
            // not need a new due-time query either.
            var idleUntil: ContinuousClock.Instant?
            // The wake-up protocol's state (Migrations/queue/0010_queue_wakeup.sql).
            var gate = PromoterIdleGate(pollInterval: configuration.pollInterval)
            await loop.run {
                if let testFaults { await testFaults.waitWhilePromoterWedged() }
                do {
                    try await cycle(
                        gate: &gate, drained: &drained, poppedOnly: &poppedOnly, idleUntil: &idleUntil)
                } catch {
                    // The row may say anything now (the statement may or may not have
                    // committed, the server may have restarted and emptied the table):
                    // the next idle transition writes it again.
                    gate.becameBusy()
                    idleUntil = nil
                    throw error
                }
            }
        }
        if let daemonID {
            // Inserts need not notify for this daemon any more.
            _ = try? await store.removeListener(daemonID: daemonID)
        }
        await store.close()
    }

    /// One turn of the loop: a pass, then go again, wait for pops, or go idle.
    private func cycle(
        gate: inout PromoterIdleGate, drained: inout Set<JobPriority>, poppedOnly: inout Bool,
        idleUntil: inout ContinuousClock.Instant?
    ) async throws {
        var marking = daemonID
        if daemonID != nil, gate.recheckDue(now: .now) {
            // Settling: the lock first, then the pass in a later statement (a fresh
            // snapshot), so a free lock means that pass sees every insert that read "busy".
            gate.lockTried(acquired: try await store.tryWakeLock(), now: .now)
            marking = nil
            poppedOnly = false
        }
        let skipping = gate.maySkipDrained(poppedOnly: poppedOnly, now: .now)
        let outcome = try await pass(skipping: skipping ? drained : [], markingBusy: marking)
        if !outcome.elected {
            stats.beat("promoter")  // standing by is progress: the watchdog wants this loop alive
            try await standBy(gate: &gate, entered: outcome.enteredStandby)
            drained = []
            poppedOnly = false
            idleUntil = nil
            return
        }
        if !skipping { gate.askedAll(now: .now) }
        if outcome.ranPromote && marking != nil { gate.becameBusy() }
        drained = outcome.drained.union(skipping ? drained.subtracting(outcome.asked) : [])
        stats.beat("promoter")
        if outcome.saturated {  // more is due: go again at once
            poppedOnly = false
            idleUntil = nil
            return
        }
        if outcome.listsFull {
            // Workers are busy on what Redis holds. The pools signal after a pop
            // that leaves a list below its mark (or a blocking pop), so a list is
            // refilled as soon as it drains below it; the timeout covers pops by
            // other daemons. No due-time query: it would
            // only say "now" while the lists are full.
            poppedOnly = await wake.wait(timeout: .milliseconds(50)) == .popped
            idleUntil = nil
            return
        }
        if daemonID != nil, let linger = gate.linger(afterPromoting: outcome.promoted, since: outcome.sincePreviousRead) {
            // Jobs are arriving: look again shortly (all lanes) rather than go idle and
            // have every further insert send a NOTIFY.
            if linger > .zero { try await Task.sleep(for: linger) }
            poppedOnly = false
            idleUntil = nil
            return
        }
        if let daemonID, gate.step(now: .now) == .announce {
            // About to sleep: say so, then look once more (see PromoterIdleGate).
            let announced = try await store.announceIdle(daemonID: daemonID, excluding: memory.excluded())
            gate.lockTried(acquired: announced.locked, now: .now)
            idleUntil = .now + idleSleep(untilNextDue: announced.secondsUntilNextDue)
            let confirm = try await pass(markingBusy: nil)
            gate.askedAll(now: .now)
            drained = confirm.drained
            if confirm.saturated || confirm.listsFull || !confirm.elected {
                poppedOnly = false
                return
            }
        }
        if idleUntil == nil {
            idleUntil = .now + idleSleep(untilNextDue: try await store.secondsUntilNextDue(excluding: memory.excluded()))
        }
        var timeout = ContinuousClock.now.duration(to: idleUntil ?? .now)
        if daemonID != nil {
            switch gate.step(now: .now) {
            case .wait(let left?): timeout = min(timeout, left)  // settling: re-check the lock soon
            case .recheck: return  // settling and the re-check is due: the next turn runs it
            case .wait(nil), .announce: break
            }
        }
        let reasons = await wake.wait(timeout: timeout)
        poppedOnly = reasons == .popped
        // A settling re-check's short timeout keeps the idle deadline.
        if reasons.contains(.general) || ContinuousClock.now >= (idleUntil ?? .now) { idleUntil = nil }
    }

    /// How long an idle promoter sleeps before it reads again: until the next
    /// scheduled job is due (`secondsUntilNextDue`, from PostgreSQL's clock; nil when
    /// none waits), at least 1 ms and at most one poll interval.
    private func idleSleep(untilNextDue seconds: Double?) -> Duration {
        let poll = configuration.pollInterval
        guard let seconds else { return poll }
        return min(poll, max(.milliseconds(1), TotalConversion.duration(seconds: seconds)))
    }

    /// Another daemon's promoter holds the lock: no listener row that would make
    /// inserts notify this daemon, no memory, and one more try after a poll interval
    /// (pops and NOTIFYs wake the loop but do not shorten that).
    private func standBy(gate: inout PromoterIdleGate, entered: Bool) async throws {
        if entered {
            logger.info("promoter standing by: another daemon's promoter holds the lock")
            if let daemonID { try await store.removeListener(daemonID: daemonID) }
        }
        if try await store.deposeStalePromoter(staleAfter: Self.staleAfter(configuration)) > 0 {
            logger.warning("ended the session of a silent elected promoter; trying the lock again")
            return
        }
        gate = PromoterIdleGate(pollInterval: configuration.pollInterval)
        let deadline = ContinuousClock.now + configuration.pollInterval
        while !Task.isCancelled {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return }
            await wake.wait(timeout: left)
        }
    }

    /// Hysteresis: a list is topped up only once it has drained below this length
    /// (half its high-water mark), and then filled in one statement. The pools wake
    /// the promoter when a pop leaves a list below it.
    public static func refillMark(_ configuration: DaemonConfiguration) -> Int {
        max(1, configuration.redisHighWater / 2)
    }

    /// How long the elected promoter's session may stay idle before a standing-by one
    /// ends it: well past its longest silence (one poll interval between reads).
    static func staleAfter(_ configuration: DaemonConfiguration) -> Duration {
        max(.seconds(3), configuration.pollInterval * 5)
    }

    struct PassOutcome {
        /// This promoter holds the promoter lock (or did at its last read of due jobs).
        var elected = true
        /// The read found the lock held elsewhere, and this promoter was not standing by.
        var enteredStandby = false
        var promoted = 0
        /// The time from this promoter's read before to this pass's read of due jobs:
        /// the jobs it found became due within it (nil: no read before, or none now).
        var sincePreviousRead: Duration?
        /// A priority hit its batch limit (there may be more due right now), or a read
        /// after the highest key pushed came up short (what lies behind it is unknown).
        var saturated = false
        /// Some list is above its refill mark: check again as workers drain it.
        var listsFull = false
        /// Lanes the read of due jobs looked at …
        var asked: Set<JobPriority> = []
        /// … and those of them where it found fewer due jobs than it could take.
        var drained: Set<JobPriority> = []
        /// The read of due jobs ran (so a busy mark it carried committed).
        var ranPromote = false
    }

    /// Runs one pass and returns how many ids it pushed (tests drive it directly).
    public func promoteOnce() async throws -> Int { try await pass().promoted }

    /// Whether this promoter held the promoter lock at its last read (tests).
    public var isElected: Bool { memory.isElected }

    /// - Parameter skipping: lanes not to look at this time (known to have nothing due).
    /// - Parameter markingBusy: the daemon id whose listener row the read sets busy.
    func pass(skipping: Set<JobPriority> = [], markingBusy: String? = nil) async throws -> PassOutcome {
        let lengths = try await dispatch.lengths()
        // Before any push that follows: the lengths say which earlier pushes left.
        memory.observe(lengths: lengths, now: .now)
        var limits: [JobPriority: Int] = [:]
        var outcome = PassOutcome()
        let refillBelow = Self.refillMark(configuration)
        for priority in JobPriority.allCases {
            let length = lengths[priority] ?? 0
            let room = configuration.redisHighWater - length
            let wanted = length < refillBelow && !skipping.contains(priority)
            limits[priority] = wanted ? max(0, min(configuration.promoteBatch, room)) : 0
            if length >= refillBelow { outcome.listsFull = true }
        }
        // A promoter standing by reads even with nothing to take: the read tries the lock.
        // An elected one reads at least once per poll interval, lists full or not: a
        // session silent for long is taken for a frozen daemon's (`staleAfter`).
        let keepAlive = memory.sinceRead(now: .now).map { $0 >= configuration.pollInterval } ?? true
        guard limits.values.contains(where: { $0 > 0 }) || !memory.isElected || keepAlive else { return outcome }
        let reads = memory.reads(now: .now)
        let due = try await store.dueJobs(
            limits: limits, excluding: reads.excluding, after: reads.after, markingBusy: markingBusy)
        let readAt = ContinuousClock.now
        outcome.sincePreviousRead = memory.sinceRead(now: readAt)
        memory.read(at: readAt)
        guard due.elected else {
            outcome.enteredStandby = memory.standBy()
            outcome.elected = false
            outcome.listsFull = false
            return outcome
        }
        if memory.elect(newly: due.newlyElected) {
            logger.notice("promoter elected: this daemon pushes the queue's due jobs to redis")
        }
        outcome.ranPromote = true
        // A new session's first read left out ids remembered from the old one: this
        // batch may miss some due jobs, which the next pass finds.
        let promoted = due.jobs
        var counts: [JobPriority: Int] = [:]
        for item in promoted { counts[item.priority, default: 0] += 1 }
        for priority in JobPriority.allCases where (limits[priority] ?? 0) > 0 {
            outcome.asked.insert(priority)
            guard counts[priority, default: 0] < (limits[priority] ?? 0) else { continue }
            if reads.after[priority] == nil {
                outcome.drained.insert(priority)
            } else {
                // Read after the highest key pushed and came up short: that says nothing
                // of jobs due behind the key. Go again at once; that read starts at the
                // lane's start (`PushedIDs.readStart`) and says whether it is drained.
                outcome.saturated = true
            }
        }
        memory.read(limits: limits, after: reads.after, found: counts, now: readAt)
        guard !promoted.isEmpty else { return outcome }
        // Not remembered if the push fails: whatever reached Redis is a duplicate later.
        try await dispatch.push(promoted)
        memory.pushed(promoted, highest: due.highest)
        outcome.promoted = promoted.count
        for priority in JobPriority.allCases where counts[priority, default: 0] >= (limits[priority] ?? 0) && (limits[priority] ?? 0) > 0 {
            outcome.saturated = true
        }
        stats.update { $0.promoted += promoted.count }
        logger.debug("pushed due jobs", metadata: [LogKey.count: "\(promoted.count)"])
        return outcome
    }
}

/// The promoter's memory of its pushes, per lane, and its election (see `PushedIDs`).
final class PromoterMemory: Sendable {
    /// How long an id that left its list stays left out of the reads of due jobs: a
    /// worker's claim follows its pop within this, so the job is not pushed again
    /// while that claim is in flight.
    static let grace = Duration.milliseconds(100)

    /// While reads keep filling their batch, each lane is still read from its start
    /// (passing over what was pushed) at least this often, so a job that became due
    /// behind the lane's highest pushed key waits at most about this long
    /// (`PushedIDs.readStart`).
    static let fullReadInterval = Duration.milliseconds(100)

    private struct State {
        var lanes: [JobPriority: PushedIDs]
        var elected = false
        var standingBy = false
        var lastRead: ContinuousClock.Instant?
    }

    private let state: Mutex<State>

    init(cap: Int) {
        var lanes: [JobPriority: PushedIDs] = [:]
        for priority in JobPriority.allCases {
            lanes[priority] = PushedIDs(grace: Self.grace, cap: cap, fullReadInterval: Self.fullReadInterval)
        }
        state = Mutex(State(lanes: lanes))
    }

    var isElected: Bool { state.withLock { $0.elected } }

    func read(at now: ContinuousClock.Instant) { state.withLock { $0.lastRead = now } }

    /// The time since the last read of due jobs (nil before the first).
    func sinceRead(now: ContinuousClock.Instant) -> Duration? {
        state.withLock { state in state.lastRead.map { $0.duration(to: now) } }
    }

    func observe(lengths: [JobPriority: Int], now: ContinuousClock.Instant) {
        state.withLock { state in
            for priority in JobPriority.allCases { state.lanes[priority]?.observe(length: lengths[priority] ?? 0, now: now) }
        }
    }

    /// Every id remembered, per lane: what a read from a lane's start leaves out.
    func excluded() -> [JobPriority: [JobID]] {
        state.withLock { state in state.lanes.mapValues { Array($0.remembered) } }
    }

    /// How the next read of due jobs reads each lane: after a key, leaving nothing
    /// out, or from its start, leaving out what is remembered.
    func reads(now: ContinuousClock.Instant) -> (after: [JobPriority: DueKey], excluding: [JobPriority: [JobID]]) {
        state.withLock { state in
            var after: [JobPriority: DueKey] = [:]
            var excluding: [JobPriority: [JobID]] = [:]
            for (priority, lane) in state.lanes {
                if let start = lane.readStart(now: now) {
                    after[priority] = start
                } else {
                    excluding[priority] = Array(lane.remembered)
                }
            }
            return (after, excluding)
        }
    }

    /// What a read of due jobs found in each lane it could take from.
    func read(
        limits: [JobPriority: Int], after: [JobPriority: DueKey], found: [JobPriority: Int], now: ContinuousClock.Instant
    ) {
        state.withLock { state in
            for priority in JobPriority.allCases {
                state.lanes[priority]?.read(
                    from: after[priority], limit: limits[priority] ?? 0, found: found[priority] ?? 0, now: now)
            }
        }
    }

    func pushed(_ ids: [(id: JobID, priority: JobPriority)], highest: [JobPriority: DueKey] = [:]) {
        state.withLock { state in
            for priority in JobPriority.allCases {
                let lane = ids.filter { $0.priority == priority }.map(\.id)
                if !lane.isEmpty { state.lanes[priority]?.pushed(lane, highest: highest[priority]) }
            }
        }
    }

    /// The read found this session holding the lock. Returns true when it was not
    /// elected before (the log says so once); `newly` (a new session) forgets every push.
    func elect(newly: Bool) -> Bool {
        state.withLock { state in
            let was = state.elected
            if newly || !was {
                for priority in JobPriority.allCases { state.lanes[priority]?.forgetAll() }
            }
            state.elected = true
            state.standingBy = false
            return !was
        }
    }

    /// Another session holds the lock. Returns true when this promoter was not
    /// standing by already.
    func standBy() -> Bool {
        state.withLock { state in
            for priority in JobPriority.allCases { state.lanes[priority]?.forgetAll() }
            state.elected = false
            defer { state.standingBy = true }
            return !state.standingBy
        }
    }
}
