/// A completion batch as the columns `queue.complete_batch` takes: one array per
/// field, element `i` of each describing `batch[i]`, bound in PostgreSQL's binary
/// array format (`QueueJobsStatements.Complete`). No number becomes text on either
/// side, which the JSON document it replaces spent most of its parse on (migration
/// `…_queue_completion_arrays`).
///
/// Contract: every value here is one the server takes, so that no completion can
/// make the batch it travels in fail on every retry: the seconds are finite
/// (non-finite ones are 0, as a run or wait time is never anything else) and the
/// texts hold no NUL (U+FFFD instead: PostgreSQL refuses NUL in text).
public struct CompletionColumns: Sendable, Equatable {
    public private(set) var ids: [Int64] = []
    public private(set) var attempts: [Int32] = []
    public private(set) var tokens: [Int64] = []
    public private(set) var outcomes: [String] = []
    /// Seconds until due again (retry and snooze); 0 otherwise.
    public private(set) var delays: [Double] = []
    public private(set) var codes: [String?] = []
    public private(set) var errors: [String?] = []
    /// The handler's run time, seconds.
    public private(set) var runs: [Double] = []
    /// The attempt's queue wait as its claim reported it, seconds.
    public private(set) var waits: [Double] = []
    /// A snooze that keeps its place (`AttemptCompletion.keepsPlace`).
    public private(set) var places: [Bool] = []

    public init(_ batch: [AttemptCompletion]) {
        ids.reserveCapacity(batch.count)
        attempts.reserveCapacity(batch.count)
        tokens.reserveCapacity(batch.count)
        outcomes.reserveCapacity(batch.count)
        delays.reserveCapacity(batch.count)
        codes.reserveCapacity(batch.count)
        errors.reserveCapacity(batch.count)
        runs.reserveCapacity(batch.count)
        waits.reserveCapacity(batch.count)
        places.reserveCapacity(batch.count)
        for completion in batch {
            ids.append(completion.fence.id)
            // The attempt column is an int4 with a CHECK far below Int32.max; a fence
            // never holds more than the claim returned.
            attempts.append(Int32(clamping: completion.fence.attempt))
            tokens.append(completion.fence.token)
            outcomes.append(completion.outcome.rawValue)
            delays.append(Self.finite(completion.delay.seconds))
            codes.append(completion.errorCode.map(Self.withoutNUL))
            errors.append(completion.errorMessage.map(Self.withoutNUL))
            runs.append(Self.finite(completion.runSeconds))
            waits.append(Self.finite(completion.queueWaitSeconds))
            places.append(completion.keepsPlace)
        }
    }

    public var count: Int { ids.count }

    static func finite(_ value: Double) -> Double {
        value.isFinite ? value : 0
    }

    static func withoutNUL(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 }))
    }
}
