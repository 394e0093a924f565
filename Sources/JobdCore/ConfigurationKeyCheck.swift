/// Finds configuration names the daemon does not read — `JOBD_*` environment
/// variables and top-level keys of the config file — and the known key each was
/// probably meant to be. A typo (`JOBD_LEESE=30`) is otherwise silently ignored
/// and the default applies; the daemon warns about each one at start.
///
/// Pure: the caller passes the environment's names and the file's text.
public enum ConfigurationKeyCheck {
    public enum Source: String, Sendable {
        case environment
        case file
    }

    /// One name nobody reads.
    public struct Unknown: Sendable, Equatable {
        public var name: String
        /// The known key nearest by edit distance (in the same spelling as `name`:
        /// `JOBD_LEASE` for the environment, `lease` for the file).
        public var closest: String
        public var source: Source

        public init(name: String, closest: String, source: Source) {
            self.name = name
            self.closest = closest
            self.source = source
        }
    }

    /// Environment variables with the `JOBD_` prefix that are not configuration keys
    /// but are read by the test harness and scripts; never warned about.
    public static let harnessVariables: Set<String> = [
        "JOBD_BIN", "JOBD_KEEP_SERVERS", "JOBD_PG_PORT", "JOBD_REDIS_PORT", "JOBD_SERVERS_DIR",
    ]
    /// Prefix of test-only variables (`JOBD_TEST_FAULTS`, `JOBD_TEST_DATABASE_URL`, …).
    public static let testPrefix = "JOBD_TEST_"

    /// The `JOBD_*` names in `environmentNames` that are neither keys nor harness
    /// variables, sorted, each with its closest key.
    public static func unknownEnvironment(_ environmentNames: some Sequence<String>, known: [String]) -> [Unknown] {
        let knownSet = Set(known)
        return environmentNames
            .filter { $0.hasPrefix("JOBD_") && !knownSet.contains($0) && !harnessVariables.contains($0) && !$0.hasPrefix(testPrefix) }
            .sorted()
            .map { Unknown(name: $0, closest: closest(to: $0, among: known) ?? "", source: .environment) }
    }

    /// The top-level keys of `yaml` that are not file keys, in file order.
    public static func unknownFileKeys(_ yaml: String, known: [String]) -> [Unknown] {
        let knownSet = Set(known)
        var seen: Set<String> = []
        return topLevelKeys(yaml)
            .filter { !knownSet.contains($0) && seen.insert($0).inserted }
            .map { Unknown(name: $0, closest: closest(to: $0, among: known) ?? "", source: .file) }
    }

    /// Keys of the top-level mapping of a block-style YAML document: lines that start
    /// in column 0 with `key:`. Comments, indented lines (values, list items, nested
    /// mappings) and block-scalar content are skipped. Quoted keys are unquoted.
    public static func topLevelKeys(_ yaml: String) -> [String] {
        var keys: [String] = []
        for rawLine in yaml.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            guard let first = rawLine.first, !first.isWhitespace, first != "#", first != "-",
                  !rawLine.hasPrefix("---"), !rawLine.hasPrefix("...") else { continue }
            var line = Substring(rawLine)
            var key: Substring
            if let quote = line.first, quote == "\"" || quote == "'" {
                line = line.dropFirst()
                guard let end = line.firstIndex(of: quote) else { continue }
                key = line[..<end]
                line = line[line.index(after: end)...]
                guard line.drop(while: { $0 == " " }).first == ":" else { continue }
            } else {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let after = line.index(after: colon)
                // `key: value` or `key:` at the end of the line; a colon inside a plain
                // scalar (`a:b`) does not end a key.
                guard after == line.endIndex || line[after] == " " || line[after] == "\t" else { continue }
                key = line[..<colon]
                while key.last == " " || key.last == "\t" { key = key.dropLast() }
            }
            if !key.isEmpty { keys.append(String(key)) }
        }
        return keys
    }

    /// The candidate nearest to `name` by Levenshtein distance, compared without
    /// case; ties go to the earlier candidate. Nil only when there are no candidates.
    public static func closest(to name: String, among candidates: [String]) -> String? {
        let target = Array(name.uppercased().unicodeScalars)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.uppercased().unicodeScalars))
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.candidate
    }

    /// Levenshtein distance (insertions, deletions, substitutions each cost 1).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        editDistance(Array(a.unicodeScalars), Array(b.unicodeScalars))
    }

    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
