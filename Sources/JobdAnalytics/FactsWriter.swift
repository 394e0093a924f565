import Foundation
import JobdCore
import JobdPostgres
import JobdQueue
import Logging
import ServiceLifecycle
import Synchronization

/// Records one `analytics.attempt_facts` row per finished attempt, in batches.
///
/// Workers hand facts over through `attemptFinished` (a lock and an append); one
/// loop writes whatever has gathered — up to `batchSize` facts per statement, as
/// unnest'ed arrays — every `flushInterval` or as soon as a batch is full.
///
/// Failure isolation (the analytics tier may be its own database):
/// 1. A write to analytics that fails parks the batch in `queue.analytics_spool`
///    in the queue database — up whenever jobs are completing — so facts survive an
///    analytics outage of any length. While analytics is down, batches go straight
///    to the spool; analytics is probed again after a growing pause (1 s → 30 s).
/// 2. Once analytics answers again, the spool is moved over in batches (insert,
///    then delete; the insert is idempotent on the fact's key, so a move that is
///    interrupted and repeated, or two daemons moving the same rows, changes nothing).
///    Every daemon also checks the spool every 30 s, so facts parked by a daemon that
///    has since stopped are moved too.
/// 3. Only when neither database takes them do facts stay in memory, at most
///    `capacity` of them; beyond that new facts are dropped, counted and logged
///    (first drop, then every 10,000th). A crash loses what is in memory.
/// Nothing here ever makes a worker wait: jobs keep completing throughout.
public final class FactsWriter: AttemptObserver, Service {
    public struct Counters: Sendable, Equatable {
        public var recorded = 0
        public var written = 0
        /// Statements that wrote facts to analytics (not one per fact).
        public var batches = 0
        public var spooled = 0
        public var unspooled = 0
        public var dropped = 0
    }

    let analytics: PostgresConnection
    let spool: PostgresConnection
    let capacity: Int
    let batchSize: Int
    let flushInterval: Double
    let drainTimeout: Double
    let now: @Sendable () -> Date
    let logger: Logger

    private struct State {
        var buffer: [AttemptFact] = []
        var counters = Counters()
    }
    private let state = Mutex(State())
    private let wake = WakeSignal()

    /// - Parameters:
    ///   - analytics: a connection to the analytics tier's database (its own).
    ///   - spool: a connection to the queue database.
    ///   - capacity: facts kept in memory at most (`JOBD_FACTS_BUFFER`).
    ///   - drainTimeout: how long a graceful shutdown may spend writing what is left.
    public init(
        analytics: PostgresConnection, spool: PostgresConnection, capacity: Int, batchSize: Int = 2_000,
        flushInterval: Double = 1, drainTimeout: Double = 10, now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.analytics = analytics
        self.spool = spool
        self.capacity = max(1, capacity)
        self.batchSize = max(1, batchSize)
        self.flushInterval = flushInterval
        self.drainTimeout = drainTimeout
        self.now = now
        var logger = logger
        logger[metadataKey: LogKey.service] = "facts"
        self.logger = logger
    }

    public var counters: Counters { state.withLock { $0.counters } }
    public var buffered: Int { state.withLock { $0.buffer.count } }

    // MARK: Recording (worker side)

    public func attemptFinished(_ job: ClaimedJob, completion: AttemptCompletion) {
        record(AttemptFact(job: job, completion: completion, finishedAt: now()))
    }

    public func record(_ fact: AttemptFact) {
        var fact = fact
        // Whole milliseconds: the fact's key survives the trip through the spool exactly.
        fact.finishedAt = (fact.finishedAt * 1000).rounded() / 1000
        let (full, dropped) = state.withLock { state -> (Bool, Int?) in
            state.counters.recorded += 1
            guard state.buffer.count < capacity else {
                state.counters.dropped += 1
                return (true, state.counters.dropped)
            }
            state.buffer.append(fact)
            return (state.buffer.count >= batchSize, nil)
        }
        if let dropped, dropped == 1 || dropped % 10_000 == 0 {
            logger.warning("attempt facts dropped: buffer full", metadata: [
                LogKey.count: "\(dropped)", "capacity": "\(capacity)",
            ])
        }
        if full { wake.signal() }
    }

