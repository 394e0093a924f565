/// How many rows a bulk action's next step takes, steered so that each step (one
/// transaction holding its rows' locks and writing their index entries) lasts about
/// `target`, whatever the host's load: a fixed row count is milliseconds on a quiet
/// host and seconds on a loaded one.
///
/// A pure value: the caller times each step with its clock and reports the rows it
/// asked for and the time it took. The rule:
/// - a step longer than `target.upperBound` shrinks the next one to the rows that the
///   measured rate does in the target's middle (at least halving it);
/// - a full step shorter than `target.lowerBound` grows the next one toward that same
///   rate, at most doubling it (a step that was fast by chance does not jump far);
/// - inside the target, the size stays.
/// The size stays within `limits` (the upper limit is the action's `batch`).
public struct BulkStepSizer: Sendable, Equatable {
    public let target: ClosedRange<Duration>
    public let limits: ClosedRange<Int>
    /// The rows the next step asks for.
    public private(set) var size: Int

    public static let defaultTarget: ClosedRange<Duration> = .milliseconds(100) ... .milliseconds(250)

    /// Starts at `initial` (clamped to `limits`): small, so the first step on a loaded
    /// host is short; a quiet host reaches the upper limit in a few doublings.
    public init(target: ClosedRange<Duration> = defaultTarget, limits: ClosedRange<Int>, initial: Int = 100) {
        precondition(target.lowerBound > .zero, "a step's target duration is positive")
        precondition(limits.lowerBound >= 1, "a step takes at least one row")
        self.target = target
        self.limits = limits
        self.size = min(max(initial, limits.lowerBound), limits.upperBound)
    }

    /// Records a step that asked for `asked` rows, worked through `rows` of them and
    /// took `elapsed`. A step that found fewer rows than it asked for was the last one
    /// (or near it); only a slow one says anything then, so only slowness shrinks.
    public mutating func record(asked: Int, rows: Int, elapsed: Duration) {
        let middle = (target.lowerBound + target.upperBound) / 2
        if elapsed > target.upperBound {
            let atRate = Self.rows(max(rows, 1), in: elapsed, scaledTo: middle)
            size = clamp(min(atRate, asked / 2))
        } else if elapsed < target.lowerBound, rows >= asked {
            let atRate = elapsed > .zero ? Self.rows(rows, in: elapsed, scaledTo: middle) : asked * 2
            size = clamp(max(asked, min(atRate, asked * 2)))
        }
    }

    private func clamp(_ value: Int) -> Int { min(max(value, limits.lowerBound), limits.upperBound) }

    /// `rows` done in `elapsed`, done at the same rate in `duration`.
    private static func rows(_ rows: Int, in elapsed: Duration, scaledTo duration: Duration) -> Int {
        let ratio = duration / elapsed
        guard ratio.isFinite else { return Int.max / 2 }
        return Int(min(Double(rows) * ratio, Double(Int.max / 2)))
    }
}
