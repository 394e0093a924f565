/// Chooses the order in which a fetcher looks at the priority lists.
///
/// `strict` always serves high, then normal, then low: simple, but a steady stream
/// of high jobs starves low forever. `weighted` uses smooth weighted round-robin
/// (the nginx upstream algorithm): each lane earns its weight in credit every turn,
/// the richest lane goes first and pays the total back. With weights 6/3/1, low
/// leads one fetch in ten whatever the backlog of the others, so it never starves,
/// and the leads are interleaved rather than bunched.
public struct PrioritySelector: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case strict
        case weighted([JobPriority: Int])
    }

    public let lanes: [JobPriority]
    public let mode: Mode
    private var credit: [JobPriority: Int]

    /// `lanes` are the priorities this pool serves (all three for a shared pool).
    public init(mode: Mode, lanes: [JobPriority] = JobPriority.allCases) {
        precondition(!lanes.isEmpty, "a pool serves at least one priority")
        self.lanes = lanes.sorted()
        self.mode = mode
        self.credit = Dictionary(uniqueKeysWithValues: lanes.map { ($0, 0) })
    }

    /// The lists to try, first choice first. Lanes after the first stay in strict
    /// order so an idle lead lane falls back to the most urgent work.
    public mutating func nextOrder() -> [JobPriority] {
        guard case .weighted(let weights) = mode, lanes.count > 1 else { return lanes }
        var total = 0
        var best: JobPriority?
        for lane in lanes {
            // Clamped so that credits (at most lanes × weight) can never overflow.
            let weight = min(max(0, weights[lane] ?? 0), 1_000_000)
            total += weight
            credit[lane, default: 0] += weight
            if let current = best {
                if credit[lane, default: 0] > credit[current, default: 0] { best = lane }
            } else {
                best = lane
            }
        }
        guard let lead = best, total > 0 else { return lanes }
        credit[lead, default: 0] -= total
        return [lead] + lanes.filter { $0 != lead }
    }
}
