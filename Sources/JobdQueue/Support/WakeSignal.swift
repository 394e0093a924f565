import JobdCore
import Synchronization

/// A level-triggered wake-up: any number of `signal()` calls before the next
/// `wait` collapse into one, so a burst of NOTIFYs costs the promoter one pass.
/// `wait` returns the reasons given since the last one, so the waiter can tell a
/// worker's "I took from the list" from "new jobs may be due".
public final class WakeSignal: Sendable {
    public struct Reasons: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Something may be due (NOTIFY, a rescue, a reconnect …).
        public static let general = Reasons(rawValue: 1)
        /// A worker pool popped from a Redis list: only the lists' lengths changed.
        public static let popped = Reasons(rawValue: 2)
        /// The wait's timeout ran out.
        public static let timeout = Reasons(rawValue: 4)
    }

    private struct State {
        var pending = false
        var reasons: Reasons = []
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    public init() {}

    public func signal(_ reason: Reasons = .general) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.reasons.insert(reason)
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when signalled, or once `timeout` has passed (at once if it is zero or
    /// negative), or on cancellation, with the reasons signalled since the previous
    /// wait. Only one task waits on a given signal.
    @discardableResult
    public func wait(timeout: Duration) async -> Reasons {
        if state.withLock({ state in
            let was = state.pending
            state.pending = false
            return was
        }) { return takeReasons() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Only a timer that ran out signals: one cancelled because a real signal
                // came first must not leave a stale wake-up for the next wait.
                do {
                    try await Task.sleep(for: max(.zero, timeout))
                    self.signal(.timeout)
                } catch {}
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let fireNow = self.state.withLock { state -> Bool in
                            if state.pending {
                                state.pending = false
                                return true
                            }
                            // Checked under the lock that onCancel takes: a cancellation
                            // either finds the waiter registered or is seen here.
                            if Task.isCancelled { return true }
                            state.waiter = continuation
                            return false
                        }
                        if fireNow { continuation.resume() }
                    }
                } onCancel: {
                    // Only unblock this wait. Signalling here would leave a stale wake-up
                    // for the next wait whenever the group cancels this task after the
                    // timer already resumed it.
                    let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume()
                }
            }
            await group.next()
            group.cancelAll()
        }
        // A timer that fired just as a signal came may have set `pending`; that only
        // costs one extra pass of the waiter, never a lost wake-up.
        return takeReasons()
    }

    private func takeReasons() -> Reasons {
        state.withLock { state in
            defer { state.reasons = [] }
            return state.reasons
        }
    }
}
