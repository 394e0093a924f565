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
}
