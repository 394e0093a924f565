#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a bounded wait on a socket saw.
public enum SocketReadiness: Sendable, Equatable {
    case ready
    case timedOut
    case failed(errno: Int32)
}

/// Waits until `fd` is readable (or writable) for at most `milliseconds`.
///
/// Used by the adapters to give every blocking C call a deadline: they issue the
/// request without blocking, then wait here in short slices so that cancellation
/// can be checked between slices.
public func waitForSocket(_ fd: Int32, writable: Bool = false, milliseconds: Int) -> SocketReadiness {
    var descriptor = pollfd(fd: fd, events: Int16(writable ? POLLOUT : POLLIN), revents: 0)
    while true {
        let rc = poll(&descriptor, 1, Int32(clamping: max(0, milliseconds)))
        if rc > 0 { return .ready }
        if rc == 0 { return .timedOut }
        if errno == EINTR { continue }
        return .failed(errno: errno)
    }
}

/// Monotonic milliseconds, for deadlines that wall-clock jumps cannot move.
public func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
