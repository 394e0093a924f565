import JobdCore
import ServiceLifecycle
import Synchronization

/// Group commit: items submitted while a write is in flight go out together in the
/// next write, so under load many items share one statement, and an idle batcher
/// writes a lone item at once (no added latency).
///
/// Contract:
/// - One writer: `run()` takes up to `maxBatch` items in submission order, writes
///   them with `write` (which returns one outcome per item, in order), and repeats
///   until `finish()` was called and nothing is left, or its task is cancelled.
///   Only one `run()` at a time. It runs in a task its owner owns (a task group, or
///   `service` in a `ServiceGroup`), never in a task of a submitter: cancelling a
///   submitter never cancels a write.
/// - `submit` and `submitAndWait` are atomic: an item is either unwritten (counted,
///   listed) and will be written, or refused because the batcher has stopped.
/// - A failed write either keeps its batch in front, in order, and writes it again
///   after a backoff (`.retry`: nothing is dropped while `run()` runs), or hands the
///   error to each of the batch's waiting submitters (`.failSubmitters`).
/// - When `run()` returns, submitters still waiting get `GroupCommitStopped` (or
///   `CancellationError` if `run()` was cancelled); later submissions are refused.
public final class GroupCommitBatcher<Item: Sendable, Outcome: Sendable>: Sendable {
    /// One submitted item as `write` sees it.
    public struct Entry: Sendable {
        public let item: Item
        /// Earlier writes of this item that failed (`.retry` only): such a write may
        /// have committed before its connection broke.
        public let failedWrites: Int
    }

    public enum OnFailure: Sendable {
        /// Keep the batch and write it again after the backoff's delay.
        case retry(RetryBackoff)
        /// Fail the batch's submitters with the error and go on with the next batch.
        case failSubmitters
    }

    private struct Submission {
        var entry: Entry
        var waiter: CheckedContinuation<Outcome, any Error>?
    }
    private struct State {
        var pending: [Submission] = []
        /// The items of the write in flight.
        var inFlight: [Item] = []
        var finishing = false
        /// `run()` has returned: submissions are refused.
        var stopped = false
    }

    public let maxBatch: Int
    private let onFailure: OnFailure
    private let write: @Sendable ([Entry]) async throws -> [Outcome]
    /// Told of each failed write under `.retry`: the error, the failures in a row, the batch size.
    private let onRetry: @Sendable (any Error, Int, Int) -> Void
    private let state = Mutex(State())
    /// Wakes `run()` (a submission, `finish()`); only `run()` waits on it.
    private let wake = WakeSignal()
    /// Signalled after every write; only `waitForBacklog` waits on it.
    private let written = WakeSignal()

    public init(
        maxBatch: Int, onFailure: OnFailure,
        onRetry: @escaping @Sendable (_ error: any Error, _ failuresInARow: Int, _ batchSize: Int) -> Void = { _, _, _ in },
        write: @escaping @Sendable ([Entry]) async throws -> [Outcome]
    ) {
        precondition(maxBatch > 0, "a batch holds at least one item")
        self.maxBatch = maxBatch
        self.onFailure = onFailure
        self.onRetry = onRetry
        self.write = write
    }

    // MARK: Submitting

