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

    /// One recorded step and the size it leaves for the next: (first size, limits, rows
    /// asked, rows found, elapsed, next size).
    static let oneStep: [(Int, ClosedRange<Int>, Int, Int, Duration, Int)] = [
        // Just over the target: at most half.
        (1000, 1...10_000, 1000, 1000, .milliseconds(251), 500),
        // Much slower: the rows its rate does in the target's middle (1000 in 2 s: 87.5 in 175 ms).
        (1000, 1...10_000, 1000, 1000, .seconds(2), 87),
        // A last, partial step that was slow too: sized by the rows it did.
        (1000, 1...10_000, 1000, 100, .seconds(1), 17),
        // Never below the lower limit, however slow.
        (1, 1...10_000, 1, 1, .seconds(30), 1),
        (400, 50...10_000, 400, 400, .seconds(10), 50),
        // Just under the target: toward its middle (100 in 99 ms: 176.7 in 175 ms).
        (100, 1...10_000, 100, 100, .milliseconds(99), 176),
        // Much faster, or instant: at most double.
        (100, 1...10_000, 100, 100, .milliseconds(5), 200),
        (100, 1...10_000, 100, 100, .zero, 200),
        // Never above the upper limit (the action's batch).
        (800, 1...1000, 800, 800, .milliseconds(1), 1000),
        (1000, 1...1000, 1000, 1000, .milliseconds(1), 1000),
    ]

    @Test("a slow step shrinks the next to at most half, a fast full one grows it toward the target's middle to at most double, within the limits",
          arguments: oneStep)
    func nextSize(first: Int, limits: ClosedRange<Int>, asked: Int, rows: Int, elapsed: Duration, next: Int) {
        var s = sizer(first, limits: limits)
        s.record(asked: asked, rows: rows, elapsed: elapsed)
        #expect(s.size == next)
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
