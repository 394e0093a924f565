import JobdCore
import JobdPostgres
import JobdRedis
import Logging
import ServiceLifecycle
import Synchronization

/// A pool of worker slots serving one or more priority lists.
///
/// The fetcher reserves the free slots, pops at most as many ids (non-blocking
/// `LPOP count`, or a `BLMPOP … COUNT` with a short timeout when Redis is empty), claims them
/// all in one statement, and starts a task per claimed job. When the blocking pop
/// times out (the lists stayed empty for 0.5 s), it claims due jobs straight from
/// PostgreSQL instead (`QueueStore.claimDue`), so jobs run without a promoter. Completions go to the
/// `CompletionBatcher`; a heartbeat extends the leases of everything still running.
///
/// Claim pipelines: a claim commits without waiting for the WAL flush (fenced by its
/// lease token, see `QueueStore.claim`), so it is one round trip and one statement.
/// With one pipeline (the default), slots freed while a claim is in flight wait for
/// it to return and are then claimed together, in one statement. With more
/// (`JOBD_CLAIM_PIPELINES`), each has its own Redis and Postgres connection, and while
/// one claim is in flight another claims the slots freed meanwhile: a freed slot
/// waits less, but the claims are smaller and more of them, each a statement and a
/// few thread hand-offs (docs/performance.md, *One claim pipeline*). Each job is
/// still claimed only into a reserved slot.
///
/// Graceful shutdown (SIGTERM): stop fetching at once (also when every slot is busy
/// and the fetch loop waits for one), let running jobs finish for up to
/// `shutdownTimeout`, then cancel what is left and release it to `available` (a
/// release is not a rescue). The pools of one daemon share a `PoolShutdown`: the
/// service group tells them one after the other, but the first one told stops them
/// all, and all drain against the same deadline.
///
/// A claimed job rescued `max(1, JOBD_MAX_RESCUES - 1)` times is a suspect: its
/// daemon died under it that often, and it may be what killed it. Suspects run
/// alone: the pool waits until nothing else runs, records the solo run in the
/// ledger, runs the suspect, and fetches again only when it is done. From there on
/// only a rescue of such a solo attempt counts towards `JOBD_MAX_RESCUES`, so when
/// a culprit kills the process again, it alone reaches the dead letters (poison);
/// bystanders, and suspects still waiting for their turn, never do. A job rescued
/// once (a one-off crash, a frozen daemon) runs again at full parallelism.
public struct WorkerPool: Service {
    public let name: String
    let lanes: [JobPriority]
    let slots: WorkerSlots
    let claimStore: QueueStore
    let completionStore: QueueStore
    let dispatch: RedisDispatch
    let handlers: HandlerRegistry
    let configuration: DaemonConfiguration
    let daemonID: String
    let stats: DaemonStats
    let logger: Logger
    let metrics: JobMetrics
    /// Told after a pop that left a list below the promoter's refill mark (and after
    /// every blocking pop), so the promoter refills a list as soon as it runs low.
    let promoterWake: WakeSignal?
    /// The heartbeat key of this pool's loops, built once rather than per job.
    let beatKey: String
    /// `Promoter.refillMark`: a pop that leaves a list below it wakes the promoter.
    let refillMark: Int
    /// (claim store, Redis) of every claim pipeline; the first is `claimStore`, `dispatch`.
    let pipelines: [ClaimPipeline]
    /// Shared by the daemon's pools: one stop and one drain deadline for all of them.
    let shutdown: PoolShutdown

    /// Claim pipelines for a pool of at most `slots` slots when `configured` are asked
    /// for (`DaemonConfiguration.claimPipelines`): at least one, and no more than the
    /// pool has slots, as every claim reserves at least one slot before it pops.
    public static func claimPipelines(forSlots slots: Int, configured: Int) -> Int {
        max(1, min(configured, slots))
    }

