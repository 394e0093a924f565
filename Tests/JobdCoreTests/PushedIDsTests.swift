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
}
