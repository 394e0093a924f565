#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A serial executor that runs every job on one thread of its own.
///
/// Blocking C clients (libpq, hiredis, libcurl) must never block Swift's cooperative
/// pool, which has only as many threads as cores. An actor whose `unownedExecutor`
/// is one of these runs all of its methods on a dedicated pthread, so a blocking call
/// inside a method blocks only that thread, and the connection it owns has exactly
/// one owner for its whole life.
///
/// Several actors may share one executor (`share()`): they then run one at a time on
/// its thread, and a call from one to another runs inline, with no hand-off to a
/// thread (Swift's runtime does not switch when the executor is the same). The
/// thread ends once every owner called `shutdown()`.
public final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: `queue`, `stopped` and `owners` are only read or written between
    // `signal.lock()` and `signal.unlock()`; `name` and `signal` are immutable.
    private let signal = ThreadSignal()
    private var queue: [UnownedJob] = []
    private var stopped = false
    /// Owners that have not called `shutdown()` yet.
    private var owners = 1
    public let name: String

    public init(name: String) {
        self.name = name
        // The thread holds a strong reference until its loop returns, so `signal`
        // (destroyed in ThreadSignal's deinit) outlives every use on that thread.
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let executor = Unmanaged<DedicatedThreadExecutor>.fromOpaque(raw!).takeRetainedValue()
            executor.loop()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed for \(name): \(rc)")
        pthread_detach(thread)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        signal.lock()
        queue.append(unowned)
        signal.wake()
        signal.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// One more owner for this executor (an actor that will run on its thread and
    /// call `shutdown()` when done); returns the executor itself.
    public func share() -> DedicatedThreadExecutor {
        signal.lock()
        precondition(!stopped, "sharing \(name) after its thread ended")
        owners += 1
        signal.unlock()
        return self
    }

    /// One owner is done with the executor. When it was the last, the thread ends
    /// once the jobs already queued have run.
    public func shutdown() {
        signal.lock()
        owners -= 1
        if owners <= 0 {
            stopped = true
            signal.wake()
        }
        signal.unlock()
    }

    private func loop() {
        while true {
            signal.lock()
            while queue.isEmpty && !stopped {
                signal.wait()
            }
            if queue.isEmpty && stopped {
                signal.unlock()
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            signal.unlock()
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }
}

/// A pthread mutex and the condition variable that waits on it, at addresses that
/// never move.
///
/// Contract: pthread objects must stay at the address they were initialised at
/// until they are destroyed. Swift promises no stable address for a stored
/// property (`&property` may pass a temporary copy), so both live in memory
/// allocated once in `init` and freed in `deinit`; nothing else ever points at them.
///
/// Why not `Synchronization.Mutex`: the executor's thread must sleep until a job
/// arrives, which needs a condition variable bound to the very mutex that guards the
/// queue. `Mutex` exposes neither its platform lock nor a wait, so a condition
/// cannot be used with it (a spin or a sleep loop would be the alternatives).
final class ThreadSignal {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deinitialize(count: 1)
        condition.deallocate()
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Atomically unlocks, sleeps until `wake()` (or spuriously), and locks again.
    /// Call with the lock held, in a loop that re-checks the condition.
    func wait() { pthread_cond_wait(condition, mutex) }
    /// Wakes one waiter; call with the lock held.
    func wake() { pthread_cond_signal(condition) }
}