    public init(
        name: String, lanes: [JobPriority], slots: Int, claimStore: QueueStore, completionStore: QueueStore,
        dispatch: RedisDispatch, handlers: HandlerRegistry, configuration: DaemonConfiguration,
        daemonID: String, stats: DaemonStats, logger: Logger,
        promoterWake: WakeSignal? = nil, shutdown: PoolShutdown = PoolShutdown(), extraPipelines: [ClaimPipeline] = []
    ) {
        self.shutdown = shutdown
        self.promoterWake = promoterWake
        self.pipelines = [ClaimPipeline(store: claimStore, dispatch: dispatch)] + extraPipelines
        self.beatKey = "workers:\(name)"
        self.refillMark = Promoter.refillMark(configuration)
        self.name = name
        self.lanes = lanes
        self.slots = WorkerSlots(capacity: slots)
        self.claimStore = claimStore
        self.completionStore = completionStore
        self.dispatch = dispatch
        self.handlers = handlers
        self.configuration = configuration
        self.daemonID = daemonID
        self.stats = stats
        self.logger = logger
        self.metrics = JobMetrics(knownKinds: handlers.kinds)
    }

    public var busy: Int { slots.busy }
    public var capacity: Int { slots.capacity }

    public func run() async throws {
        let batcher = CompletionBatcher(store: completionStore, daemon: daemonID, stats: stats, logger: logger)
        let fetching = StopFlag()
        let suspects = SuspectQueue()
        // Stopping wakes the fetch loop wherever it waits on the slots (for a free
        // slot, for a suspect's turn), so a SIGTERM with every slot busy stops
        // fetching at once instead of after the next job ends.
        let stopFetching: @Sendable () -> Void = { [slots] in
            fetching.stop()
            slots.wakeWaiters()
        }
        shutdown.enlist(stopFetching)
        await withTaskGroup(of: Void.self) { leases in
            leases.addTask { await heartbeatLeases(batcher: batcher, suspects: suspects) }
            async let writing: Void = batcher.run()

            // Discarding: a finished job's task is freed at once. A plain task group keeps
            // every finished child until it is awaited, so its memory would grow with each job.
            await withDiscardingTaskGroup { workers in
                await withGracefulShutdownHandler {
                    await fetchLoop(workers: &workers, batcher: batcher, suspects: suspects, stop: fetching)
                } onGracefulShutdown: {
                    shutdown.begin(timeout: configuration.shutdownTimeout)
                }
                stopFetching()
                // The drain's deadline: `shutdownTimeout` from the first pool told to stop
                // (every pool of the daemon stops then), or from now when the loop ended
                // for another reason (cancellation).
                let deadline = shutdown.begin(timeout: configuration.shutdownTimeout)
                // Claims in flight start their jobs (or give their slots back) first, as
                // the single fetch loop's last claim did before it returned. A claim that
                // popped after the stop pushes its ids back instead of claiming them.
                await slots.waitForClaims()
                // Suspects still waiting for their turn never started: hand them back.
                for job in suspects.takeAll() {
                    batcher.submit(AttemptCompletion(
                        fence: job.fence, outcome: .release, errorCode: "interrupted",
                        errorMessage: "released unstarted by a shutdown (it was waiting to run alone)",
                        queueWaitSeconds: job.queueWaitSeconds))
                }
                // Drain: running jobs get until the deadline to finish.
                if slots.busy > 0 {
                    logger.notice("draining in-flight jobs", metadata: [
                        LogKey.service: "\(name)", LogKey.count: "\(slots.busy)",
                    ])
                }
                let drained = await slots.wait(until: { $0.running == 0 }, deadline: deadline)
                if !drained {
                    logger.warning("drain timed out; releasing unfinished jobs", metadata: [
                        LogKey.service: "\(name)", LogKey.count: "\(slots.busy)",
                    ])
                }
                // Cancelled jobs end `interrupted` and are released to `available`; a
                // claim resting after a failure (up to 10 s) ends its rest now.
                workers.cancelAll()
            }
            batcher.finish()
            await writing
            // Everything submitted is written: no lease is left to keep alive.
            leases.cancelAll()
        }
        for pipeline in pipelines {
            await pipeline.store.close()
            await pipeline.dispatch.connection.close()
        }
        await completionStore.close()
        // Stopped by the daemon's shared shutdown before the service group told this
        // pool: return only once it does (at once if it did), as a service that
        // returns unasked ends the whole group with an error.
        try? await gracefulShutdown()
    }

    // MARK: Fetching

