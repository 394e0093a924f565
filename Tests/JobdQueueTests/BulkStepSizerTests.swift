import JobdQueue
import Testing

@Suite("Bulk step sizer")
struct BulkStepSizerTests {
    private func sizer(_ size: Int, limits: ClosedRange<Int> = 1...10_000) -> BulkStepSizer {
        BulkStepSizer(target: .milliseconds(100) ... .milliseconds(250), limits: limits, initial: size)
    }

    @Test("a step inside the target, its bounds included, keeps the size")
    func insideKeeps() {
        for elapsed in [Duration.milliseconds(100), .milliseconds(175), .milliseconds(250)] {
            var s = sizer(1000)
            s.record(asked: 1000, rows: 1000, elapsed: elapsed)
            #expect(s.size == 1000, "\(elapsed)")
        }
    }

    @Test("a step just over the target shrinks the next to at most half; a much slower one to the rows its rate does in the target's middle")
    func slowShrinks() {
        var justOver = sizer(1000)
        justOver.record(asked: 1000, rows: 1000, elapsed: .milliseconds(251))
        #expect(justOver.size == 500)
        var seconds = sizer(1000)
        seconds.record(asked: 1000, rows: 1000, elapsed: .seconds(2))
        #expect(seconds.size == 87)  // 1000 rows in 2 s: 87.5 in 175 ms
        // The last, partial step was slow too: sized by the rows it did.
        var partial = sizer(1000)
        partial.record(asked: 1000, rows: 100, elapsed: .seconds(1))
        #expect(partial.size == 17)
        // Never below the lower limit, however slow.
        var one = sizer(1)
        one.record(asked: 1, rows: 1, elapsed: .seconds(30))
        #expect(one.size == 1)
        var floored = sizer(400, limits: 50...10_000)
        floored.record(asked: 400, rows: 400, elapsed: .seconds(10))
        #expect(floored.size == 50)
    }

    @Test("a full step just under the target grows the next toward the target's middle, at most doubling it")
    func fastGrows() {
        var justUnder = sizer(100)
        justUnder.record(asked: 100, rows: 100, elapsed: .milliseconds(99))
        #expect(justUnder.size == 176)  // 100 rows in 99 ms: 176.7 in 175 ms
        var fast = sizer(100)
        fast.record(asked: 100, rows: 100, elapsed: .milliseconds(5))
        #expect(fast.size == 200)
        var instant = sizer(100)
        instant.record(asked: 100, rows: 100, elapsed: .zero)
        #expect(instant.size == 200)
        // Never above the upper limit (the action's batch).
        var capped = sizer(800, limits: 1...1000)
        capped.record(asked: 800, rows: 800, elapsed: .milliseconds(1))
        #expect(capped.size == 1000)
        capped.record(asked: 1000, rows: 1000, elapsed: .milliseconds(1))
        #expect(capped.size == 1000)
    }

    @Test("a fast step that found fewer rows than it asked for says nothing about the rate: the size stays")
    func fastPartialKeeps() {
        var s = sizer(400)
        s.record(asked: 400, rows: 3, elapsed: .milliseconds(2))
        #expect(s.size == 400)
    }

    @Test("the first size is clamped to the limits; steps converge into the target at a steady rate")
    func startsAndConverges() {
        #expect(BulkStepSizer(limits: 1...4).size == 4)
        #expect(BulkStepSizer(limits: 1...10_000).size == 100)
        #expect(BulkStepSizer(limits: 500...10_000, initial: 10).size == 500)
        // A host that does 2,000 rows a second: each step lasts size / 2,000 s.
        var s = sizer(100)
        var durations: [Duration] = []
        for _ in 0..<12 {
            let elapsed = Duration.milliseconds(s.size / 2)
            durations.append(elapsed)
            s.record(asked: s.size, rows: s.size, elapsed: elapsed)
        }
        #expect(durations.suffix(6).allSatisfy { s.target.contains($0) }, "\(durations)")
        // The same host slowed tenfold: back inside the target after one slow step.
        let slow = Duration.milliseconds(s.size * 5)
        s.record(asked: s.size, rows: s.size, elapsed: slow)
        #expect(s.target.contains(.milliseconds(s.size * 5)), "\(s.size)")
    }
}
