import Synchronization

/// Switches the fault tests flip in a real `jobd run`. Nothing sets them unless the
/// process was started with `JOBD_TEST_FAULTS=1` (see `RunCommand`), which is never
/// a configuration key and logs a warning at start.
public enum TestFaults {
    /// While true, the promoter stops between passes without reporting progress: a
    /// wedged loop, as a hung await would leave it, for the watchdog test.
    /// `jobd run` toggles it on SIGUSR2.
    public static let promoterWedged = Atomic<Bool>(false)
}