    // MARK: Writing

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var loop = Loop()
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await self.pass(&loop)
                if self.buffered < self.batchSize { await self.wake.wait(timeout: self.flushInterval) }
            }
        }
        // Shutdown: the pools have drained (they stop before this service); write
        // what is left, to analytics or the spool, within the drain timeout.
        let deadline = ContinuousClock.now + .milliseconds(Int(drainTimeout * 1000))
        var loop = Loop()
        while buffered > 0 && ContinuousClock.now < deadline {
            let before = buffered
            await pass(&loop, draining: true)
            if buffered >= before { try? await Task.sleep(for: .milliseconds(200)) }
        }
        let left = buffered
        if left > 0 {
            logger.error("attempt facts lost at shutdown: neither analytics nor the queue database took them", metadata: [
                LogKey.count: "\(left)",
            ])
        }
        await analytics.close()
        await spool.close()
    }

    struct Loop {
        var analyticsDown = false
        var analyticsFailures = 0
        var analyticsRetryAt = ContinuousClock.now
        var spoolFailures = 0
        var nextSpoolCheck = ContinuousClock.now
        var spoolHasRows = true  // unknown at start: check once
    }

    /// Writes one batch (if any), then moves spooled facts while analytics is up.
    func pass(_ loop: inout Loop, draining: Bool = false) async {
        let batch = state.withLock { state -> [AttemptFact] in
            let count = min(state.buffer.count, batchSize)
            let batch = Array(state.buffer.prefix(count))
            state.buffer.removeFirst(count)
            return batch
        }
        if !batch.isEmpty {
            var written = false
            if !loop.analyticsDown || ContinuousClock.now >= loop.analyticsRetryAt {
                do {
                    try await insert(batch, into: analytics, table: .facts)
                    written = true
                    state.withLock {
                        $0.counters.written += batch.count
                        $0.counters.batches += 1
                    }
                    analyticsUp(&loop)
                } catch {
                    analyticsFailed(&loop, error)
                }
            }
            if !written {
                do {
                    try await insert(batch, into: spool, table: .spool)
                    state.withLock { $0.counters.spooled += batch.count }
                    loop.spoolHasRows = true
                    loop.spoolFailures = 0
                } catch {
                    loop.spoolFailures += 1
                    if loop.spoolFailures == 1 || loop.spoolFailures % 10 == 0 {
                        logger.warning("attempt facts: neither analytics nor the queue spool is writable; keeping them in memory", metadata: [
                            LogKey.error: "\(error)", LogKey.count: "\(batch.count)",
                        ])
                    }
                    // Back in front, in order; the buffer may briefly exceed capacity by one batch.
                    state.withLock { $0.buffer.insert(contentsOf: batch, at: 0) }
                    if !draining {
                        try? await Task.sleep(for: .milliseconds(min(5_000, 100 * (1 << min(loop.spoolFailures, 6)))))
                    }
                }
            }
        }
        if draining { return }
        if !loop.spoolHasRows && ContinuousClock.now >= loop.nextSpoolCheck { loop.spoolHasRows = true }
        if loop.spoolHasRows && !loop.analyticsDown {
            await moveSpool(&loop)
        }
    }

    private func analyticsUp(_ loop: inout Loop) {
        if loop.analyticsDown {
            logger.notice("attempt facts: analytics reachable again", metadata: [LogKey.tier: "analytics"])
        }
        loop.analyticsDown = false
        loop.analyticsFailures = 0
    }

    private func analyticsFailed(_ loop: inout Loop, _ error: any Error) {
        loop.analyticsFailures += 1
        if !loop.analyticsDown {
            logger.warning("attempt facts: analytics unreachable; parking facts in the queue spool", metadata: [
                LogKey.tier: "analytics", LogKey.error: "\(error)",
            ])
        }
        loop.analyticsDown = true
        let pause = min(30.0, Double(1 << min(loop.analyticsFailures - 1, 5)))
        loop.analyticsRetryAt = .now + TotalConversion.duration(seconds: pause)
    }

    /// Moves spooled facts to analytics, a batch at a time, until the spool is empty.
    private func moveSpool(_ loop: inout Loop) async {
        do {
            while !Task.isCancelled {
                let rows = try await spool.rows(AnalyticsAttemptFactsStatements.Spooled(limit: batchSize))
                if rows.isEmpty {
                    loop.spoolHasRows = false
                    loop.nextSpoolCheck = .now + .seconds(30)
                    return
                }
                let facts = rows.compactMap(\.fact)
                do {
                    try await insert(facts, into: analytics, table: .facts)
                } catch {
                    analyticsFailed(&loop, error)
                    return
                }
                // Every row read goes, including one that did not parse (it would block the spool).
                try await spool.execute(AnalyticsAttemptFactsStatements.DeleteSpooled(ids: rows.map(\.id)))
                state.withLock { $0.counters.unspooled += facts.count }
                logger.debug("attempt facts moved from the spool", metadata: [LogKey.count: "\(facts.count)"])
            }
        } catch {
            // The queue database itself is failing; the next pass tries again.
            logger.debug("reading the facts spool failed", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// Where a batch goes: the analytics table, or the queue-side spool while analytics
    /// is down (`AnalyticsAttemptFactsStatements.Insert` / `.Spool`).
    enum Target {
        case facts, spool
    }

    /// One statement for the whole batch.
    private func insert(_ facts: [AttemptFact], into connection: PostgresConnection, table: Target) async throws {
        switch table {
        case .facts: try await connection.execute(AnalyticsAttemptFactsStatements.Insert(facts: facts))
        case .spool: try await connection.execute(AnalyticsAttemptFactsStatements.Spool(facts: facts))
        }
    }
}
