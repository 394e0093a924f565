import JobdSystemd
import Logging
import Testing

/// Instants are injected (offsets from one base), so nothing here sleeps.
@Suite struct WatchdogGateTests {
    let t0 = ContinuousClock.now

    @Test func allFreshLoopsAllowPing() {
        var gate = WatchdogGate(stalenessLimit: .seconds(10))
        gate.register("promoter", now: t0)
        gate.register("workers", now: t0)
        gate.heartbeat("promoter", now: t0 + .seconds(8))
        gate.heartbeat("workers", now: t0 + .seconds(9))

        let now = t0 + .seconds(15)
        #expect(gate.shouldPing(now: now))
        #expect(gate.staleLoops(now: now).isEmpty)
    }

    @Test func oneStaleLoopBlocksPingAndIsNamed() {
        var gate = WatchdogGate(stalenessLimit: .seconds(10))
        gate.register("promoter", now: t0)
        gate.register("workers", now: t0)
        gate.heartbeat("promoter", now: t0 + .seconds(20))  // workers never beat again

        let now = t0 + .seconds(21)
        #expect(!gate.shouldPing(now: now))
        #expect(gate.staleLoops(now: now) == ["workers"])
    }

    @Test func exactlyAtTheLimitIsStillFresh() {
        var gate = WatchdogGate(stalenessLimit: .seconds(10))
        gate.register("rescuer", now: t0)
        #expect(gate.shouldPing(now: t0 + .seconds(10)))
        #expect(!gate.shouldPing(now: t0 + .seconds(10) + .milliseconds(1)))
    }

    @Test func staleLoopsAreSortedAndUnregisterReleasesThem() {
        var gate = WatchdogGate(stalenessLimit: .seconds(1))
        for loop in ["workers", "promoter", "rescuer"] { gate.register(loop, now: t0) }
        let now = t0 + .seconds(5)
        #expect(gate.staleLoops(now: now) == ["promoter", "rescuer", "workers"])

        // During drain, finished loops are unregistered and must stop blocking pings.
        gate.unregister("workers")
        gate.unregister("promoter")
        gate.heartbeat("rescuer", now: now)
        #expect(gate.shouldPing(now: now))
        #expect(gate.loops == ["rescuer"])
    }

    @Test func heartbeatRegistersUnknownLoopAndNeverMovesBackwards() {
        var gate = WatchdogGate(stalenessLimit: .seconds(10))
        gate.heartbeat("workers", now: t0 + .seconds(30))
        gate.heartbeat("workers", now: t0)  // a late-delivered older instant
        #expect(gate.loops == ["workers"])
        #expect(gate.shouldPing(now: t0 + .seconds(35)))
    }

    @Test func noLoopsMeansNothingIsWedged() {
        let gate = WatchdogGate(stalenessLimit: .seconds(10))
        #expect(gate.shouldPing(now: t0))
        #expect(gate.staleLoops(now: t0).isEmpty)
    }
}

@Suite("LogLevelControl")
struct LogLevelControlTests {
    @Test("every logger follows the process level, and setting it on one sets it for all")
    func sharedLevel() {
        let control = LogLevelControl(.info)
        let capture = CapturingHandler()
        let a = Logger(label: "a") { _ in ProcessLevelLogHandler(wrapping: capture, control: control) }
        var b = Logger(label: "b") { _ in ProcessLevelLogHandler(wrapping: capture, control: control) }
        a.debug("hidden")
        control.level = .debug
        a.debug("shown after reload")
        b.logLevel = .error
        #expect(control.level == .error)
        a.warning("hidden again")
        a.error("shown")
        #expect(capture.messages == ["shown after reload", "shown"])
    }
}

/// Records messages; a class so the copies a Logger makes share one list.
private final class CapturingHandler: LogHandler, @unchecked Sendable {
    // @unchecked: only touched from the test's own task, one call at a time.
    var messages: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { messages.append(event.message.description) }
}
