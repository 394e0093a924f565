#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A serial executor that runs every job on one thread of its own.
///
/// Blocking C clients (libpq, hiredis) must never block Swift's cooperative pool,
/// which has only as many threads as cores. An actor whose `unownedExecutor` is one
/// of these runs all of its methods on a dedicated pthread, so a blocking call
/// inside a method blocks only that thread, and the connection it owns has exactly
/// one owner for its whole life.
public final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked Sendable: `queue` and `stopped` are only touched while holding
    // `mutex`; `thread` is written once in init before any other thread sees self.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var queue: [UnownedJob] = []
    private var stopped = false
    private var thread = pthread_t()
    public let name: String

    public init(name: String) {
        self.name = name
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { raw in
            let executor = Unmanaged<DedicatedThreadExecutor>.fromOpaque(raw!).takeRetainedValue()
            executor.loop()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed for \(name): \(rc)")
        pthread_detach(thread)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        pthread_mutex_lock(&mutex)
        queue.append(unowned)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Ends the thread once the jobs already queued have run.
    public func shutdown() {
        pthread_mutex_lock(&mutex)
        stopped = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    private func loop() {
        while true {
            pthread_mutex_lock(&mutex)
            while queue.isEmpty && !stopped {
                pthread_cond_wait(&condition, &mutex)
            }
            if queue.isEmpty && stopped {
                pthread_mutex_unlock(&mutex)
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(&mutex)
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }
}
