import Synchronization

/// Opens once, for good. The promoter waits on it before its first pass so that the
/// maintenance's first Redis epoch check runs before it: on a Redis without an epoch
/// (new, flushed, restarted without persistence) that check voids every promotion,
/// and promotions made just before it were voided with the rest — pushed, handed
/// back to `available`, skipped by the claim when popped, promoted again.
public final class StartGate: Sendable {
    private let opened = Atomic<Bool>(false)

    public init() {}

    public func open() { opened.store(true, ordering: .releasing) }

    public var isOpen: Bool { opened.load(ordering: .acquiring) }

    /// Returns once the gate is open, after `limit` (the check may be stuck on an
    /// unreachable server; the promoter's own errors then say so), or on cancellation.
    /// Polls every 2 ms: it waits once per daemon start, for one maintenance pass.
    public func wait(upTo limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while !isOpen && !Task.isCancelled && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}
