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
}
