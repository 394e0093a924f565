import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Talks to the service manager through `sd_notify(3)`.
///
/// Built with ``fromEnvironment()``: when `NOTIFY_SOCKET` is not set (run by hand, in tests, under
/// another supervisor) every call is a no-op, so the daemon can call it unconditionally.
/// The environment is left untouched (`unset_environment = 0`) because the daemon keeps
/// notifying for its whole life, not just once at start-up.
///
/// Each method returns whether the message was handed to the service manager; callers
/// normally ignore it (a lost notification must never stop the daemon).
public struct SystemdNotifier: Sendable {
    /// False when there is no service manager to talk to.
    public let isEnabled: Bool
    private let pingInterval: Duration?

    /// A notifier that never sends anything.
    public static let disabled = SystemdNotifier(isEnabled: false, pingInterval: nil)

    private init(isEnabled: Bool, pingInterval: Duration?) {
        self.isEnabled = isEnabled
        self.pingInterval = pingInterval
    }

    /// Enabled only if `NOTIFY_SOCKET` is set. The watchdog interval is read once, here,
    /// from `WATCHDOG_USEC`/`WATCHDOG_PID`.
    public static func fromEnvironment() -> SystemdNotifier {
        guard let socket = getenv("NOTIFY_SOCKET"), socket.pointee != 0 else { return .disabled }
        var usec: UInt64 = 0
        // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if present) is this process.
        let enabled = sd_watchdog_enabled(0, &usec) > 0 && usec > 0
        return SystemdNotifier(
            isEnabled: true,
            // Ping at half the deadline, as sd_watchdog_enabled(3) advises, so one late ping isn't fatal.
            pingInterval: enabled ? .microseconds(Int64(clamping: usec / 2)) : nil
        )
    }

    /// How often to call ``watchdogPing()``: half of `WatchdogSec=`; nil when the watchdog is off.
    public var watchdogInterval: Duration? { pingInterval }

    /// Start-up finished; `Type=notify` units become "active" now.
    @discardableResult
    public func ready() -> Bool { send("READY=1") }

    /// Free-form status shown by `systemctl status`. Newlines would end the field early
    /// (the protocol is newline-separated), so they become spaces.
    @discardableResult
    public func status(_ line: String) -> Bool {
        send("STATUS=" + Self.singleLine(line))
    }

    /// Tells the service manager the process is alive (`WatchdogSec=`).
    @discardableResult
    public func watchdogPing() -> Bool { send("WATCHDOG=1") }

    /// Shutdown (drain) has begun.
    @discardableResult
    public func stopping() -> Bool { send("STOPPING=1") }

    /// A reload has begun; follow with ``ready()`` when done. systemd ≥ 253 (`Type=notify-reload`)
    /// requires MONOTONIC_USEC to tell this reload apart from an earlier one; older versions ignore it.
    @discardableResult
    public func reloading() -> Bool {
        send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
    }

    /// Asks for more time on the current start/stop timeout (e.g. a long drain).
    @discardableResult
    public func extendTimeout(_ d: Duration) -> Bool {
        send("EXTEND_TIMEOUT_USEC=\(Self.microseconds(d))")
    }

    /// Reports the main process id (needed only if the daemon ever re-execs or forks).
    @discardableResult
    public func mainPID(_ pid: pid_t = getpid()) -> Bool {
        send("MAINPID=\(pid)")
    }

    private func send(_ state: String) -> Bool {
        guard isEnabled else { return false }
        // sd_notify re-reads NOTIFY_SOCKET on every call; > 0 means the datagram was sent.
        return sd_notify(0, state) > 0
    }

    static func singleLine(_ text: String) -> String {
        // NUL would truncate the C string; CR/LF would start a new assignment.
        String(text.map { $0.isNewline || $0 == "\0" ? " " : $0 })
    }

    static func microseconds(_ d: Duration) -> UInt64 {
        let (seconds, attoseconds) = d.components
        guard seconds >= 0, d > .zero else { return 0 }
        return UInt64(seconds) &* 1_000_000 &+ UInt64(attoseconds / 1_000_000_000_000)
    }

    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }
}

/// Decides whether the daemon may ping the systemd watchdog: only when every registered loop
/// (e.g. "promoter", "workers") has reported progress within `stalenessLimit`. Pinging from a
/// timer alone would prove only that the timer runs; gating on heartbeats makes systemd restart
/// a daemon whose real work is wedged.
///
/// A plain value with no clock of its own (instants are passed in), so it is tested without
/// sleeping; the daemon keeps one behind a lock.
public struct WatchdogGate: Sendable, Equatable {
    public var stalenessLimit: Duration
    private var lastHeartbeat: [String: ContinuousClock.Instant] = [:]

    public init(stalenessLimit: Duration) {
        self.stalenessLimit = stalenessLimit
    }

    /// Starts watching `loop`; it counts as fresh as of `now` (its start-up grace).
    public mutating func register(_ loop: String, now: ContinuousClock.Instant) {
        lastHeartbeat[loop] = now
    }

    /// Stops watching `loop` (it finished, e.g. during drain), so it can't block pings.
    public mutating func unregister(_ loop: String) {
        lastHeartbeat[loop] = nil
    }

    /// `loop` made progress at `now`. An unknown loop is registered by its first heartbeat.
    public mutating func heartbeat(_ loop: String, now: ContinuousClock.Instant) {
        if let previous = lastHeartbeat[loop], previous > now { return }  // never move backwards
        lastHeartbeat[loop] = now
    }

    /// Registered loop names, sorted.
    public var loops: [String] { lastHeartbeat.keys.sorted() }

    /// Loops whose last heartbeat is older than `stalenessLimit`, sorted, for the log line.
    public func staleLoops(now: ContinuousClock.Instant) -> [String] {
        lastHeartbeat.filter { now - $0.value > stalenessLimit }.keys.sorted()
    }

    /// True only if every registered loop is fresh (vacuously true with none registered).
    public func shouldPing(now: ContinuousClock.Instant) -> Bool {
        lastHeartbeat.values.allSatisfy { now - $0 <= stalenessLimit }
    }
}
