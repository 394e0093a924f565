import JobdCore
import Testing

@Suite("PushedIDs")
struct PushedIDsTests {
    let t0 = ContinuousClock.now
    let grace = Duration.milliseconds(100)

    @Test("ids still in the list stay remembered; popped ones are forgotten once the read is grace old")
    func forgetsPoppedAfterGrace() {
        var memory = PushedIDs(grace: grace, cap: 1_000)
        memory.observe(length: 0, now: t0)
        memory.pushed([1, 2, 3, 4, 5])
        // Two popped: the read says so, but a claim may still be in flight.
        memory.observe(length: 3, now: t0 + .milliseconds(10))
        #expect(Array(memory.remembered) == [1, 2, 3, 4, 5])
        memory.pushed([6])
        // Grace later: the read at +10 ms decides (the push after it is kept).
        memory.observe(length: 4, now: t0 + .milliseconds(120))
        #expect(Array(memory.remembered) == [3, 4, 5, 6])
        // An empty list forgets everything pushed before the read that saw it.
        memory.observe(length: 0, now: t0 + .milliseconds(130))
        memory.pushed([7])
        memory.observe(length: 1, now: t0 + .milliseconds(240))
        #expect(Array(memory.remembered) == [7])
    }

    @Test("a list longer than this promoter's pushes (ids put back at the head, another promoter's) keeps them all")
    func longerListKeepsAll() {
        var memory = PushedIDs(grace: grace, cap: 1_000)
        memory.pushed([1, 2, 3])
        memory.observe(length: 10, now: t0)
        memory.observe(length: 10, now: t0 + .seconds(1))
        #expect(Array(memory.remembered) == [1, 2, 3])
    }

    @Test("bounded by its cap (oldest first), and forgetAll empties it")
    func capAndForget() {
        var memory = PushedIDs(grace: grace, cap: 4)
        memory.pushed([1, 2, 3])
        memory.pushed([4, 5, 6])
        #expect(Array(memory.remembered) == [3, 4, 5, 6])
        memory.forgetAll()
        #expect(memory.isEmpty)
        // Indexes stay consistent after forgetting: a later read trims the new pushes right.
        memory.observe(length: 0, now: t0)
        memory.pushed([7, 8])
        memory.observe(length: 1, now: t0 + .milliseconds(150))
        memory.observe(length: 1, now: t0 + .milliseconds(300))
        #expect(Array(memory.remembered) == [8])
    }

    @Test("while reads fill their batch the next starts after the highest key pushed; a short read, the full-read interval and forgetAll go back to the start")
    func readStart() {
        let ms = { (n: Int) in self.t0 + .milliseconds(n) }
        var memory = PushedIDs(grace: grace, cap: 1_000, fullReadInterval: .milliseconds(100))
        #expect(memory.readStart(now: t0) == nil)
        memory.read(from: nil, limit: 3, found: 3, now: t0)
        memory.pushed([1, 2, 3], highest: DueKey(runAtMicros: 50, id: 3))
        let after = DueKey(runAtMicros: 50, id: 3)
        #expect(memory.readStart(now: ms(10)) == after)
        memory.read(from: after, limit: 3, found: 3, now: ms(10))
        // Pushed with lower keys (a read from the start found jobs behind it): the highest stays.
        memory.pushed([7, 8, 9], highest: DueKey(runAtMicros: 40, id: 9))
        #expect(memory.readStart(now: ms(20)) == after)
        #expect(memory.highestPushed == after)
        // The full-read interval since the last read from the start: from the start again.
        #expect(memory.readStart(now: ms(100)) == nil)
        memory.read(from: nil, limit: 3, found: 3, now: ms(100))
        #expect(memory.readStart(now: ms(150)) == after)
        // A read that came up short: the lane is drained, the next read starts at its start.
        memory.read(from: after, limit: 3, found: 2, now: ms(150))
        #expect(memory.readStart(now: ms(151)) == nil)
        // A lane not read (limit 0) keeps its state.
        memory.read(from: nil, limit: 3, found: 3, now: ms(200))
        memory.read(from: nil, limit: 0, found: 0, now: ms(210))
        #expect(memory.readStart(now: ms(220)) == after)
        // A key the statement could not turn back into a timestamp exactly is never a start.
        memory.pushed([10], highest: DueKey(runAtMicros: 1 << 52, id: 10))
        #expect(memory.readStart(now: ms(230)) == nil)
        // forgetAll: nothing pushed is known any more.
        memory.forgetAll()
        #expect(memory.highestPushed == nil)
        memory.read(from: nil, limit: 3, found: 3, now: ms(240))
        #expect(memory.readStart(now: ms(241)) == nil)
        memory.pushed([11], highest: DueKey(runAtMicros: 60, id: 11))
        #expect(memory.readStart(now: ms(242)) == DueKey(runAtMicros: 60, id: 11))
    }

    @Test("dispatch keys order by run_at, then id; the start is before every key the CHECK allows")
    func dueKeyOrder() {
        #expect(DueKey(runAtMicros: 5, id: 9) < DueKey(runAtMicros: 6, id: 1))
        #expect(DueKey(runAtMicros: 5, id: 1) < DueKey(runAtMicros: 5, id: 2))
        #expect(DueKey.start < DueKey(runAtMicros: 0, id: 1))
        #expect(DueKey(runAtMicros: (1 << 52) - 1, id: 1).isExactCursor)
        #expect(!DueKey(runAtMicros: 1 << 52, id: 1).isExactCursor)
        #expect(!DueKey(runAtMicros: -1, id: 1).isExactCursor)
    }
}