    private func fetchLoop(
        workers: inout DiscardingTaskGroup, batcher: CompletionBatcher, suspects: SuspectQueue, stop: StopFlag
    ) async {
        var selector = PrioritySelector(mode: configuration.priorityMode, lanes: lanes)
        let idle = IdlePipelines(count: pipelines.count)
        while !stop.isStopped && !Task.isCancelled {
            if let suspect = suspects.first {
                // Alone: wait for everything else to finish, run it, wait for it.
                guard await waitUntilIdle(or: stop) else { return }
                guard let mine = await markSolo(suspect.job.fence, stop: stop) else { return }
                suspects.removeFirst()
                guard mine else {
                    logger.warning("lease lost before the rescued job could run alone; not run here", metadata: [
                        LogKey.jobID: "\(suspect.job.id)", LogKey.jobAttempt: "\(suspect.job.attempt)",
                    ])
                    continue
                }
                logger.notice("running a rescued job alone", metadata: [
                    LogKey.service: "\(name)", LogKey.jobID: "\(suspect.job.id)", LogKey.jobKind: "\(suspect.job.kind)",
                    LogKey.jobAttempt: "\(suspect.job.attempt)", "rescues": "\(suspect.job.rescues)",
                ])
                slots.occupy(suspect.job.fence)
                workers.addTask {
                    await execute(suspect.job, payloadPresent: suspect.payloadPresent, payloadBytes: suspect.payloadBytes, batcher: batcher)
                }
                guard await waitUntilIdle(or: stop) else { return }
                continue
            }
            let free = await slots.waitForFree(unless: { stop.isStopped })
            stats.beat(beatKey)
            guard free > 0, !stop.isStopped else { continue }
            // Backpressure: a slot is free once its handler returns, but the attempt is
            // not over until its completion is written. Claims commit without a flush
            // wait and can outrun the durable completions (a slow server, a long
            // snapshot); the unwritten ones would pile up, and with them the lease
            // heartbeat's statement, until it times out and leases expire. Claim again
            // only once the backlog is below the limit.
            if batcher.unwrittenCount >= maxUnwrittenCompletions {
                logger.debug("completions behind; claiming paused", metadata: [
                    LogKey.service: "\(name)", LogKey.count: "\(batcher.unwrittenCount)",
                ])
                await batcher.waitForBacklog(below: maxUnwrittenCompletions) {
                    stats.beat(beatKey)  // waiting for the batcher is progress, not a stall
                    return stop.isStopped || Task.isCancelled
                }
                continue
            }
            guard let pipeline = await idle.checkOut() else { return }  // cancelled
            // Slots freed while waiting for a pipeline join this claim.
            let reserved = stop.isStopped ? 0 : slots.reserveFree()
            guard reserved > 0 else {
                idle.checkIn(pipeline)
                continue
            }
            let order = selector.nextOrder()
            workers.addTask {
                await claimAndRun(
                    pipeline: pipeline, reserved: reserved, order: order, idle: idle, batcher: batcher, suspects: suspects,
                    stop: stop)
            }
        }
    }

