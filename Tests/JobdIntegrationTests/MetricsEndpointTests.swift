import Foundation
import JobdCore
import JobdMetrics
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Prometheus
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// swift-metrics can be bootstrapped once per process: every test here shares it.
private let registry = PrometheusSetup.bootstrap()

@Suite("Metrics endpoint", .serialized)
struct MetricsEndpointTests {
    @Test("scraped while jobs flow: counters, histograms and gauges move; bad requests don't disturb anything")
    func scrapeWhileJobsFlow() async throws {
        try await withWorld { world in
            let config = world.configuration()
            let daemon = world.makeDaemon(config)
            let server = MetricsServer(
                address: ListenAddress(host: "127.0.0.1", port: 0), registry: registry, logger: .silent, maxConnections: 8)
            let collector = MetricsCollector(
                store: QueueStore(connection: world.database.connection("metrics")), stats: daemon.stats,
                interval: .milliseconds(100), logger: .silent, workerUsage: { daemon.workerUsage })
            let observability = ServiceGroup(configuration: .init(services: [server, collector], logger: .silent))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await observability.run() }
                let port = await server.boundPort()

                // Jobs due in the future show up as scheduled before anything runs.
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, payload, priority, run_at)
                    SELECT 'noop', '{}', 'low', now() + interval '1 hour' FROM generate_series(1, 7)
                    """)
                try await waitUntil(timeout: 10, "scheduled gauge") {
                    let text = try HTTPProbe.get(port: port, path: "/metrics").body
                    return sample(text, #"jobd_jobs{state="scheduled",priority="low"}"#) == 7
                }

                try await world.running([daemon]) {
                    try await world.exec("""
                        INSERT INTO queue.jobs (kind, payload, priority)
                        SELECT 'noop', '{"sleep_ms": 5}', (ARRAY['high','normal','low'])[1 + i % 3]
                          FROM generate_series(1, 300) i
                        """)
                    try await world.exec("INSERT INTO queue.jobs (kind, payload) VALUES ('no.such.kind', '{}')")

                    // Hostile traffic while jobs run: idle sockets, garbage, a wrong method.
                    let idle = (0..<4).compactMap { _ in HTTPProbe.connect(port: port) }
                    defer { idle.forEach { close($0) } }
                    let garbage = try HTTPProbe.raw(port: port, "\u{1}\u{2}NOT HTTP AT ALL\r\n\r\n")
                    #expect(!garbage.hasPrefix("HTTP/1.1 200"))
                    let post = try HTTPProbe.get(port: port, path: "/metrics", method: "POST")
                    #expect(post.status == 405)
                    #expect(try HTTPProbe.get(port: port, path: "/nope").status == 404)

                    var scrapes = 0
                    try await waitUntil(timeout: 30, "all 300 noop attempts counted") {
                        let response = try HTTPProbe.get(port: port, path: "/metrics")
                        #expect(response.status == 200)
                        scrapes += 1
                        let completed = ["high", "normal", "low"].map {
                            sample(response.body, #"jobd_attempts_finished_total{kind="noop",priority="\#($0)",outcome="completed"}"#) ?? 0
                        }.reduce(0, +)
                        return completed == 300
                    }
                    #expect(scrapes >= 1)
                    try await world.waitForState("completed", count: 300)
                }

                let text = try HTTPProbe.get(port: port, path: "/metrics").body
                #expect(text.contains("# TYPE jobd_job_run_seconds histogram"))
                #expect((sample(text, #"jobd_job_run_seconds_count{kind="noop"}"#) ?? 0) >= 300)
                #expect((sample(text, #"jobd_job_queue_wait_seconds_count{kind="noop",priority="high"}"#) ?? 0) >= 100)
                // An unknown kind is labelled "unknown", never by its (unbounded) name.
                #expect(sample(text, #"jobd_attempts_finished_total{kind="unknown",priority="normal",outcome="dead"}"#) == 1)
                #expect(!text.contains("no.such.kind"))
                #expect((sample(text, "jobd_jobs_promoted_total") ?? 0) >= 301)
                #expect(sample(text, "jobd_workers_total") == 8)
                #expect(sample(text, #"jobd_dependency_up{dependency="postgres"}"#) == 1)

                await observability.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    @Test("connections beyond the limit are refused at once; the endpoint recovers when they go")
    func connectionLimit() async throws {
        let server = MetricsServer(
            address: ListenAddress(host: "127.0.0.1", port: 0), registry: registry, logger: .silent, maxConnections: 3)
        let group = ServiceGroup(configuration: .init(services: [server], logger: .silent))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = await server.boundPort()
            let held = (0..<3).compactMap { _ in HTTPProbe.connect(port: port) }
            #expect(held.count == 3)
            try await Task.sleep(for: .milliseconds(200))
            // The fourth is accepted by the kernel and closed by the server without a reply.
            let refused = try HTTPProbe.raw(port: port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(refused.isEmpty)
            held.forEach { close($0) }
            try await waitUntil(timeout: 20, "a scrape succeeds again") {
                (try? HTTPProbe.get(port: port, path: "/metrics").status) == 200
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// The value of one sample line (`name{labels} value`), if present.
private func sample(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// A tiny blocking HTTP/1.1 client over a loopback socket, so the test sees the
/// bytes the server really sends (no client library smoothing anything over).
enum HTTPProbe {
    struct Response {
        var status: Int
        var body: String
    }

    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Sends `request` and reads until the server closes (or 5 s pass).
    static func raw(port: Int, _ request: String) throws -> String {
        guard let fd = connect(port: port) else { throw POSIXError(.ECONNREFUSED) }
        defer { close(fd) }
        _ = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func get(port: Int, path: String, method: String = "GET") throws -> Response {
        let text = try raw(port: port, "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        guard let statusLine = text.split(separator: "\r\n").first,
              let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw POSIXError(.EPROTO)
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Response(status: status, body: body)
    }
}
