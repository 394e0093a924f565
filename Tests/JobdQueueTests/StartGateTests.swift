import JobdQueue
import Testing

@Suite("StartGate")
struct StartGateTests {
    @Test("a wait returns when the gate opens, long before its limit")
    func opens() async throws {
        let gate = StartGate()
        let started = ContinuousClock.now
        async let waited: Void = gate.wait(upTo: .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        gate.open()
        await waited
        #expect(started.duration(to: .now) < .seconds(10))
        #expect(gate.isOpen)
        // Open for good: later waits return at once.
        await gate.wait(upTo: .seconds(30))
    }

    @Test("a wait on a gate that never opens returns after its limit")
    func limit() async {
        let gate = StartGate()
        let started = ContinuousClock.now
        await gate.wait(upTo: .milliseconds(100))
        #expect(started.duration(to: .now) >= .milliseconds(100))
        #expect(!gate.isOpen)
    }

    @Test("a cancelled wait returns without the gate opening")
    func cancelled() async {
        let gate = StartGate()
        let started = ContinuousClock.now
        let waiter = Task { await gate.wait(upTo: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await waiter.value
        #expect(started.duration(to: .now) < .seconds(10))
    }
}
