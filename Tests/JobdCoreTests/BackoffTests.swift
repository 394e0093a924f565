import JobdCore
import JobdTestRandom
import Testing

@Suite("RetryBackoff")
struct BackoffTests {
    @Test("ceiling doubles per attempt from the base")
    func ceilingDoubles() {
        let backoff = RetryBackoff(base: .seconds(1), maximum: .seconds(1_000_000))
        let expected: [Int] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        for (index, value) in expected.enumerated() {
            #expect(backoff.ceiling(forAttempt: index + 1) == .seconds(value), "attempt \(index + 1)")
        }
    }

    @Test("ceiling with a fractional base", arguments: [250, 500, 1_500, 3_000])
    func fractionalBase(milliseconds: Int) {
        let base = Duration.milliseconds(milliseconds)
        let backoff = RetryBackoff(base: base, maximum: .seconds(1_000_000_000_000))
        for attempt in 1...20 {
            let ceiling = backoff.ceiling(forAttempt: attempt)
            #expect(ceiling == base * (1 << (attempt - 1)), "attempt \(attempt)")
            #expect(backoff.ceiling(forAttempt: attempt + 1) == ceiling * 2)
        }
    }

    @Test("ceiling is capped at the maximum")
    func ceilingCapped() {
        let backoff = RetryBackoff(base: .seconds(1), maximum: .seconds(100))
        #expect(backoff.ceiling(forAttempt: 7) == .seconds(64))
        #expect(backoff.ceiling(forAttempt: 8) == .seconds(100))
        for attempt in 8...200 {
            #expect(backoff.ceiling(forAttempt: attempt) == .seconds(100), "attempt \(attempt)")
        }
    }

    @Test("ceiling never decreases and never exceeds the maximum")
    func ceilingMonotonic() {
        let backoff = RetryBackoff(base: .milliseconds(300), maximum: .seconds(3_600))
        var previous = Duration.zero
        for attempt in 1...300 {
            let ceiling = backoff.ceiling(forAttempt: attempt)
            #expect(ceiling >= previous)
            #expect(ceiling <= .seconds(3_600))
            #expect(ceiling >= .milliseconds(300))
            previous = ceiling
        }
    }

    @Test("attempt 0 or below is treated like the first attempt", arguments: [0, -1, -100, Int.min + 1, Int.min])
    func nonPositiveAttempt(attempt: Int) {
        let backoff = RetryBackoff(base: .seconds(2), maximum: .seconds(60))
        #expect(backoff.ceiling(forAttempt: attempt) == .seconds(2))
    }

    @Test("base equal to the maximum is constant")
    func baseEqualsMaximum() {
        let backoff = RetryBackoff(base: .seconds(5), maximum: .seconds(5))
        for attempt in [1, 2, 3, 50, Int.max] {
            #expect(backoff.ceiling(forAttempt: attempt) == .seconds(5))
        }
    }

    @Test("huge attempt numbers stay capped, whatever the maximum", arguments: [63, 64, 65, 1_000, 1 << 40, Int.max - 1, Int.max])
    func hugeAttempts(attempt: Int) {
        let capped = RetryBackoff(base: .seconds(1), maximum: .seconds(3_600))
        #expect(capped.ceiling(forAttempt: attempt) == .seconds(3_600))
        var generator = SplitMix64(seed: UInt64(truncatingIfNeeded: attempt))
        let delay = capped.delay(forAttempt: attempt, using: &generator)
        #expect(delay >= .seconds(1_800) && delay <= .seconds(3_600))

        // A maximum no doubling of the base reaches exactly: the ceiling stops there,
        // however many doublings the attempt asks for, without overflowing.
        let uncapped = RetryBackoff(base: .nanoseconds(1), maximum: .seconds(Int64.max))
        let ceiling = uncapped.ceiling(forAttempt: attempt)
        #expect(ceiling > .zero)
        #expect(ceiling <= .seconds(Int64.max))
        #expect(uncapped.ceiling(forAttempt: attempt + (attempt == .max ? 0 : 1)) >= ceiling)
    }

    @Test("delay stays within [(1-jitter)·ceiling, ceiling]", arguments: [0.1, 0.5, 0.9, 1.0])
    func delayWithinRange(jitter: Double) {
        let backoff = RetryBackoff(base: .milliseconds(500), maximum: .seconds(600), jitter: jitter)
        for seed in coreTestSeeds {
            var generator = SplitMix64(seed: seed)
            for attempt in 1...40 {
                let ceiling = backoff.ceiling(forAttempt: attempt)
                let floor = ceiling * (1 - jitter)
                for _ in 0..<25 {
                    let delay = backoff.delay(forAttempt: attempt, using: &generator)
                    #expect(delay >= floor && delay <= ceiling, "seed \(seed) attempt \(attempt): \(delay) ∉ [\(floor), \(ceiling)]")
                }
            }
        }
    }

    @Test("delay is actually jittered, spread over the range")
    func delayIsSpread() {
        let backoff = RetryBackoff(base: .seconds(10), maximum: .seconds(10), jitter: 0.5)
        var generator = SplitMix64(seed: 7)
        let delays = (0..<1_000).map { _ in backoff.delay(forAttempt: 1, using: &generator).seconds }
        #expect(Set(delays).count > 900)
        #expect(delays.contains { $0 < 6 })
        #expect(delays.contains { $0 > 9 })
        let mean = delays.reduce(0, +) / Double(delays.count)
        #expect(mean > 7.25 && mean < 7.75)
    }

    @Test("draws reach close to both ends of the range")
    func reachesBothEnds() {
        let backoff = RetryBackoff(base: .seconds(8), maximum: .seconds(8), jitter: 0.25)
        var generator = SplitMix64(seed: 11)
        let delays = (0..<2_000).map { _ in backoff.delay(forAttempt: 1, using: &generator) }
        #expect(delays.allSatisfy { $0 >= .seconds(6) && $0 <= .seconds(8) })
        #expect(delays.contains { $0 < .milliseconds(6_010) })
        #expect(delays.contains { $0 > .milliseconds(7_990) })
    }

    @Test("the same seed gives the same delays")
    func deterministicForSeed() {
        let backoff = RetryBackoff(base: .seconds(1), maximum: .seconds(3_600))
        var first = SplitMix64(seed: 99)
        var second = SplitMix64(seed: 99)
        let a = (1...30).map { backoff.delay(forAttempt: $0, using: &first) }
        let b = (1...30).map { backoff.delay(forAttempt: $0, using: &second) }
        #expect(a == b)
    }

    @Test("jitter 0 gives exactly the ceiling")
    func zeroJitter() {
        let backoff = RetryBackoff(base: .milliseconds(1_500), maximum: .seconds(1_000), jitter: 0)
        for seed in coreTestSeeds {
            var generator = SplitMix64(seed: seed)
            for attempt in [1, 2, 3, 5, 8, 10, 11, 12, 100, Int.max] {
                #expect(backoff.delay(forAttempt: attempt, using: &generator) == backoff.ceiling(forAttempt: attempt))
            }
        }
    }

    @Test("jitter 0 draws nothing from the generator")
    func zeroJitterConsumesNoRandomness() {
        let backoff = RetryBackoff(base: .seconds(1), maximum: .seconds(10), jitter: 0)
        var used = SplitMix64(seed: 3)
        _ = backoff.delay(forAttempt: 2, using: &used)
        var fresh = SplitMix64(seed: 3)
        #expect(used.next() == fresh.next())
    }

    @Test("default jitter is one half")
    func defaultJitter() {
        #expect(RetryBackoff(base: .seconds(1), maximum: .seconds(2)).jitter == 0.5)
    }
}
