/// The three dispatch lanes. Stored as text in `queue.jobs.priority`
/// (a CHECK constraint rejects anything else) and mapped to one Redis list each.
public enum JobPriority: String, CaseIterable, Sendable, Hashable, Comparable, Codable {
    case high
    case normal
    case low

    /// 0 is served first in strict mode.
    public var rank: Int {
        switch self {
        case .high: 0
        case .normal: 1
        case .low: 2
        }
    }

    public static func < (lhs: JobPriority, rhs: JobPriority) -> Bool { lhs.rank < rhs.rank }

    public init(parsing text: String) throws(JobdInputError) {
        guard let value = JobPriority(rawValue: text) else {
            throw JobdInputError("priority must be one of high, normal, low (got \"\(text)\")")
        }
        self = value
    }
}

/// A plain, user-facing input error: the message names the culprit.
public struct JobdInputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
