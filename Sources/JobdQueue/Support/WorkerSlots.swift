import JobdCore
import Synchronization

/// Counts a pool's busy slots and the fences of the attempts they run.
///
/// The fetcher asks for free slots before popping from Redis, so a daemon never
/// takes more work than it can start; the lease heartbeat reads the fences.
///
/// Every wait here is signal-based: a waiter parks on a continuation with the
/// condition it waits for, and each change of the counts (an occupy, a release, a
/// settled claim, a resize) resumes the waiters whose condition now holds. A
/// condition may also read state outside the slots (a pool's stop flag); whoever
/// changes that state calls `wakeWaiters()` so the conditions are looked at again.
/// No wait polls, and every wait ends on cancellation.
public final class WorkerSlots: Sendable {
    /// The counts a wait condition sees.
    public struct Counts: Sendable {
        public var capacity: Int
        public var running: Int
        /// Slots set aside for a claim in flight: not free, not yet running.
        public var reserved: Int
        public var free: Int { capacity - running - reserved }
        /// Running attempts plus slots reserved by claims in flight.
        public var occupied: Int { running + reserved }
    }

    private struct Waiter {
        let id: UInt64
        let ready: @Sendable (Counts) -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var capacity: Int
        var running: [AttemptFence: ContinuousClock.Instant] = [:]
        var reserved = 0
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var counts: Counts { Counts(capacity: capacity, running: running.count, reserved: reserved) }

        /// Removes and returns the waiters whose condition holds now; resume them
        /// after the lock is released.
        mutating func takeReady() -> [CheckedContinuation<Bool, Never>] {
            guard !waiters.isEmpty else { return [] }
            let counts = counts
            var ready: [CheckedContinuation<Bool, Never>] = []
            waiters.removeAll { waiter in
                guard waiter.ready(counts) else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
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
        change { $0.capacity = capacity }
    }

    /// Running attempts (the status line's and the metrics' "busy").
    public var busy: Int { state.withLock { $0.running.count } }
    /// Running attempts plus slots reserved by claims in flight: what a drain waits for.
    public var occupied: Int { state.withLock { $0.running.count + $0.reserved } }
    public var fences: [AttemptFence] { state.withLock { Array($0.running.keys) } }
    public func contains(_ fence: AttemptFence) -> Bool { state.withLock { $0.running[fence] != nil } }

    // MARK: Changes

    public func occupy(_ fence: AttemptFence) {
        change { $0.running[fence] = .now }
    }

    public func release(_ fence: AttemptFence) {
        change { $0.running[fence] = nil }
    }

    /// Sets aside every free slot, up to `limit`, for one claim; returns how many.
    public func reserveFree(limit: Int = .max) -> Int {
        change { state in
            let count = max(0, min(limit, state.counts.free))
            state.reserved += count
            return count
        }
    }

    /// Ends a reservation of `reserved` slots: the claimed attempts run in them, the
    /// rest are free again. One step, so no other claim can see the slots twice.
    public func settle(reserved: Int, occupying fences: [AttemptFence]) {
        let now = ContinuousClock.now
        change { state in
            state.reserved = max(0, state.reserved - reserved)
            for fence in fences { state.running[fence] = now }
        }
    }

    /// Makes every waiter look at its condition again: for conditions that read
    /// state outside the slots (a stop flag), called by whoever changed that state
    /// after changing it.
    public func wakeWaiters() {
        change { _ in }
    }

    /// Applies `body` under the lock, then resumes the waiters it made ready.
    private func change<T: Sendable>(_ body: (inout State) -> T) -> T {
        let (result, ready) = state.withLock { state in
            let result = body(&state)
            return (result, state.takeReady())
        }
        for continuation in ready { continuation.resume(returning: true) }
        return result
    }

    // MARK: Waits

    /// Waits until `ready` holds for the counts (checked now, then at each change and
    /// each `wakeWaiters()`), until `deadline`, or until the task is cancelled; true
    /// when `ready` held.
    public func wait(
        until ready: @escaping @Sendable (Counts) -> Bool, deadline: ContinuousClock.Instant? = nil
    ) async -> Bool {
        if state.withLock({ ready($0.counts) }) { return true }
        guard let deadline else { return await park(until: ready) }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask { await self.park(until: ready) }
            group.addTask {
                // nil when cancelled because the wait ended first.
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    return false
                } catch {
                    return nil
                }
            }
            var outcome = false
            if let first = await group.next() { outcome = first ?? false }
            group.cancelAll()
            // The park may have become ready while the timer won: the counts decide.
            return outcome || state.withLock { ready($0.counts) }
        }
    }

    /// Parks on a continuation until `ready` holds (true) or the task is cancelled (false).
    private func park(until ready: @escaping @Sendable (Counts) -> Bool) async -> Bool {
        let id = state.withLock { state in
            defer { state.nextWaiter &+= 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Bool? = state.withLock { state in
                    if ready(state.counts) { return true }
                    // Checked under the lock that onCancel takes: a cancellation either
                    // finds the waiter registered or is seen here.
                    if Task.isCancelled { return false }
                    state.waiters.append(Waiter(id: id, ready: ready, continuation: continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: false)
        }
    }

    /// Waits until at least one slot is free and returns how many are; returns 0 at
    /// once when `stopped()` is true (the caller calls `wakeWaiters()` after it
    /// becomes true) or the task is cancelled.
    public func waitForFree(unless stopped: @escaping @Sendable () -> Bool = { false }) async -> Int {
        let ready = await wait(until: { $0.free > 0 || stopped() })
        guard ready, !stopped() else { return 0 }
        return max(0, state.withLock { $0.counts.free })
    }

    /// Waits until no slot is running or reserved by a claim in flight; false when
    /// `stopped()` became true first (see `waitForFree`) or the task was cancelled.
    public func waitUntilUnoccupied(unless stopped: @escaping @Sendable () -> Bool) async -> Bool {
        let ready = await wait(until: { $0.occupied == 0 || stopped() })
        return ready && !stopped()
    }

    /// Waits until no claim holds reserved slots (claims in flight have started their
    /// jobs or given the slots back). A claim ends within its pop's 0.5 s block plus
    /// one statement's deadline.
    public func waitForClaims() async {
        _ = await wait(until: { $0.reserved == 0 })
    }

    /// Waits until no slot is busy or `timeout` has passed; true when idle.
    public func waitUntilIdle(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + max(.zero, timeout)
        return await wait(until: { $0.running == 0 }, deadline: deadline)
    }
}
