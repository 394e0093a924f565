import Synchronization

/// A level-triggered wake-up: any number of `signal()` calls before the next
/// `wait` collapse into one, so a burst of NOTIFYs costs the promoter one pass.
public final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    public init() {}

    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when signalled, or after `timeout` seconds, or on cancellation.
    /// Only one task waits on a given signal.
    public func wait(timeout: Double) async {
        if state.withLock({ state in
            let was = state.pending
            state.pending = false
            return was
        }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int(max(0, timeout) * 1000)))
                self.signal()
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let fireNow = self.state.withLock { state -> Bool in
                            if state.pending {
                                state.pending = false
                                return true
                            }
                            state.waiter = continuation
                            return false
                        }
                        if fireNow { continuation.resume() }
                    }
                } onCancel: {
                    self.signal()
                }
            }
            await group.next()
            group.cancelAll()
        }
        // The timer may have set `pending` on its way out; that only costs one
        // extra pass of the waiter, never a lost wake-up.
    }
}
