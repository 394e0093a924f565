@testable import JobdQueue
import Testing

@Suite("TestFaults")
struct TestFaultsTests {
    @Test("the promoter wedge holds its waiter until it is toggled off, and wakes it then")
    func wedge() async throws {
        let faults = TestFaults()
        #expect(faults.togglePromoterWedge() == true)
        let waiter = Task { await faults.waitWhilePromoterWedged() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(faults.promoterWedged)
        let released = ContinuousClock.now
        #expect(faults.togglePromoterWedge() == false)
        await waiter.value
        // Woken by the toggle, not by the wait's one-second timeout.
        #expect(released.duration(to: .now) < .milliseconds(900))
    }
}
