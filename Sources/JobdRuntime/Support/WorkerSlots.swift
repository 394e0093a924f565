import JobdCore
import Synchronization

/// Counts a pool's busy slots and the fences of the attempts they run.
///
/// The fetcher asks for free slots before popping from Redis, so a daemon never
/// takes more work than it can start; the lease heartbeat reads the fences.
public final class WorkerSlots: Sendable {
    private struct State {
        var capacity: Int
        var running: [AttemptFence: ContinuousClock.Instant] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    public init(capacity: Int) {
        precondition(capacity > 0)
        state = Mutex(State(capacity: capacity))
    }

    /// Slots this pool may fill; changed by a reload (SIGHUP).
    public var capacity: Int { state.withLock { $0.capacity } }

    /// Grows or shrinks the pool. Shrinking never stops a running job: the fetcher
    /// simply takes no more until enough have finished.
    public func resize(to capacity: Int) {
        precondition(capacity > 0)
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.capacity = capacity
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    public var busy: Int { state.withLock { $0.running.count } }
    public var fences: [AttemptFence] { state.withLock { Array($0.running.keys) } }
    public func contains(_ fence: AttemptFence) -> Bool { state.withLock { $0.running[fence] != nil } }

    /// Waits until at least one slot is free and returns how many are.
    public func waitForFree() async -> Int {
        while true {
            let free = state.withLock { $0.capacity - $0.running.count }
            if free > 0 { return free }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.running.count < state.capacity { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            if Task.isCancelled { return state.withLock { max(0, $0.capacity - $0.running.count) } }
        }
    }

    public func occupy(_ fence: AttemptFence) {
        state.withLock { $0.running[fence] = .now }
    }

    public func release(_ fence: AttemptFence) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running[fence] = nil
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters
        }
        waiters.forEach { $0.resume() }
    }

    /// Waits until no slot is busy or `timeout` seconds pass; true when idle.
    public func waitUntilIdle(timeout: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while busy > 0 {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