    /// One claim on one pipeline, then its jobs, each in a task of its own. Suspects
    /// among them go to `suspects` instead, and their slots are given back: the fetch
    /// loop runs each alone once nothing else runs and no claim is in flight.
    private func claimAndRun(
        pipeline: Int, reserved: Int, order: [JobPriority], idle: IdlePipelines, batcher: CompletionBatcher,
        suspects: SuspectQueue, stop: StopFlag
    ) async {
        var jobs: [ClaimedAttempt]
        var reserved = reserved
        do {
            jobs = try await fetch(
                reserved: &reserved, order: order, on: pipelines[pipeline], stop: stop,
                isolation: pipelines[pipeline].store.connection)
            idle.recordSuccess()
        } catch {
            slots.settle(reserved: reserved, occupying: [])
            let unknown = error as? ClaimOutcomeUnknown
            let cause = unknown?.underlying ?? error
            if !(cause is CancellationError) && !Task.isCancelled {
                let failures = idle.recordFailure()
                if failures == 1 || failures % 10 == 0 {
                    var metadata: Logger.Metadata = [
                        LogKey.service: "\(name)", LogKey.error: "\(cause)", LogKey.count: "\(failures)",
                    ]
                    // Jobs this claim may have taken without hearing so: they run again
                    // elsewhere once their leases expire, and never here.
                    if let unknown { metadata[LogKey.unconfirmed] = "\(unknown.jobs)" }
                    logger.warning("fetch failed; retrying", metadata: metadata)
                }
                // The pipeline rests before its next claim; the others may go on.
                var generator = SystemRandomNumberGenerator()
                let delay = RetryBackoff(base: .milliseconds(100), maximum: .seconds(10)).delay(forAttempt: failures, using: &generator)
                try? await Task.sleep(for: delay)
            }
            idle.checkIn(pipeline)
            return
        }
        let suspectAt = max(1, configuration.maxRescues - 1)
        for job in jobs where job.job.rescues >= suspectAt { suspects.append(job) }
        jobs.removeAll { $0.job.rescues >= suspectAt }
        slots.settle(reserved: reserved, occupying: jobs.map(\.job.fence))
        idle.checkIn(pipeline)
        if jobs.count == 1, let job = jobs.first {
            await execute(job.job, payloadPresent: job.payloadPresent, payloadBytes: job.payloadBytes, batcher: batcher)
            return
        }
        await withDiscardingTaskGroup { group in
            for job in jobs {
                group.addTask { await execute(job.job, payloadPresent: job.payloadPresent, payloadBytes: job.payloadBytes, batcher: batcher) }
            }
        }
    }

    /// Completions a pool may have submitted and not yet written before it stops
    /// claiming: several batches' worth at full load, small enough that the lease
    /// heartbeat over them stays a few short statements.
    public var maxUnwrittenCompletions: Int { max(4 * slots.capacity, 512) }

    /// Records the solo run before it starts (retrying through an outage). nil when
    /// the pool was told to stop first; false when the lease was lost meanwhile.
    private func markSolo(_ fence: AttemptFence, stop: StopFlag) async -> Bool? {
        var failures = 0
        var generator = SystemRandomNumberGenerator()
        let backoff = RetryBackoff(base: .milliseconds(100), maximum: .seconds(5))
        while !stop.isStopped && !Task.isCancelled {
            do {
                return try await claimStore.markSolo(fence, daemon: daemonID)
            } catch {
                failures += 1
                try? await Task.sleep(for: backoff.delay(forAttempt: failures, using: &generator))
            }
        }
        return nil
    }

    /// Waits until no slot is busy and no claim is in flight (a claim in flight would
    /// start jobs beside a suspect); false when the pool was told to stop first.
    private func waitUntilIdle(or stop: StopFlag) async -> Bool {
        await slots.waitUntilUnoccupied(unless: { stop.isStopped })
    }

