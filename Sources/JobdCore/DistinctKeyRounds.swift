/// Splits a group-commit batch so that no statement carries two entries with the
/// same key: `round` holds the first entry of each key (in order), `later` the
/// rest, which go in a later statement and then meet the earlier entry's result,
/// as they would had they run one after the other.
public enum DistinctKeyRounds {
    public static func split<Key: Hashable>(_ indices: [Int], key: (Int) -> Key) -> (round: [Int], later: [Int]) {
        var seen: Set<Key> = []
        var round: [Int] = [], later: [Int] = []
        for index in indices {
            if seen.insert(key(index)).inserted { round.append(index) } else { later.append(index) }
        }
        return (round, later)
    }

    /// Runs `items` in rounds of distinct keys (`split`), each round's items in
    /// order through `round`, which returns one outcome per item; the outcomes come
    /// back in `items`' order.
    public static func run<Item, Key: Hashable, Outcome>(
        _ items: [Item], key: (Item) -> Key, round: ([Item]) async throws -> [Outcome]
    ) async rethrows -> [Outcome] {
        var outcomes = [Outcome?](repeating: nil, count: items.count)
        var remaining = Array(items.indices)
        while !remaining.isEmpty {
            let (indices, later) = split(remaining) { key(items[$0]) }
            let done = try await round(indices.map { items[$0] })
            for (index, outcome) in zip(indices, done) { outcomes[index] = outcome }
            remaining = later
        }
        return outcomes.map { $0! }
    }
}