    /// Queues `item` for the next write and returns at once; false (and nothing
    /// queued) when the batcher has stopped.
    @discardableResult
    public func submit(_ item: Item) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.pending.append(Submission(entry: Entry(item: item, failedWrites: 0), waiter: nil))
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    /// Queues `item` and returns its outcome once it is written, or the write's
    /// error (`.failSubmitters`). Cancelling the caller does not withdraw the item:
    /// it is written anyway, and the caller still waits for the outcome.
    public func submitAndWait(_ item: Item) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.pending.append(Submission(entry: Entry(item: item, failedWrites: 0), waiter: continuation))
                return true
            }
            if accepted {
                wake.signal()
            } else {
                continuation.resume(throwing: GroupCommitStopped())
            }
        }
    }

    // MARK: What is not written yet

    /// Items submitted and not yet taken by a write.
    public var backlog: Int { state.withLock { $0.pending.count } }

    /// Items submitted and not yet written: waiting, or in the write in flight.
    public var unwrittenCount: Int { state.withLock { $0.pending.count + $0.inFlight.count } }

    /// The unwritten items, in flight first, then in submission order.
    public var unwritten: [Item] { state.withLock { $0.inFlight + $0.pending.map(\.entry.item) } }

    /// Whether an unwritten item matches `predicate` (called under the lock: keep it short).
    public func containsUnwritten(where predicate: (Item) -> Bool) -> Bool {
        state.withLock { $0.inFlight.contains(where: predicate) || $0.pending.contains { predicate($0.entry.item) } }
    }

    /// Returns once fewer than `limit` items are unwritten, or when `giveUp` says so
    /// (asked after every write and at least every 100 ms). One waiter at a time.
    public func waitForBacklog(below limit: Int, giveUp: () -> Bool) async {
        while unwrittenCount >= limit && !giveUp() {
            await written.wait(timeout: .milliseconds(100))
        }
    }

    // MARK: Writing

    /// Asks `run()` to return once everything submitted is written.
    public func finish() {
        state.withLock { $0.finishing = true }
        wake.signal()
    }

    /// Writes batches until `finish()` was called and nothing is left, or until the
    /// task is cancelled.
    public func run() async {
        var failures = 0
        var generator = SystemRandomNumberGenerator()
        while true {
            let (batch, stop) = state.withLock { state -> ([Submission], Bool) in
                let count = min(state.pending.count, maxBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                state.inFlight = batch.map(\.entry.item)
                // Decided under the lock that submissions take: nothing can slip in
                // between "nothing left" and "stopped".
                let stop = batch.isEmpty && (state.finishing || Task.isCancelled)
                if stop { state.stopped = true }
                return (batch, stop)
            }
            if stop { return }
            if batch.isEmpty {
                await wake.wait(timeout: .milliseconds(500))
                continue
            }
            let outcomes: [Outcome]
            do {
                outcomes = try await write(batch.map(\.entry))
                precondition(outcomes.count == batch.count, "write returned \(outcomes.count) outcomes for \(batch.count) items")
            } catch {
                switch onFailure {
                case .retry(let backoff):
                    state.withLock { state in
                        state.inFlight = []
                        let again = batch.map {
                            Submission(entry: Entry(item: $0.entry.item, failedWrites: $0.entry.failedWrites + 1), waiter: $0.waiter)
                        }
                        state.pending.insert(contentsOf: again, at: 0)
                    }
                    if Task.isCancelled { return stopAll(CancellationError()) }
                    failures += 1
                    onRetry(error, failures, batch.count)
                    try? await Task.sleep(for: backoff.delay(forAttempt: failures, using: &generator))
                case .failSubmitters:
                    state.withLock { $0.inFlight = [] }
                    written.signal()
                    for submission in batch { submission.waiter?.resume(throwing: error) }
                }
                continue
            }
            failures = 0
            state.withLock { $0.inFlight = [] }
            written.signal()
            for (submission, outcome) in zip(batch, outcomes) { submission.waiter?.resume(returning: outcome) }
        }
    }

    /// Stops accepting items and fails the submitters still waiting.
    private func stopAll(_ error: any Error) {
        let waiting = state.withLock { state -> [CheckedContinuation<Outcome, any Error>] in
            state.stopped = true
            defer { state.pending.removeAll() }
            return state.pending.compactMap(\.waiter)
        }
        for waiter in waiting { waiter.resume(throwing: error) }
    }

    /// `run()` as a service: graceful shutdown calls `finish()`, so the service
    /// returns once everything submitted is written.
    public var service: some Service { GroupCommitService(batcher: self) }
}

/// The batcher has stopped (its service ended): the item was not queued.
public struct GroupCommitStopped: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the group-commit batcher has stopped (shutdown)" }
}

private struct GroupCommitService<Item: Sendable, Outcome: Sendable>: Service {
    let batcher: GroupCommitBatcher<Item, Outcome>

    func run() async throws {
        await withGracefulShutdownHandler {
            await batcher.run()
        } onGracefulShutdown: {
            batcher.finish()
        }
    }
}
