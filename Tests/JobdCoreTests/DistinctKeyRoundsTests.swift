import JobdCore
import Testing

@Suite("Distinct-key rounds")
struct DistinctKeyRoundsTests {
    @Test("the first entry of each key goes in this round, in order; repeats wait for a later one")
    func split() {
        let keys = ["a", "b", "a", "c", "b", "a"]
        let first = DistinctKeyRounds.split(Array(keys.indices)) { keys[$0] }
        #expect(first.round == [0, 1, 3])
        #expect(first.later == [2, 4, 5])
        let second = DistinctKeyRounds.split(first.later) { keys[$0] }
        #expect(second.round == [2, 4])
        #expect(second.later == [5])
        #expect(DistinctKeyRounds.split([]) { keys[$0] } == ([], []))
    }

    @Test("run: each round holds distinct keys in order, and outcomes come back in the items' order")
    func run() async {
        let items = ["a1", "b1", "a2", "c1", "b2", "a3"]
        var rounds: [[String]] = []
        let outcomes = await DistinctKeyRounds.run(items, key: { $0.prefix(1) }) { round in
            rounds.append(round)
            return round.map { $0.uppercased() }
        }
        #expect(rounds == [["a1", "b1", "c1"], ["a2", "b2"], ["a3"]])
        #expect(outcomes == items.map { $0.uppercased() })
    }
}
