import Synchronization

/// Counters and heartbeats the daemon's loops report, read by the status line,
/// the watchdog and `jobd status`. Cheap to update from hot paths.
public final class DaemonStats: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// Ids the promoter pushed to Redis.
        public var promoted = 0
        public var started = 0
        /// Jobs claimed straight from PostgreSQL after the lists stayed empty (`WorkerPool`).
        public var claimedDirect = 0
        public var completed = 0
        public var retried = 0
        public var deadLettered = 0
        public var staleRefused = 0
        public var rescued = 0
        /// Due waiting jobs (in Redis or not), as of the last maintenance pass.
        public var dueBacklog = 0
        public var deadLetterCount = 0
        /// Paused priority lanes and kinds (`queue.pauses`), as of the last maintenance pass.
        public var pausedCount = 0
        public var postgresHealthy = false
        public var redisHealthy = false
        /// Last progress of each loop (promoter, workers, maintenance …).
        public var heartbeats: [String: ContinuousClock.Instant] = [:]
        /// Completions per second-long bucket, to report jobs done in the last minute.
        public var completionsByMinuteWindow: [Int64: Int] = [:]
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Completions written so far; cheaper than a whole `snapshot` for a tight poll.
    public var completedCount: Int { state.withLock { $0.completed } }

    public func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    /// A loop reports that it is alive and making progress.
    public func beat(_ loop: String) {
        state.withLock { $0.heartbeats[loop] = .now }
    }

    public func recordFinished(count: Int, now: ContinuousClock.Instant = .now) {
        guard count > 0 else { return }
        state.withLock { snapshot in
            let key = Self.secondKey(now)
            snapshot.completionsByMinuteWindow[key, default: 0] += count
            let oldest = key - 60
            snapshot.completionsByMinuteWindow = snapshot.completionsByMinuteWindow.filter { $0.key > oldest }
        }
    }

    public func finishedInLastMinute(now: ContinuousClock.Instant = .now) -> Int {
        let key = Self.secondKey(now)
        return state.withLock { snapshot in
            snapshot.completionsByMinuteWindow.filter { $0.key > key - 60 }.values.reduce(0, +)
        }
    }

    private static let origin = ContinuousClock.now

    private static func secondKey(_ instant: ContinuousClock.Instant) -> Int64 {
        origin.duration(to: instant).components.seconds
    }
}
