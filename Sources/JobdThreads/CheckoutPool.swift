import Synchronization

/// Lends a fixed set of resources (tier connections, libcurl transfer workers, claim
/// pipelines) to one borrower at a time, in arrival order.
///
/// Contract:
/// - `checkOut()` returns a free resource at once, or waits in line for one.
/// - `checkIn(_:)` hands the resource straight to the longest-waiting borrower, or
///   puts it back; both happen under one lock, so a resource is never free while
///   someone waits for it (no lost wake-up) and never lent twice.
/// - A borrower cancelled while it waits leaves the line and gets
///   `CancellationError`; it holds nothing. A borrower that was handed a resource
///   just before its cancellation keeps it and must check it in.
/// - Every resource checked out must be checked in exactly once (`withResource`
///   does that).
public final class CheckoutPool<Resource: Sendable>: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Resource, any Error>
    }
    private struct State {
        /// Free resources; the last is lent next.
        var free: [Resource]
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
    }
    private enum FastPath {
        case lent(Resource)
        case wait(UInt64)
    }
    private let state: Mutex<State>

    /// A pool lending `resources`, the first of them first.
    public init(_ resources: [Resource]) {
        state = Mutex(State(free: resources.reversed()))
    }

    /// Resources free right now.
    public var available: Int { state.withLock { $0.free.count } }
    /// Borrowers waiting in line right now.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// A free resource, waiting in line for one if need be. Throws only
    /// `CancellationError`, when the task is cancelled before it got one.
    public func checkOut() async throws -> Resource {
        // One lock: take a free resource, or a ticket that names this wait.
        let id: UInt64
        switch state.withLock({ state -> FastPath in
            if let resource = state.free.popLast() { return .lent(resource) }
            defer { state.nextWaiter &+= 1 }
            return .wait(state.nextWaiter)
        }) {
        case .lent(let resource): return resource
        case .wait(let ticket): id = ticket
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Resource, any Error>) in
                let now: Result<Resource, CancellationError>? = state.withLock { state in
                    // Checked under the lock that onCancel takes: a cancellation either
                    // finds this waiter in line or is seen here.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let resource = state.free.popLast() { return .success(resource) }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let now { continuation.resume(with: now.mapError { $0 as any Error }) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Returns a resource: to the first borrower in line, or to the free set.
    public func checkIn(_ resource: Resource) {
        let waiter = state.withLock { state -> Waiter? in
            if state.waiters.isEmpty {
                state.free.append(resource)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: resource)
    }

    /// Runs `body` with a resource of its own and checks it in afterwards, however
    /// `body` ends. Throws `CancellationError` if cancelled while waiting.
    public func withResource<T>(_ body: (Resource) async throws -> T) async throws -> T {
        let resource = try await checkOut()
        defer { checkIn(resource) }
        return try await body(resource)
    }
}
