import JobdCore
import Testing

@Suite("PromoterIdleGate")
struct PromoterIdleGateTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    @Test("busy announces; a free lock makes it idle and it sleeps until the idle deadline")
    func announceThenSleep() {
        var gate = PromoterIdleGate(pollInterval: 1)
        #expect(gate.phase == .busy)
        #expect(gate.step(now: at(0)) == .announce)
        gate.lockTried(acquired: true, now: at(0))
        #expect(gate.phase == .idle)
        #expect(gate.step(now: at(5)) == .wait(seconds: nil))
        #expect(!gate.recheckDue(now: at(5_000)))
        // Its next promote statement marks the row busy: announce again before sleeping.
        gate.becameBusy()
        #expect(gate.step(now: at(6)) == .announce)
    }

    @Test("a busy lock means settling: re-checks 2 ms doubling to 100 ms, then the poll interval after 1 s")
    func settlingBackoff() {
        var gate = PromoterIdleGate(pollInterval: 0.5)
        var now = 0
        gate.lockTried(acquired: false, now: at(now))
        var waits: [Double] = []
        for _ in 0..<20 {
            guard case .settling(_, _, let next) = gate.phase else {
                Issue.record("not settling: \(gate.phase)")
                return
            }
            let wait = at(now).duration(to: next).seconds
            waits.append((wait * 1000).rounded())
            #expect(!gate.recheckDue(now: next - .microseconds(1)))
            #expect(gate.step(now: at(now)) == .wait(seconds: wait))
            now += Int((wait * 1000).rounded())
            #expect(gate.recheckDue(now: at(now)))
            #expect(gate.step(now: at(now)) == .recheck)
            gate.lockTried(acquired: false, now: at(now))
        }
        // 2, 4, …, 64, then 100 ms; after 1 s of settling, the poll interval (500 ms).
        #expect(Array(waits.prefix(7)) == [2, 4, 8, 16, 32, 64, 100])
        #expect(waits.suffix(3).allSatisfy { $0 == 500 })
        gate.lockTried(acquired: true, now: at(now))
        #expect(gate.phase == .idle)
    }

    @Test("the backoff never exceeds a short poll interval")
    func shortPoll() {
        var gate = PromoterIdleGate(pollInterval: 0.01)
        for _ in 0..<8 { gate.lockTried(acquired: false, now: at(0)) }
        guard case .settling(_, let attempt, let next) = gate.phase else {
            Issue.record("not settling")
            return
        }
        #expect(attempt == 7)
        #expect(at(0).duration(to: next) == .milliseconds(10))
    }

    @Test("an error or a busy mark while settling starts over with an announce")
    func resetWhileSettling() {
        var gate = PromoterIdleGate(pollInterval: 1)
        gate.lockTried(acquired: false, now: at(0))
        gate.lockTried(acquired: false, now: at(2))
        gate.becameBusy()
        #expect(gate.step(now: at(3)) == .announce)
        gate.lockTried(acquired: false, now: at(3))
        guard case .settling(let since, let attempt, _) = gate.phase else {
            Issue.record("not settling")
            return
        }
        #expect(since == at(3) && attempt == 0)
    }

    @Test("while busy, drained lanes are skipped on pops only until every lane was asked 20 ms ago")
    func drainedLanes() {
        var gate = PromoterIdleGate(pollInterval: 1)
        #expect(!gate.maySkipDrained(poppedOnly: true, now: at(0)))  // never asked all yet
        gate.askedAll(now: at(0))
        #expect(gate.maySkipDrained(poppedOnly: true, now: at(19)))
        #expect(!gate.maySkipDrained(poppedOnly: true, now: at(20)))
        #expect(!gate.maySkipDrained(poppedOnly: false, now: at(1)))
        // Idle (inserts notify again): pops may skip drained lanes however long ago.
        gate.lockTried(acquired: true, now: at(30))
        #expect(gate.maySkipDrained(poppedOnly: true, now: at(5_000)))
        #expect(!gate.maySkipDrained(poppedOnly: false, now: at(5_000)))
    }
}

@Suite("PromoterIdleGate linger")
struct PromoterIdleGateLingerTests {
    @Test("a busy promoter that found work looks again shortly instead of announcing idle")
    func linger() {
        var gate = PromoterIdleGate(pollInterval: 1)
        #expect(gate.lingerSeconds(afterPromoting: 3) == 0.002)
        #expect(gate.lingerSeconds(afterPromoting: 0) == nil, "nothing found: announce idle")
        gate.lockTried(acquired: true, now: .now)
        #expect(gate.lingerSeconds(afterPromoting: 3) == nil, "idle already: inserts notify")
        #expect(PromoterIdleGate(pollInterval: 0.001).lingerSeconds(afterPromoting: 1) == 0.001)
    }
}
