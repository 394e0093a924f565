import JobdCore
import Synchronization

/// Opens once, for good. The promoter waits on it before its first pass so that the
/// maintenance's first Redis epoch check runs before it: on a Redis without an epoch
/// (new, flushed, restarted without persistence) that check voids every promotion,
/// and promotions made just before it were voided with the rest — pushed, handed
/// back to `available`, skipped by the claim when popped, promoted again.
public final class StartGate: Sendable {
    private let opened = Atomic<Bool>(false)
    private let signal = WakeSignal()

    public init() {}

    public func open() {
        opened.store(true, ordering: .releasing)
        signal.signal()
    }

    public var isOpen: Bool { opened.load(ordering: .acquiring) }

    /// Returns once the gate is open, after `limit` (the check may be stuck on an
    /// unreachable server; the promoter's own errors then say so), or on cancellation.
    /// Sleeps until `open()` signals it. One waiter at a time.
    public func wait(upTo limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while !isOpen && !Task.isCancelled {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return }
            await signal.wait(timeout: left.seconds)
        }
    }
}
