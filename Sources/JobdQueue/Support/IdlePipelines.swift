import JobdThreads
import Synchronization

/// Which claim pipelines of a worker pool are free (a `CheckoutPool` of their
/// indices), and how many claims failed in a row.
final class IdlePipelines: Sendable {
    private let pool: CheckoutPool<Int>
    private let failures = Atomic<Int>(0)

    init(count: Int) {
        pool = CheckoutPool(Array(0..<count))
    }

    /// A free pipeline, waiting for one if need be; nil when the task is cancelled
    /// while it waits.
    func checkOut() async -> Int? { try? await pool.checkOut() }

    func checkIn(_ pipeline: Int) { pool.checkIn(pipeline) }

    func recordSuccess() { failures.store(0, ordering: .relaxed) }

    /// Counts a failed claim; returns the failures in a row.
    func recordFailure() -> Int { failures.wrappingAdd(1, ordering: .relaxed).newValue }
}
