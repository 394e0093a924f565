import JobdThreads
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An actor whose methods run on one dedicated thread.
private actor Pinned {
    let executor = DedicatedThreadExecutor(name: "test-pinned")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var order: [Int] = []
    private var threads: Set<UInt> = []

    func record(_ value: Int) {
        order.append(value)
        threads.insert(UInt(pthread_self()))
    }

    var seen: (order: [Int], threads: Int) { (order, threads.count) }
    deinit { executor.shutdown() }
}

/// Two actors sharing one executor, as a claim pipeline's connections do.
private actor Sharer {
    let executor: DedicatedThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(_ executor: DedicatedThreadExecutor) { self.executor = executor }

    func thread() -> UInt { UInt(pthread_self()) }

    /// This actor's thread, then `other`'s, seen from inside one call of this actor.
    func threads(calling other: Sharer) async -> [UInt] {
        [UInt(pthread_self()), await other.thread(), UInt(pthread_self())]
    }
}

@Suite("DedicatedThreadExecutor")
struct DedicatedThreadExecutorTests {
    @Test("jobs from many tasks all run, one at a time, on one thread")
    func runsSeriallyOnOneThread() async throws {
        let pinned = Pinned()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<32 {
                group.addTask {
                    for step in 0..<100 { await pinned.record(task * 1000 + step) }
                }
            }
        }
        let seen = await pinned.seen
        #expect(seen.order.count == 3200)
        #expect(Set(seen.order).count == 3200)
        #expect(seen.threads == 1)
        // Each task's own calls arrive in the order it made them.
        for task in 0..<32 {
            let mine = seen.order.filter { $0 / 1000 == task }
            #expect(mine == mine.sorted())
        }
    }

    @Test("actors sharing an executor run on its one thread, and the thread ends only after every owner's shutdown")
    func sharedByTwoOwners() async throws {
        let executor = DedicatedThreadExecutor(name: "test-shared")
        let first = Sharer(executor)
        let second = Sharer(executor.share())
        let threads = await first.threads(calling: second)
        #expect(Set(threads).count == 1)
        #expect(threads[0] != UInt(pthread_self()))
        // One owner done: the other's calls still run.
        executor.shutdown()
        #expect(await second.thread() == threads[0])
        executor.shutdown()
    }
}