    /// Pops up to `reserved` ids and claims them. The slots reserved beyond what was
    /// popped are given back before the claim (`reserved` is lowered to match), so
    /// the other pipeline can take new arrivals while this claim is in flight.
    ///
    /// Runs on the pipeline's Postgres connection (`isolation`), and the pop and the
    /// claim run on their caller's executor: when the pipeline's Redis connection
    /// shares that thread (`JobDaemon`), pop then claim is one hand-off there and one
    /// back, not two of each.
    private func fetch(
        reserved: inout Int, order: [JobPriority], on pipeline: ClaimPipeline, stop: StopFlag,
        isolation: isolated PostgresConnection
    ) async throws -> [ClaimedAttempt] {
        let dispatch = pipeline.dispatch
        let max = reserved
        let taken = try await dispatch.take(order: order, max: max)
        var popped = taken.ids
        // The promoter refills a list only below its mark: a pop that left every list
        // it took from at or above it needs no pass (a wake costs the promoter a Redis
        // round trip and the pool's claim a hop, per pop).
        var wakePromoter = taken.lengthsAfter.values.contains { $0 < refillMark }
        if popped.isEmpty, pipeline.directBacklog.isSet, !stop.isStopped {
            // The last direct claim filled its reservation: more may be due, and no
            // promoter is feeding the lists. Claim again before any blocking wait.
            let direct = try await claimDirect(max: max, order: order, on: pipeline)
            if !direct.isEmpty { return direct }
        }
        if popped.isEmpty {
            // Nothing waiting: block briefly so new work starts within a round trip,
            // and come back often enough to notice a shutdown. The ids that end the
            // wait come with it (up to the reserved slots, from the first list in
            // `order` that has any): no second pop before the claim.
            popped = try await dispatch.blockingPop(order: order, max: max, timeout: .milliseconds(500))
            wakePromoter = true
            if popped.isEmpty {
                // The lists stayed empty for a whole blocking wait, so no promoter is
                // feeding them (it stands by with the elected one gone quiet, is
                // stopped, or the lists were flushed): claim due jobs straight from
                // PostgreSQL. Not done before the blocking wait: while a promoter
                // feeds the lists, that would add a statement to every fetch that
                // finds them momentarily empty.
                guard !stop.isStopped else { return [] }
                return try await claimDirect(max: max, order: order, on: pipeline)
            }
        }
        if wakePromoter { promoterWake?.signal(.popped) }
        if stop.isStopped {
            // Told to stop while popping (a blocking pop lasts up to 0.5 s): claim
            // nothing new; the ids go back to the front of their lists.
            try? await dispatch.pushFront(popped)
            slots.settle(reserved: reserved, occupying: [])
            reserved = 0
            return []
        }
        if popped.count < reserved {
            slots.settle(reserved: reserved - popped.count, occupying: [])
            reserved = popped.count
        }
        let ids = popped.map(\.id)
        do {
            return try await pipeline.store.claim(
                ids: ids, daemon: daemonID, lease: configuration.lease, maxPayloadBytes: configuration.maxPayloadBytes)
        } catch {
            // We may or may not have claimed them. Put the ids back: a claim takes only
            // waiting jobs, so an id that was claimed after all is skipped later (and
            // rescued once its lease expires, never run here).
            try? await dispatch.pushFront(popped)
            throw ClaimOutcomeUnknown(jobs: ids.count, underlying: error)
        }
    }

    /// How long a job must have been due before a direct claim takes it: a promoter
    /// that feeds the lists pushes a due job within milliseconds of its NOTIFY, so a
    /// job due this long is not being pushed, and a direct claim does not race a
    /// working promoter (whose pushes it would turn into refused duplicates).
    static let directClaimDueFor: Duration = .seconds(2)

    /// Claims up to `max` due jobs straight from PostgreSQL (`QueueStore.claimDue`),
    /// and notes on the pipeline whether that filled the reservation (then the next
    /// fetch that finds the lists empty claims directly again before blocking).
    private func claimDirect(max: Int, order: [JobPriority], on pipeline: ClaimPipeline) async throws -> [ClaimedAttempt] {
        let direct: [ClaimedAttempt]
        do {
            direct = try await pipeline.store.claimDue(
                order: order, max: max, dueFor: Self.directClaimDueFor, daemon: daemonID, lease: configuration.lease,
                maxPayloadBytes: configuration.maxPayloadBytes)
        } catch {
            pipeline.directBacklog.set(false)
            // As for popped ids: the server may have committed the claim, taking up to
            // `max` jobs that are rescued once their leases expire, never run here.
            throw ClaimOutcomeUnknown(jobs: max, underlying: error)
        }
        pipeline.directBacklog.set(direct.count >= max)
        if !direct.isEmpty { stats.update { $0.claimedDirect += direct.count } }
        return direct
    }

    // MARK: Running one attempt

