import Synchronization

/// Switches the fault tests flip in a real `jobd run`. A daemon gets one only when
/// the process was started with `JOBD_TEST_FAULTS=1` (see `RunCommand`), which is
/// never a configuration key and logs a warning at start; in production the
/// services hold nil and look nothing up.
public final class TestFaults: Sendable {
    private let wedged = Atomic<Bool>(false)
    private let unwedged = WakeSignal()

    public init() {}

    /// While true, the promoter stops between passes without reporting progress: a
    /// wedged loop, as a hung await would leave it, for the watchdog test.
    /// `jobd run` toggles it on SIGUSR2.
    public var promoterWedged: Bool { wedged.load(ordering: .relaxed) }

    /// Flips the promoter wedge; returns the new state.
    @discardableResult
    public func togglePromoterWedge() -> Bool {
        let now = !wedged.load(ordering: .relaxed)
        wedged.store(now, ordering: .relaxed)
        if !now { unwedged.signal() }
        return now
    }

    /// Returns once the promoter is not wedged, or on cancellation. One waiter: the promoter.
    func waitWhilePromoterWedged() async {
        while promoterWedged && !Task.isCancelled {
            await unwedged.wait(timeout: .seconds(1))
        }
    }
}
