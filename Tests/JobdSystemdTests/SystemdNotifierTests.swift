import Foundation
import JobdSystemd
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Stands in for systemd's notification socket: a bound Unix datagram socket in a temp dir.
final class FakeServiceManager {
    let dir: String
    let path: String
    private let fd: Int32

    init() throws {
        dir = try Host.makeTempDir()
        path = dir + "/notify"
        fd = try Host.bindDatagramSocket(at: path, timeout: timeval(tv_sec: 2, tv_usec: 0))
    }

    deinit {
        close(fd)
        unlink(path)
        rmdir(dir)
    }

    /// Next datagram, or nil after the 2 s timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[..<n], as: UTF8.self)
    }

    /// True if a datagram is waiting right now.
    func hasPending() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK)) >= 0
    }
}

extension HostTests {
    @Suite struct SystemdNotifierTests {
        static let envNames = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"]

        @Test func sendsExactDatagramsToNotifySocket() throws {
            let env = EnvironmentSnapshot(Self.envNames)
            defer { env.restore() }
            let manager = try FakeServiceManager()
            setenv("NOTIFY_SOCKET", manager.path, 1)

            let notifier = SystemdNotifier.fromEnvironment()
            #expect(notifier.isEnabled)

            #expect(notifier.ready())
            #expect(manager.receive() == "READY=1")
            #expect(notifier.status("claiming jobs\nfrom 3 queues\r\n"))
            // "\r\n" is one Character, so it becomes one space.
            #expect(manager.receive() == "STATUS=claiming jobs from 3 queues ")
            #expect(notifier.watchdogPing())
            #expect(manager.receive() == "WATCHDOG=1")
            #expect(notifier.stopping())
            #expect(manager.receive() == "STOPPING=1")
            #expect(notifier.extendTimeout(.seconds(5) + .milliseconds(250)))
            #expect(manager.receive() == "EXTEND_TIMEOUT_USEC=5250000")
            #expect(notifier.mainPID(4242))
            #expect(manager.receive() == "MAINPID=4242")

            let before = monotonicMicroseconds()
            #expect(notifier.reloading())
            let after = monotonicMicroseconds()
            let reload = try #require(manager.receive())
            let lines = reload.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines.first == "RELOADING=1")
            let stamp = try #require(lines.last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
            #expect(lines.last?.hasPrefix("MONOTONIC_USEC=") == true)
            #expect((before...after).contains(stamp))

            #expect(!manager.hasPending())
        }

        @Test func withoutNotifySocketNothingIsSent() throws {
            let env = EnvironmentSnapshot(Self.envNames)
            defer { env.restore() }
            unsetenv("NOTIFY_SOCKET")
            let notifier = SystemdNotifier.fromEnvironment()
            #expect(!notifier.isEnabled)
            #expect(notifier.watchdogInterval == nil)

            // Even if a socket appears later, a disabled notifier stays silent.
            let manager = try FakeServiceManager()
            setenv("NOTIFY_SOCKET", manager.path, 1)
            #expect(!notifier.ready())
            #expect(!notifier.status("x"))
            #expect(!notifier.watchdogPing())
            #expect(!notifier.stopping())
            #expect(!notifier.reloading())
            #expect(!notifier.extendTimeout(.seconds(1)))
            #expect(!notifier.mainPID())
            #expect(!manager.hasPending())
        }

        @Test func watchdogIntervalIsHalfOfWatchdogUsec() throws {
            let env = EnvironmentSnapshot(Self.envNames)
            defer { env.restore() }
            let manager = try FakeServiceManager()
            setenv("NOTIFY_SOCKET", manager.path, 1)

            setenv("WATCHDOG_USEC", "30000000", 1)
            setenv("WATCHDOG_PID", String(getpid()), 1)
            #expect(SystemdNotifier.fromEnvironment().watchdogInterval == .seconds(15))

            // The watchdog belongs to another process (e.g. we are a child): not ours to ping.
            setenv("WATCHDOG_PID", String(getpid() + 1), 1)
            #expect(SystemdNotifier.fromEnvironment().watchdogInterval == nil)

            unsetenv("WATCHDOG_USEC")
            unsetenv("WATCHDOG_PID")
            #expect(SystemdNotifier.fromEnvironment().watchdogInterval == nil)
        }

        @Test func journalStreamDetectionComparesStderrDeviceAndInode() {
            let env = EnvironmentSnapshot(Self.envNames)
            defer { env.restore() }
            var st = stat()
            #expect(fstat(STDERR_FILENO, &st) == 0)

            setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino)", 1)
            #expect(JournalLogHandler.isStderrConnectedToJournal())
            #expect(LogFormat.auto.resolved() == .journald)

            setenv("JOURNAL_STREAM", "\(st.st_dev):\(st.st_ino &+ 1)", 1)
            #expect(!JournalLogHandler.isStderrConnectedToJournal())
            #expect(LogFormat.auto.resolved() == .text)

            setenv("JOURNAL_STREAM", "garbage", 1)
            #expect(!JournalLogHandler.isStderrConnectedToJournal())
            unsetenv("JOURNAL_STREAM")
            #expect(!JournalLogHandler.isStderrConnectedToJournal())
            #expect(LogFormat.json.resolved() == .json)
        }

        private func monotonicMicroseconds() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
        }
    }
}
