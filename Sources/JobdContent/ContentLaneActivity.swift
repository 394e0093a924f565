import JobdCore
import Synchronization

/// Whether this process's `content.write` lane is busy, for the search indexer to
/// stay out of a burst's way (`ContentIndexer`). The write handler counts each
/// write while it runs; the lane is busy while one runs or one ended within the
/// quiet period. Only this process's writes are seen: another daemon's indexer
/// decides by its own lane.
public final class ContentLaneActivity: Sendable {
    private struct State {
        var running = 0
        var lastEnd: ContinuousClock.Instant?
    }

    /// How long after the last write the lane still counts as busy: long enough to
    /// bridge the gap between one job's write and the next claim's.
    public let quietPeriod: Duration
    /// Where the lane and the indexer that reads it take the time.
    public let clock: any MonotonicClock
    private let state = Mutex(State())

    public init(quietPeriod: Duration = .milliseconds(200), clock: any MonotonicClock = ContinuousClock()) {
        self.quietPeriod = quietPeriod
        self.clock = clock
    }

    /// Runs one write, counted as running until it returns or throws.
    public func counting<T>(_ body: () async throws -> T) async rethrows -> T {
        state.withLock { $0.running += 1 }
        defer {
            let now = clock.now
            state.withLock { state in
                state.running -= 1
                state.lastEnd = now
            }
        }
        return try await body()
    }

    /// A write is running, or one ended less than `quietPeriod` ago.
    public var isBusy: Bool {
        let now = clock.now
        return state.withLock { state in
            if state.running > 0 { return true }
            guard let lastEnd = state.lastEnd else { return false }
            return lastEnd.duration(to: now) < quietPeriod
        }
    }
}
