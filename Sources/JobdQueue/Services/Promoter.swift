import JobdCore
import JobdPostgres
import JobdRedis
import Logging
import ServiceLifecycle

/// Moves due jobs from Postgres to the Redis lists, by priority.
///
/// One pass: read the three list lengths; for each list that has drained below half
/// its high-water mark, promote up to `high water − length` due jobs, all priorities
/// in one statement (`FOR UPDATE SKIP LOCKED`, so any number of
/// daemons can promote at once without taking the same row), then push them in one
/// pipeline. Redis thus holds only what workers will take soon, and a newly due
/// high-priority job is never buried behind a deep low list.
///
/// A crash between the commit and the push leaves rows `promoted` with nothing in
/// Redis; the reconciler returns them to `available` after `promotedTimeout`.
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
    /// Opened by the maintenance's first Redis epoch check; the first pass waits for
    /// it (up to `startGateLimit`). Nil: no wait.
    let startGate: StartGate?
    static let startGateLimit = Duration.seconds(10)
    /// The fault suite's switches; nil (production): no lookup on the loop's path.
    let testFaults: TestFaults?

    public init(
        store: QueueStore, dispatch: RedisDispatch, wake: WakeSignal,
        configuration: DaemonConfiguration, stats: DaemonStats, logger: Logger, daemonID: String? = nil,
        startGate: StartGate? = nil, testFaults: TestFaults? = nil
    ) {
        self.testFaults = testFaults
        self.startGate = startGate
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
            await startGate?.wait(upTo: Self.startGateLimit)
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
            // Workers are busy on what Redis holds. The pools signal after every
            // pop, so a list is refilled as soon as it drains below its mark; the
            // timeout covers pops by other daemons. No due-time query: it would
            // only say "now" while the lists are full.
            poppedOnly = await wake.wait(timeout: 0.05) == .popped
            idleUntil = nil
            return
        }
        if daemonID != nil, let linger = gate.lingerSeconds(afterPromoting: outcome.promoted) {
            // Jobs are arriving: look again shortly (all lanes) rather than go idle and
            // have every further insert send a NOTIFY.
            try await Task.sleep(for: .microseconds(TotalConversion.microseconds(linger)))
            poppedOnly = false
            idleUntil = nil
            return
        }
        if let daemonID, gate.step(now: .now) == .announce {
            // About to sleep: say so, then look once more (see PromoterIdleGate).
            let announced = try await store.announceIdle(daemonID: daemonID)
            gate.lockTried(acquired: announced.locked, now: .now)
            let sleep = min(configuration.pollInterval, max(0.001, announced.secondsUntilNextDue ?? configuration.pollInterval))
            idleUntil = .now + .microseconds(TotalConversion.microseconds(sleep))
            let confirm = try await pass(markingBusy: nil)
            gate.askedAll(now: .now)
            drained = confirm.drained
            if confirm.saturated || confirm.listsFull {
                poppedOnly = false
                return
            }
        }
        if idleUntil == nil {
            let nextDue = try await store.secondsUntilNextDue()
            let sleep = min(configuration.pollInterval, max(0.001, nextDue ?? configuration.pollInterval))
            idleUntil = .now + .microseconds(TotalConversion.microseconds(sleep))
        }
        var timeout = ContinuousClock.now.duration(to: idleUntil ?? .now).seconds
        if daemonID != nil {
            switch gate.step(now: .now) {
            case .wait(let seconds?): timeout = min(timeout, seconds)  // settling: re-check the lock soon
            case .recheck: return  // settling and the re-check is due: the next turn runs it
            case .wait(nil), .announce: break
            }
        }
        let reasons = await wake.wait(timeout: max(0, timeout))
        poppedOnly = reasons == .popped
        // A settling re-check's short timeout keeps the idle deadline.
        if reasons.contains(.general) || ContinuousClock.now >= (idleUntil ?? .now) { idleUntil = nil }
    }

    struct PassOutcome {
        var promoted = 0
        /// A priority hit its batch limit: there may be more due right now.
        var saturated = false
        /// Some list is above its refill mark: check again as workers drain it.
        var listsFull = false
        /// Lanes the promote statement looked at …
        var asked: Set<JobPriority> = []
        /// … and those of them where it found fewer due jobs than it could take.
        var drained: Set<JobPriority> = []
        /// The promote statement ran (so a busy mark it carried committed).
        var ranPromote = false
    }

    /// Runs one pass and returns how many jobs it promoted (tests drive it directly).
    public func promoteOnce() async throws -> Int { try await pass().promoted }

    /// - Parameter skipping: lanes not to look at this time (known to have nothing due).
    /// - Parameter markingBusy: the daemon id whose listener row the promote statement sets busy.
    func pass(skipping: Set<JobPriority> = [], markingBusy: String? = nil) async throws -> PassOutcome {
        let lengths = try await dispatch.lengths()
        var limits: [JobPriority: Int] = [:]
        var outcome = PassOutcome()
        // Hysteresis: a list is topped up only once it has drained below half its
        // high-water mark, and then filled in one statement. Topping up every few
        // ids instead cost a promote statement (and a commit) per ~40 jobs.
        let refillBelow = max(1, configuration.redisHighWater / 2)
        for priority in JobPriority.allCases {
            let length = lengths[priority] ?? 0
            let room = configuration.redisHighWater - length
            let wanted = length < refillBelow && !skipping.contains(priority)
            limits[priority] = wanted ? max(0, min(configuration.promoteBatch, room)) : 0
            if length >= refillBelow { outcome.listsFull = true }
        }
        guard limits.values.contains(where: { $0 > 0 }) else { return outcome }
        let promoted = try await store.promote(limits: limits, markingBusy: markingBusy)
        outcome.ranPromote = true
        var counts: [JobPriority: Int] = [:]
        for item in promoted { counts[item.priority, default: 0] += 1 }
        for priority in JobPriority.allCases where (limits[priority] ?? 0) > 0 {
            outcome.asked.insert(priority)
            if counts[priority, default: 0] < (limits[priority] ?? 0) { outcome.drained.insert(priority) }
        }
        guard !promoted.isEmpty else { return outcome }
        do {
            try await dispatch.push(promoted)
        } catch {
            // The rows are committed as promoted but Redis never got them: hand them
            // back now rather than waiting for the reconciler's timeout.
            _ = try? await store.unpromote(ids: promoted.map(\.id))
            throw error
        }
        outcome.promoted = promoted.count
        for priority in JobPriority.allCases where counts[priority, default: 0] >= (limits[priority] ?? 0) && (limits[priority] ?? 0) > 0 {
            outcome.saturated = true
        }
        stats.update { $0.promoted += promoted.count }
        logger.debug("promoted jobs", metadata: [LogKey.count: "\(promoted.count)"])
        return outcome
    }
}
