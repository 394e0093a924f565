import JobdCore
import Testing

@Suite("PrioritySelector")
struct PrioritySelectorTests {
    static let defaultWeights: [JobPriority: Int] = [.high: 6, .normal: 3, .low: 1]

    func leads(_ selector: inout PrioritySelector, calls: Int) -> [JobPriority] {
        (0..<calls).map { _ in selector.nextOrder()[0] }
    }

    @Test("strict always serves high, normal, low")
    func strictOrder() {
        var selector = PrioritySelector(mode: .strict)
        for _ in 0..<100 {
            #expect(selector.nextOrder() == [.high, .normal, .low])
        }
    }

    @Test("lanes are kept in priority order whatever order they are given in")
    func lanesSorted() {
        var strict = PrioritySelector(mode: .strict, lanes: [.low, .high, .normal])
        #expect(strict.lanes == [.high, .normal, .low])
        #expect(strict.nextOrder() == [.high, .normal, .low])
        let pair = PrioritySelector(mode: .strict, lanes: [.low, .high])
        #expect(pair.lanes == [.high, .low])
    }

    @Test("weighted 6/3/1 leads with high 600, normal 300, low 100 in 1000 calls")
    func weightedCounts() {
        var selector = PrioritySelector(mode: .weighted(Self.defaultWeights))
        let counts = Dictionary(grouping: leads(&selector, calls: 1_000), by: { $0 }).mapValues(\.count)
        #expect(counts[.high] == 600)
        #expect(counts[.normal] == 300)
        #expect(counts[.low] == 100)
    }

    @Test("weighted 6/3/1 follows the smooth round-robin sequence")
    func weightedSequence() {
        var selector = PrioritySelector(mode: .weighted(Self.defaultWeights))
        let expected: [JobPriority] = [.high, .normal, .high, .high, .normal, .high, .low, .high, .normal, .high]
        #expect(leads(&selector, calls: 10) == expected)
        // The credits return to zero after one cycle, so the cycle repeats.
        #expect(leads(&selector, calls: 10) == expected)
    }

    @Test("leads are interleaved: high never leads more than twice in a row")
    func interleaved() {
        var selector = PrioritySelector(mode: .weighted(Self.defaultWeights))
        let sequence = leads(&selector, calls: 200)
        var run = 0
        var longest = 0
        for lane in sequence {
            run = lane == .high ? run + 1 : 0
            longest = max(longest, run)
        }
        #expect(longest <= 2)
    }

    @Test("low leads at least once in every 10 consecutive calls")
    func noStarvation() {
        var selector = PrioritySelector(mode: .weighted(Self.defaultWeights))
        let sequence = leads(&selector, calls: 1_000)
        for start in 0...(sequence.count - 10) {
            let window = sequence[start..<(start + 10)]
            #expect(window.contains(.low), "window starting at call \(start)")
        }
    }

    @Test(
        "lanes after the lead stay in priority order",
        arguments: [
            [JobPriority.high: 6, .normal: 3, .low: 1],
            [.high: 1, .normal: 1, .low: 1],
            [.high: 1, .normal: 5, .low: 9],
            [.high: 0, .normal: 2, .low: 1],
        ]
    )
    func tailInPriorityOrder(weights: [JobPriority: Int]) {
        var selector = PrioritySelector(mode: .weighted(weights))
        for call in 0..<200 {
            let order = selector.nextOrder()
            #expect(order.count == 3, "call \(call)")
            #expect(Set(order) == Set(JobPriority.allCases), "call \(call)")
            #expect(Array(order.dropFirst()) == order.dropFirst().sorted(), "call \(call): \(order)")
        }
    }

    @Test(
        "lead counts are proportional to the weights",
        arguments: [
            ([JobPriority.high: 1, .normal: 1, .low: 1], 300),
            ([.high: 5, .normal: 2, .low: 3], 1_000),
            ([.high: 1, .normal: 2, .low: 7], 500),
        ]
    )
    func proportional(weights: [JobPriority: Int], calls: Int) {
        let total = weights.values.reduce(0, +)
        var selector = PrioritySelector(mode: .weighted(weights))
        let counts = Dictionary(grouping: leads(&selector, calls: calls), by: { $0 }).mapValues(\.count)
        for (lane, weight) in weights {
            #expect(counts[lane, default: 0] == calls / total * weight, "\(lane)")
        }
    }

