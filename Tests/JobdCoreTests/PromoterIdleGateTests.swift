import JobdCore
import Testing

@Suite("PromoterIdleGate")
struct PromoterIdleGateTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    @Test("busy announces; a free lock makes it idle and it sleeps until the idle deadline")
    func announceThenSleep() {
        var gate = PromoterIdleGate(pollInterval: .seconds(1))
        #expect(gate.phase == .busy)
        #expect(gate.step(now: at(0)) == .announce)
        gate.lockTried(acquired: true, now: at(0))
        #expect(gate.phase == .idle)
        #expect(gate.step(now: at(5)) == .wait(nil))
        #expect(!gate.recheckDue(now: at(5_000)))
        // Its next promote statement marks the row busy: announce again before sleeping.
        gate.becameBusy()
        #expect(gate.step(now: at(6)) == .announce)
    }

    @Test("a busy lock means settling: re-checks 2 ms doubling to 100 ms, then the poll interval after 1 s")
    func settlingBackoff() {
        var gate = PromoterIdleGate(pollInterval: .milliseconds(500))
        var now = 0
        gate.lockTried(acquired: false, now: at(now))
        var waits: [Duration] = []
        for _ in 0..<20 {
            guard case .settling(_, _, let next) = gate.phase else {
                Issue.record("not settling: \(gate.phase)")
                return
            }
            let wait = at(now).duration(to: next)
            waits.append(wait)
            #expect(!gate.recheckDue(now: next - .microseconds(1)))
            #expect(gate.step(now: at(now)) == .wait(wait))
            now += Int(wait / .milliseconds(1))
            #expect(gate.recheckDue(now: at(now)))
            #expect(gate.step(now: at(now)) == .recheck)
            gate.lockTried(acquired: false, now: at(now))
        }
        // 2, 4, …, 64, then 100 ms; after 1 s of settling, the poll interval (500 ms).
        #expect(Array(waits.prefix(7)) == [2, 4, 8, 16, 32, 64, 100].map { Duration.milliseconds($0) })
        #expect(waits.suffix(3).allSatisfy { $0 == .milliseconds(500) })
        gate.lockTried(acquired: true, now: at(now))
        #expect(gate.phase == .idle)
    }

    @Test("the backoff never exceeds a short poll interval")
    func shortPoll() {
        var gate = PromoterIdleGate(pollInterval: .milliseconds(10))
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
        var gate = PromoterIdleGate(pollInterval: .seconds(1))
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
        var gate = PromoterIdleGate(pollInterval: .seconds(1))
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
    let gate = PromoterIdleGate(pollInterval: .seconds(1))

    @Test("only a busy promoter whose pass found work lingers; an empty pass announces idle")
    func whoLingers() {
        var gate = self.gate
        #expect(gate.linger(afterPromoting: 0, since: .milliseconds(1)) == nil, "nothing found: announce idle")
        #expect(gate.linger(afterPromoting: 1, since: .milliseconds(1)) != nil)
        gate.lockTried(acquired: false, now: .now)
        #expect(gate.linger(afterPromoting: 3, since: .milliseconds(1)) == nil, "settling: inserts may notify already")
        gate.lockTried(acquired: true, now: .now)
        #expect(gate.linger(afterPromoting: 3, since: .milliseconds(1)) == nil, "idle already: inserts notify")
        gate.becameBusy()
        #expect(gate.linger(afterPromoting: 3, since: .milliseconds(1)) == .milliseconds(1))
        var off = self.gate
        off.linger = .zero
        #expect(off.linger(afterPromoting: 3, since: .milliseconds(1)) == nil, "no linger configured: announce idle")
    }

    @Test("the linger spans three of the last pass's arrival gaps")
    func scalesWithTheGaps() {
        // 3 jobs in 1 ms: a gap of 1/3 ms, three of them 1 ms.
        #expect(gate.linger(afterPromoting: 3, since: .milliseconds(1)) == .milliseconds(1))
        // 30 jobs in 1.5 ms (20k/s): 0.15 ms.
        #expect(gate.linger(afterPromoting: 30, since: .microseconds(1_500)) == .microseconds(150))
        // Faster arrivals, a shorter linger; the same count over a longer time, a longer one.
        #expect(gate.linger(afterPromoting: 20, since: .milliseconds(1))! < gate.linger(afterPromoting: 10, since: .milliseconds(1))!)
        #expect(gate.linger(afterPromoting: 10, since: .milliseconds(1))! < gate.linger(afterPromoting: 10, since: .milliseconds(2))!)
        var wider = gate
        wider.lingerGaps = 6
        #expect(wider.linger(afterPromoting: 30, since: .microseconds(1_500)) == .microseconds(300))
    }

    @Test("capped at linger: one side and the other of 2 ms")
    func cap() {
        // span = since · 3 / promoted: 3 jobs over 1.999 ms → 1.999 ms; over 2.001 ms → the cap.
        #expect(gate.linger(afterPromoting: 3, since: .microseconds(1_999)) == .microseconds(1_999))
        #expect(gate.linger(afterPromoting: 3, since: .milliseconds(2)) == .milliseconds(2))
        #expect(gate.linger(afterPromoting: 3, since: .microseconds(2_001)) == .milliseconds(2))
        #expect(gate.linger(afterPromoting: 1, since: .seconds(30)) == .milliseconds(2), "one job after a long idle")
        #expect(gate.linger(afterPromoting: 1, since: nil) == .milliseconds(2), "no read before: the full linger")
        // …and at a poll interval shorter than the linger.
        let shortPoll = PromoterIdleGate(pollInterval: .milliseconds(1))
        #expect(shortPoll.linger(afterPromoting: 3, since: .microseconds(999)) == .microseconds(999))
        #expect(shortPoll.linger(afterPromoting: 3, since: .microseconds(1_001)) == .milliseconds(1))
        #expect(shortPoll.linger(afterPromoting: 1, since: nil) == .milliseconds(1))
    }

    @Test("shorter than 100 µs: pass again at once; from 100 µs on, sleep")
    func shortest() {
        // 30 jobs: since · 3 / 30 = since / 10.
        #expect(gate.linger(afterPromoting: 30, since: .microseconds(999)) == .zero)
        #expect(gate.linger(afterPromoting: 30, since: .microseconds(1_000)) == .microseconds(100))
        #expect(gate.linger(afterPromoting: 30, since: .microseconds(1_001)) == .nanoseconds(100_100))
        #expect(gate.linger(afterPromoting: 1_000, since: .milliseconds(1)) == .zero, "a full batch in a millisecond")
    }
}
