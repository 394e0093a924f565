import JobdThreads
import Synchronization
import Testing

/// Resources lent at the same time, and the most ever lent at once.
private final class Lending: Sendable {
    private struct State {
        var held: Set<Int> = []
        var peak = 0
        var doubleLent = 0
    }
    private let state = Mutex(State())

    func take(_ resource: Int) {
        state.withLock { state in
            if !state.held.insert(resource).inserted { state.doubleLent += 1 }
            state.peak = max(state.peak, state.held.count)
        }
    }

    func give(_ resource: Int) { state.withLock { _ = $0.held.remove(resource) } }
    var peak: Int { state.withLock { $0.peak } }
    var doubleLent: Int { state.withLock { $0.doubleLent } }
}

/// Waits (briefly yielding) until `condition` holds; fails the test after `seconds`.
private func eventually(_ what: String, within seconds: Double = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        await Task.yield()
    }
}

@Suite("CheckoutPool")
struct CheckoutPoolTests {
    @Test("lends the first resource first and each to one borrower at a time")
    func lendsInOrder() async throws {
        let pool = CheckoutPool([10, 20, 30])
        #expect(try await pool.checkOut() == 10)
        #expect(try await pool.checkOut() == 20)
        #expect(pool.available == 1)
        pool.checkIn(10)
        #expect(try await pool.checkOut() == 10)
    }

    @Test("64 borrowers on 3 resources: never more than 3 lent, none lent twice, all back at the end")
    func concurrentCheckoutAndReturn() async throws {
        let pool = CheckoutPool([0, 1, 2])
        let lending = Lending()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<50 {
                        try await pool.withResource { resource in
                            lending.take(resource)
                            await Task.yield()
                            lending.give(resource)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(lending.peak == 3)
        #expect(lending.doubleLent == 0)
        #expect(pool.available == 3)
        #expect(pool.waiting == 0)
    }

    @Test("a borrower cancelled while it waits leaves the line at once with CancellationError and holds nothing")
    func cancelledWaiter() async throws {
        let pool = CheckoutPool([7])
        let held = try await pool.checkOut()
        let waiter = Task { try await pool.checkOut() }
        try await eventually("the waiter to queue") { pool.waiting == 1 }
        waiter.cancel()
        // Returns before the resource comes back: the wait itself ends on cancellation.
        let result = await waiter.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(pool.waiting == 0)
        pool.checkIn(held)
        // The resource went back to the pool, not to the cancelled waiter.
        #expect(pool.available == 1)
        #expect(try await pool.checkOut() == 7)
    }

    @Test("a task cancelled before it asks gets CancellationError when nothing is free, a resource when one is")
    func cancelledBeforeAsking() async throws {
        let pool = CheckoutPool([1])
        let free = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await pool.checkOut()
        }.result
        #expect(try free.get() == 1)
        let busy = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await pool.checkOut()
        }.result
        #expect(throws: CancellationError.self) { try busy.get() }
        #expect(pool.waiting == 0)
    }

    @Test("no lost wake-up: check-ins racing with waits and cancellations leave every resource back and nobody waiting")
    func noLostWakeUp() async throws {
        for round in 0..<200 {
            let pool = CheckoutPool([0, 1])
            let a = try await pool.checkOut(), b = try await pool.checkOut()
            // Four waiters; two of them are cancelled while the two resources come back.
            let waiters = (0..<4).map { _ in
                Task { () -> Int? in
                    guard let resource = try? await pool.checkOut() else { return nil }
                    await Task.yield()
                    pool.checkIn(resource)
                    return resource
                }
            }
            if round % 2 == 0 { try await eventually("the waiters to queue") { pool.waiting == 4 } }
            async let returnA: Void = pool.checkIn(a)
            waiters[1].cancel()
            async let returnB: Void = pool.checkIn(b)
            waiters[3].cancel()
            _ = await (returnA, returnB)
            var served = 0
            for waiter in waiters where await waiter.value != nil { served += 1 }
            // Uncancelled waiters always get a resource; cancelled ones may have been
            // served just before their cancellation, and then checked it in too.
            #expect(served >= 2)
            #expect(pool.available == 2, "round \(round): a resource was lost")
            #expect(pool.waiting == 0)
        }
    }
}