    @Test("a pool restricted to one lane returns just that lane", arguments: JobPriority.allCases)
    func singleLane(lane: JobPriority) {
        var weighted = PrioritySelector(mode: .weighted(Self.defaultWeights), lanes: [lane])
        var strict = PrioritySelector(mode: .strict, lanes: [lane])
        for _ in 0..<20 {
            #expect(weighted.nextOrder() == [lane])
            #expect(strict.nextOrder() == [lane])
        }
    }

    @Test("a pool of two lanes only ever returns those two")
    func twoLanes() {
        var selector = PrioritySelector(mode: .weighted(Self.defaultWeights), lanes: [.normal, .low])
        var normalLeads = 0
        for _ in 0..<40 {
            let order = selector.nextOrder()
            #expect(Set(order) == [.normal, .low])
            #expect(order.count == 2)
            if order[0] == .normal { normalLeads += 1 }
        }
        // Weights 3:1 between the two lanes served.
        #expect(normalLeads == 30)
    }

    @Test("a zero-weight lane never leads but is still in the order")
    func zeroWeightLow() {
        var selector = PrioritySelector(mode: .weighted([.high: 2, .normal: 1, .low: 0]))
        for call in 0..<300 {
            let order = selector.nextOrder()
            #expect(order[0] != .low, "call \(call)")
            #expect(order.last == .low, "call \(call)")
            #expect(order.count == 3)
        }
    }

    @Test("a lane missing from the weights counts as weight zero")
    func missingWeight() {
        var selector = PrioritySelector(mode: .weighted([.high: 1, .normal: 1]))
        for _ in 0..<50 {
            let order = selector.nextOrder()
            #expect(order[0] != .low)
            #expect(order.contains(.low))
        }
    }

    @Test("negative weights count as zero")
    func negativeWeight() {
        var selector = PrioritySelector(mode: .weighted([.high: 3, .normal: -10, .low: 1]))
        let sequence = leads(&selector, calls: 400)
        #expect(!sequence.contains(.normal))
        #expect(sequence.filter { $0 == .high }.count == 300)
        #expect(sequence.filter { $0 == .low }.count == 100)
    }

    @Test("all weights zero falls back to strict order")
    func allZero() {
        var selector = PrioritySelector(mode: .weighted([.high: 0, .normal: 0, .low: 0]))
        for _ in 0..<10 {
            #expect(selector.nextOrder() == [.high, .normal, .low])
        }
    }

    @Test(
        "a zero-weight lane never leads, whichever lane it is",
        arguments: [
            [JobPriority.high: 0, .normal: 1, .low: 2],
            [.high: 0, .normal: 3, .low: 1],
            [.high: 1, .normal: 0, .low: 1],
            [.high: 1, .normal: 0, .low: 2],
            [.high: 0, .normal: 1, .low: 1],
            [.high: 3, .normal: 2, .low: 0],
        ]
    )
    func zeroWeightAnyLane(weights: [JobPriority: Int]) {
        let zero = weights.filter { $0.value == 0 }.map(\.key)
        let bad = Self.leadsOfZeroWeightLanes(weights: weights, calls: 600)
        #expect(bad.isEmpty, "zero-weight lanes \(zero) led at calls \(bad.prefix(5))")
    }

    /// The calls (0-based) at which a lane whose weight is 0 led.
    static func leadsOfZeroWeightLanes(weights: [JobPriority: Int], calls: Int) -> [Int] {
        var selector = PrioritySelector(mode: .weighted(weights))
        var bad: [Int] = []
        for call in 0..<calls {
            let order = selector.nextOrder()
            #expect(order.count == 3)
            if weights[order[0], default: 0] == 0 { bad.append(call) }
        }
        return bad
    }

    @Test("huge weights are clamped: no overflow, and the heaviest lane still leads")
    func hugeWeights() {
        var selector = PrioritySelector(mode: .weighted([.high: .max, .normal: 1, .low: 1]))
        let leads = (0..<1_000).map { _ in selector.nextOrder()[0] }
        #expect(leads.filter { $0 == .high }.count >= 998)
    }

    @Test("the mode is kept as given")
    func modeKept() {
        #expect(PrioritySelector(mode: .strict).mode == .strict)
        #expect(PrioritySelector(mode: .weighted(Self.defaultWeights)).mode == .weighted(Self.defaultWeights))
    }
}