    private func execute(_ job: ClaimedJob, payloadPresent: Bool, payloadBytes: Int, batcher: CompletionBatcher) async {
        defer {
            slots.release(job.fence)
            stats.beat(beatKey)
        }
        stats.update { $0.started += 1 }
        metrics.attemptStarted(job)
        let started = ContinuousClock.now
        let result = await attempt(job, payloadPresent: payloadPresent, payloadBytes: payloadBytes)
        let elapsed = started.duration(to: .now)
        let runSeconds = elapsed.seconds
        var generator = SystemRandomNumberGenerator()
        let policy = FailurePolicy(backoff: configuration.backoff)
        let completion = policy.completion(for: job, result: result, runSeconds: runSeconds, using: &generator)
        metrics.attemptFinished(job, outcome: completion.outcome, runSeconds: runSeconds)
        switch completion.outcome {
        case .completed:
            if logger.logLevel <= .debug {
                logger.forAttempt(of: job).debug("job completed", metadata: [LogKey.durationMs: "\(TotalConversion.milliseconds(runSeconds))"])
            }
        case .snooze:
            let snooze: JobSnooze? = if case .snoozed(let snooze) = result { snooze } else { nil }
            logger.forAttempt(of: job).info("job snoozed; will run again", metadata: [
                LogKey.errorCode: "\(snooze?.code ?? "snoozed")", LogKey.error: "\(snooze?.message ?? "run again later")",
                // A snooze keeping its place is due at once (before its last due time).
                LogKey.retryIn: "\(String(format2: completion.keepsPlace ? 0 : completion.delay.seconds))",
            ])
        case .retry:
            logger.forAttempt(of: job).info("job failed; will retry", metadata: [
                LogKey.errorCode: "\(completion.errorCode ?? "")", LogKey.error: "\(completion.errorMessage ?? "")",
                LogKey.retryIn: "\(String(format2: completion.delay.seconds))",
            ])
        case .dead, .release:
            break  // logged by the batcher once the fence accepted it
        }
        batcher.submit(completion)
    }

    private func attempt(_ job: ClaimedJob, payloadPresent: Bool, payloadBytes: Int) async -> AttemptResult {
        guard payloadPresent else {
            return .failed(.permanent(
                "payload is \(payloadBytes) bytes, over the limit of \(configuration.maxPayloadBytes) (JOBD_MAX_PAYLOAD_BYTES)",
                code: "payload_too_large"))
        }
        if let failure = PayloadGuard.check(job.payload) {
            return .failed(failure)
        }
        guard let handler = handlers.handler(for: job.kind) else {
            return .failed(.permanent(
                "no handler for kind \"\(job.kind)\" (known kinds: \(handlers.kinds.joined(separator: ", ")))",
                code: "unknown_kind"))
        }
        do {
            try await handler.handle(job, context: JobContext(logger: logger, job: job))
            return .succeeded
        } catch let failure as JobFailure {
            return .failed(failure)
        } catch let snooze as JobSnooze {
            return .snoozed(snooze)
        } catch is CancellationError {
            return .interrupted
        } catch {
            if Task.isCancelled { return .interrupted }
            return .failed(.transient("\(error)"))
        }
    }

    // MARK: Leases

    /// Extends the leases of running attempts every third of the lease, so a live
    /// daemon never loses a job to the rescuer, and a dead one loses all of them
    /// within one lease. Runs until cancelled (`run` cancels it once every
    /// completion is written).
    private func heartbeatLeases(batcher: CompletionBatcher, suspects: SuspectQueue) async {
        let interval = max(.milliseconds(50), configuration.lease / 3)
        while true {
            do { try await Task.sleep(for: interval) } catch { return }
            // Running, waiting to run alone, or finished with the completion not yet written.
            let fences = Array(Set(slots.fences + suspects.fences + batcher.unwrittenFences))
            guard !fences.isEmpty else { continue }
            do {
                let lost = try await completionStore.extendLeases(fences, lease: configuration.lease)
                stats.beat(beatKey)
                // A completion written since the list was taken is not a lost lease.
                for fence in lost where slots.contains(fence) || suspects.contains(fence) || batcher.isUnwritten(fence) {
                    logger.warning("lease lost; the attempt's completion will be refused", metadata: [
                        LogKey.jobID: "\(fence.id)", LogKey.jobAttempt: "\(fence.attempt)",
                    ])
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("lease heartbeat failed", metadata: [LogKey.error: "\(error)"])
            }
        }
    }
}

/// The connections of one claim pipeline: Redis to pop, Postgres to claim.
public struct ClaimPipeline: Sendable {
    public let store: QueueStore
    public let dispatch: RedisDispatch
    /// The pipeline's last direct claim (`WorkerPool.claimDirect`) took as many jobs as
    /// it had slots for: a backlog is waiting in PostgreSQL. One claim runs on a
    /// pipeline at a time, so relaxed ordering suffices.
    let directBacklog = DirectBacklog()
    public init(store: QueueStore, dispatch: RedisDispatch) {
        self.store = store
        self.dispatch = dispatch
    }
}

/// See `ClaimPipeline.directBacklog`.
final class DirectBacklog: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set(_ value: Bool) { flag.store(value, ordering: .relaxed) }
}

