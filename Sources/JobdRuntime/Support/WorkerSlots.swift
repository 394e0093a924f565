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
        /// Slots set aside for a claim in flight: not free, not yet running.
        var reserved = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var free: Int { capacity - running.count - reserved }
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

    /// Running attempts (the status line's and the metrics' "busy").
    public var busy: Int { state.withLock { $0.running.count } }
    /// Running attempts plus slots reserved by claims in flight: what a drain waits for.
    public var occupied: Int { state.withLock { $0.running.count + $0.reserved } }
    public var fences: [AttemptFence] { state.withLock { Array($0.running.keys) } }
    public func contains(_ fence: AttemptFence) -> Bool { state.withLock { $0.running[fence] != nil } }

    /// Waits until at least one slot is free and returns how many are.
    public func waitForFree() async -> Int {
        while true {
            let free = state.withLock { $0.free }
            if free > 0 { return free }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.free > 0 { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            if Task.isCancelled { return state.withLock { max(0, $0.free) } }
        }
    }

    public func occupy(_ fence: AttemptFence) {
        state.withLock { $0.running[fence] = .now }
    }

    public func release(_ fence: AttemptFence) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running[fence] = nil
            return Self.takeWaiters(&state)
        }
        waiters.forEach { $0.resume() }
    }

    /// Sets aside every free slot, up to `limit`, for one claim; returns how many.
    public func reserveFree(limit: Int = .max) -> Int {
        state.withLock { state in
            let count = max(0, min(limit, state.free))
            state.reserved += count
            return count
        }
    }

    /// Ends a reservation of `reserved` slots: the claimed attempts run in them, the
    /// rest are free again. One step, so no other claim can see the slots twice.
    public func settle(reserved: Int, occupying fences: [AttemptFence]) {
        let now = ContinuousClock.now
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.reserved = max(0, state.reserved - reserved)
            for fence in fences { state.running[fence] = now }
            return fences.count < reserved ? Self.takeWaiters(&state) : []
        }
        waiters.forEach { $0.resume() }
    }

    private static func takeWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let waiters = state.waiters
        state.waiters.removeAll()
        return waiters
    }

    /// Waits until no claim holds reserved slots (claims in flight have started their
    /// jobs or given the slots back). A claim ends within its pop's 0.5 s block plus
    /// one statement's deadline.
    public func waitForClaims() async {
        while state.withLock({ $0.reserved > 0 }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
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
