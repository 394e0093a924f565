import JobdCore
import JobdPostgres
import JobdQueue
import Logging
import ServiceLifecycle

/// Keeps the content search index current in batches: every `indexInterval` it fills
/// `search_vector` for up to `indexBatch` unindexed messages per statement, and goes
/// straight on while batches come back full. Writes never touch the GIN index
/// themselves, so a burst of `content.write` costs one index update per batch rather
/// than one per row.
///
/// The index costs the server more per message than the write (`to_tsvector` and
/// the GIN insert), so while this process's `content.write` lane is busy
/// (`ContentLaneActivity`) the indexer waits, and catches up once the lane is
/// quiet. The wait is bounded: once `indexMaxDelay` has passed since the indexer
/// last caught up, it indexes until caught up, busy or not. Every message waiting
/// was written after that moment, so a message is searchable at most
/// `indexMaxDelay` plus the catch-up's own time after its write while the lane is
/// busy, and about `indexInterval` after it when the lane is quiet.
///
/// If a batch fails on the server (a text Postgres cannot index), the indexer goes
/// through that batch one message at a time, so one bad row cannot stall the rest;
/// such a message is indexed by its subject alone.
public struct ContentIndexer: Service {
    let database: TierDatabase
    let settings: ContentSettings
    let logger: Logger
    /// The lane it makes way for; nil: it never waits.
    let lane: ContentLaneActivity?

    /// How often a waiting indexer looks at the lane again (or `indexInterval`, when
    /// shorter): it starts at most this long after the lane turns quiet or
    /// `indexMaxDelay` runs out. A look costs a lock and a clock reading, and happens
    /// only while the lane is busy.
    ///
    /// A poll, not a wait for an event: the lane turns quiet when no write has run for
    /// its `quietPeriod`, an absence that no write signals. A `WakeSignal` raised at each
    /// write's end would wake the indexer once per write through a burst (more often than
    /// this) and would still need a timer for the quiet period and the max delay.
    static let laneRecheck: Duration = .milliseconds(100)

    public init(database: TierDatabase, settings: ContentSettings, lane: ContentLaneActivity? = nil, logger: Logger) {
        self.database = database
        self.settings = settings
        self.lane = lane
        var logger = logger
        logger[metadataKey: LogKey.service] = "content-indexer"
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            // When the last batch that came back short started: every message waiting
            // now committed after that batch's snapshot, so after this instant.
            var caughtUp = now
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if shouldWait(caughtUp: caughtUp) {
                    try? await Task.sleep(for: min(settings.indexInterval, Self.laneRecheck))
                    continue
                }
                var indexed = 0
                let started = now
                do {
                    indexed = try await runOnce()
                    failures = 0
                } catch is CancellationError {
                    return
                } catch {
                    // tier_unavailable is logged once by TierDatabase; back off quietly.
                    failures += 1
                    if failures == 1 {
                        logger.warning("content indexing failed; retrying", metadata: [LogKey.error: "\(error)"])
                    }
                }
                if indexed >= settings.indexBatch { continue }
                if failures == 0 { caughtUp = started }
                let pause = failures == 0 ? settings.indexInterval : min(.seconds(10), settings.indexInterval * (1 << min(failures, 6)))
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// Whether to leave the backlog for now: the lane is busy and the oldest message
    /// waiting has waited less than `indexMaxDelay`.
    func shouldWait(caughtUp: ContinuousClock.Instant) -> Bool {
        guard let lane, lane.isBusy else { return false }
        return caughtUp.duration(to: lane.clock.now) < settings.indexMaxDelay
    }

    /// The lane's clock: the one the wait is decided by.
    private var now: ContinuousClock.Instant { lane?.clock.now ?? ContinuousClock.now }

    /// One batch; returns how many messages it indexed. Tests call it directly.
    @discardableResult
    public func runOnce() async throws -> Int {
        let limit = settings.indexBatch
        return try await database.withConnection { connection in
            let store = ContentStore(connection: connection)
            do {
                let indexed = try await store.indexPending(limit: limit)
                if indexed > 0 { logger.debug("content indexed", metadata: [LogKey.count: "\(indexed)"]) }
                return indexed
            } catch let error as PostgresError where error.kind == .server {
                logger.warning("content index batch failed; indexing one by one", metadata: [LogKey.error: "\(error)"])
                var indexed = 0
                for id in try await store.pendingIDs(limit: limit) {
                    if try await store.indexOne(id: id) {
                        indexed += 1
                    } else {
                        logger.warning("content text could not be indexed; subject only", metadata: ["content_id": "\(id)"])
                    }
                }
                return indexed
            }
        }
    }
}