/// A claim statement failed without a reply (a timeout, a lost connection): the
/// server may have committed it, taking at most `jobs` jobs (the popped ids, or a
/// direct claim's limit) that this daemon will never run.
struct ClaimOutcomeUnknown: Error {
    let jobs: Int
    let underlying: any Error
}

/// A claimed attempt with what the claim learned about its payload.
typealias ClaimedAttempt = (job: ClaimedJob, payloadBytes: Int, payloadPresent: Bool)

/// Claimed suspects (rescued before) waiting for their turn to run alone. Shared
/// between the fetch loop, which fills and runs it, and the lease heartbeat, which
/// keeps their leases alive while they wait.
final class SuspectQueue: Sendable {
    private let queue = Mutex<[ClaimedAttempt]>([])

    func append(_ job: ClaimedAttempt) { queue.withLock { $0.append(job) } }
    var first: ClaimedAttempt? { queue.withLock { $0.first } }
    func removeFirst() { queue.withLock { _ = $0.removeFirst() } }
    var isEmpty: Bool { queue.withLock { $0.isEmpty } }
    var fences: [AttemptFence] { queue.withLock { $0.map(\.job.fence) } }
    func contains(_ fence: AttemptFence) -> Bool { queue.withLock { $0.contains { $0.job.fence == fence } } }
    func takeAll() -> [ClaimedJob] {
        queue.withLock { queue in
            defer { queue.removeAll() }
            return queue.map(\.job)
        }
    }
}

/// The graceful shutdown of a daemon's worker pools: the first `begin` fixes the
/// drain deadline and stops every enlisted pool's fetching; later calls return the
/// same deadline. A pool enlisted after the beginning is stopped at once.
public final class PoolShutdown: Sendable {
    private struct State {
        var deadline: ContinuousClock.Instant?
        var stoppers: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    public init() {}

    func enlist(_ stop: @escaping @Sendable () -> Void) {
        let begun = state.withLock { state -> Bool in
            if state.deadline != nil { return true }
            state.stoppers.append(stop)
            return false
        }
        if begun { stop() }
    }

    /// Begins the shutdown (once) and returns its drain deadline.
    @discardableResult
    func begin(timeout: Duration) -> ContinuousClock.Instant {
        let (deadline, stoppers) = state.withLock { state -> (ContinuousClock.Instant, [@Sendable () -> Void]) in
            if let deadline = state.deadline { return (deadline, []) }
            let deadline = ContinuousClock.now + min(max(.zero, timeout), .seconds(1_000_000_000))
            state.deadline = deadline
            defer { state.stoppers.removeAll() }
            return (deadline, state.stoppers)
        }
        for stop in stoppers { stop() }
        return deadline
    }
}

/// Begins the pools' shutdown as soon as the service group's graceful shutdown
/// reaches it. Placed after the listener in the daemon's services, it is told before
/// any of them (the group tells them in reverse order), so the pools stop fetching
/// and their drain deadline starts at the signal, not after the promoter and the
/// listener have stopped.
public struct PoolShutdownTrigger: Service {
    let shutdown: PoolShutdown
    let timeout: Duration

    public init(shutdown: PoolShutdown, timeout: Duration) {
        self.shutdown = shutdown
        self.timeout = timeout
    }

    public func run() async throws {
        // Returns on graceful shutdown (begin the drain) or cancellation (the pools'
        // own handlers then end their loops).
        do {
            try await gracefulShutdown()
        } catch {
            return
        }
        shutdown.begin(timeout: timeout)
    }
}

/// A one-way switch shared between a loop and its shutdown handler.
final class StopFlag: Sendable {
    private let stopped = Atomic<Bool>(false)
    func stop() { stopped.store(true, ordering: .relaxed) }
    var isStopped: Bool { stopped.load(ordering: .relaxed) }
}
