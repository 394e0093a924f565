import Synchronization

/// Lends out indices 0..<size one caller at a time, in arrival order: the checkout
/// of a fixed set of resources (tier connections, libcurl transfer workers).
public final class IndexPool: Sendable {
    private struct State {
        var free: [Int]
        var waiters: [CheckedContinuation<Int, Never>] = []
    }
    private let state: Mutex<State>

    public init(size: Int) {
        state = Mutex(State(free: Array((0..<size).reversed())))
    }

    public func checkOut() async -> Int {
        if let index = state.withLock({ $0.free.popLast() }) { return index }
        return await withCheckedContinuation { continuation in
            let index: Int? = state.withLock { state in
                if let index = state.free.popLast() { return index }
                state.waiters.append(continuation)
                return nil
            }
            if let index { continuation.resume(returning: index) }
        }
    }

    public func checkIn(_ index: Int) {
        let waiter: CheckedContinuation<Int, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.free.append(index)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: index)
    }
}
