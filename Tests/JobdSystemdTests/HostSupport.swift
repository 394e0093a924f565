import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Parent of every test that touches the process environment or spawns programs.
/// setenv(3) is not safe while another thread reads `environ` (as spawning a process does),
/// so all of them run one at a time under this suite; pure tests elsewhere stay parallel.
@Suite(.serialized) enum HostTests {}

enum Host {
    /// The package root, found from this file: Tests/JobdSystemdTests/HostSupport.swift.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var unitFile: URL { packageRoot.appendingPathComponent("systemd/jobd.service") }
    static var catalogFile: URL { packageRoot.appendingPathComponent("systemd/jobd.catalog") }

    static var isRoot: Bool { geteuid() == 0 }

    /// First executable named `name` on PATH or in the usual system directories.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        return dirs.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion. Output goes to temp files, not pipes, so a chatty child
    /// can't block on a full pipe while we wait for it.
    /// `environment`, when given, is the child's whole environment.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Output {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = dir + "/out", errPath = dir + "/err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        )
    }

    /// A Unix datagram socket bound at `path` (a stand-in NOTIFY_SOCKET) whose reads
    /// time out after `timeout` seconds, so a missing datagram fails a test instead of hanging it.
    static func bindDatagramSocket(at path: String, timeout: timeval) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            precondition(bytes.count < raw.count, "socket path too long")
            raw.copyBytes(from: bytes)
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        var timeout = timeout
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func makeTempDir() throws -> String {
        var template = Array("/tmp/jobd-systemd-test-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return String(cString: dir)
    }
}

/// Saves environment variables and puts them back (set or unset) afterwards.
struct EnvironmentSnapshot {
    private let saved: [(String, String?)]

    init(_ names: [String]) {
        saved = names.map { name in (name, getenv(name).map { String(cString: $0) }) }
    }

    func restore() {
        for (name, value) in saved {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
    }
}
