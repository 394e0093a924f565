import JobdCore
import JobdQueue
import Synchronization
import Testing

/// The writes a batcher made, and a switch that holds the next write until released.
private final class Writes: Sendable {
    private struct State {
        var batches: [[Int]] = []
        var failedWrites: [[Int]] = []
        var holding = false
        var held: [CheckedContinuation<Void, Never>] = []
        var failuresToInject = 0
        var started = 0
    }
    private let state = Mutex(State())

    struct Injected: Error, Equatable {}

    var batches: [[Int]] { state.withLock { $0.batches } }
    var failedWrites: [[Int]] { state.withLock { $0.failedWrites } }
    var started: Int { state.withLock { $0.started } }

    func hold() { state.withLock { $0.holding = true } }
    func release() {
        let held = state.withLock { state in
            state.holding = false
            defer { state.held = [] }
            return state.held
        }
        held.forEach { $0.resume() }
    }
    func failNext(_ count: Int) { state.withLock { $0.failuresToInject = count } }

    /// The batcher's write: items doubled, or the injected failure.
    func write(_ entries: [GroupCommitBatcher<Int, Int>.Entry]) async throws -> [Int] {
        await withCheckedContinuation { continuation in
            let wait = state.withLock { state -> Bool in
                state.started += 1
                if state.holding { state.held.append(continuation) }
                return state.holding
            }
            if !wait { continuation.resume() }
        }
        let fail = state.withLock { state -> Bool in
            state.failedWrites.append(entries.map(\.failedWrites))
            guard state.failuresToInject > 0 else {
                state.batches.append(entries.map(\.item))
                return false
            }
            state.failuresToInject -= 1
            return true
        }
        if fail { throw Injected() }
        return entries.map { $0.item * 2 }
    }
}

private func eventually(_ what: String, within seconds: Double = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}

private func batcher(
    _ writes: Writes, maxBatch: Int = 100, onFailure: GroupCommitBatcher<Int, Int>.OnFailure = .failSubmitters
) -> GroupCommitBatcher<Int, Int> {
    GroupCommitBatcher(maxBatch: maxBatch, onFailure: onFailure) { try await writes.write($0) }
}

@Suite("GroupCommitBatcher")
struct GroupCommitBatcherTests {
    @Test("an idle batcher writes one item at once; items submitted during a write go out together in the next")
    func batching() async throws {
        let writes = Writes()
        let batcher = batcher(writes)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await batcher.run() }
            #expect(try await batcher.submitAndWait(1) == 2)
            writes.hold()
            batcher.submit(2)
            try await eventually("the second write to start") { writes.started == 2 }
            for item in 3...10 { batcher.submit(item) }
            #expect(batcher.unwrittenCount == 9)
            #expect(batcher.backlog == 8)
            writes.release()
            try await eventually("everything written") { batcher.unwrittenCount == 0 }
            batcher.finish()
            try await group.waitForAll()
        }
        #expect(writes.batches == [[1], [2], Array(3...10)])
    }

    @Test("items are written in submission order, at most maxBatch per write")
    func ordering() async throws {
        let writes = Writes()
        let batcher = batcher(writes, maxBatch: 7)
        writes.hold()
        for item in 0..<30 { batcher.submit(item) }
        #expect(batcher.unwritten == Array(0..<30))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await batcher.run() }
            writes.release()
            batcher.finish()
        }
        #expect(writes.batches.flatMap { $0 } == Array(0..<30))
        #expect(writes.batches.allSatisfy { $0.count <= 7 })
        #expect(writes.batches.count == 5)
    }

    @Test("failSubmitters: a failed write throws its error to each waiting submitter; the next batch is written")
    func failurePropagates() async throws {
        let writes = Writes()
        let batcher = batcher(writes)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await batcher.run() }
            writes.failNext(1)
            await #expect(throws: Writes.Injected.self) { try await batcher.submitAndWait(5) }
            #expect(try await batcher.submitAndWait(6) == 12)
            #expect(batcher.unwrittenCount == 0)
            batcher.finish()
            try await group.waitForAll()
        }
        #expect(writes.batches == [[6]])
    }

    @Test("retry: a failed batch stays unwritten, in front and in order, and is written again with its failures counted")
    func retryKeepsTheBatch() async throws {
        let writes = Writes()
        let batcher = batcher(writes, onFailure: .retry(RetryBackoff(base: .milliseconds(1), maximum: .milliseconds(2))))
        writes.failNext(2)
        writes.hold()
        for item in [1, 2, 3] { batcher.submit(item) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await batcher.run() }
            try await eventually("the first write to start") { writes.started == 1 }
            batcher.submit(4)
            writes.release()
            try await eventually("everything written") { batcher.unwrittenCount == 0 }
            batcher.finish()
            try await group.waitForAll()
        }
        // [1, 2, 3] fails; the retry puts it back in front of 4, which joins the next
        // write; that fails too, and the third writes all four in order.
        #expect(writes.failedWrites == [[0, 0, 0], [1, 1, 1, 0], [2, 2, 2, 1]])
        #expect(writes.batches == [[1, 2, 3, 4]])
    }

    @Test("shutdown: finish() during a write still writes everything submitted; afterwards submissions are refused")
    func shutdownFlushes() async throws {
        let writes = Writes()
        let batcher = batcher(writes, maxBatch: 3)
        writes.hold()
        batcher.submit(0)
        let run = Task { await batcher.run() }
        try await eventually("the first write to start") { writes.started == 1 }
        for item in 1..<10 { batcher.submit(item) }
        batcher.finish()
        writes.release()
        await run.value
        #expect(writes.batches.flatMap { $0 } == Array(0..<10))
        #expect(batcher.unwrittenCount == 0)
        #expect(batcher.submit(11) == false)
        await #expect(throws: GroupCommitStopped.self) { try await batcher.submitAndWait(12) }
        #expect(batcher.unwrittenCount == 0)
    }

    @Test("a cancelled run() fails the submitters still waiting instead of leaving them hanging")
    func cancelledRunFailsWaiters() async throws {
        let writes = Writes()
        let batcher = batcher(writes, onFailure: .retry(RetryBackoff(base: .seconds(1), maximum: .seconds(1))))
        writes.failNext(1_000)
        let waiter = Task { try await batcher.submitAndWait(1) }
        let run = Task { await batcher.run() }
        try await eventually("a failed write") { writes.started >= 1 }
        run.cancel()
        await run.value
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }

    @Test("waitForBacklog returns once a write brings the unwritten count below the limit, or on giveUp")
    func backlogWait() async throws {
        let writes = Writes()
        let batcher = batcher(writes)
        writes.hold()
        for item in 0..<5 { batcher.submit(item) }
        let gaveUp = Mutex(false)
        await batcher.waitForBacklog(below: 5) { gaveUp.withLock { $0 = true; return true } }
        #expect(gaveUp.withLock { $0 })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await batcher.run() }
            group.addTask {
                try await eventually("the write to start") { writes.started == 1 }
                writes.release()
            }
            await batcher.waitForBacklog(below: 1) { false }
            #expect(batcher.unwrittenCount == 0)
            batcher.finish()
            try await group.waitForAll()
        }
    }
}
