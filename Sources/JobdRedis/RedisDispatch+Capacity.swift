import JobdCore

/// What one daemon's pools run and want, as it last published it.
public struct DaemonCapacity: Sendable, Equatable, Codable {
    /// Worker slots its pools have now.
    public var workers: Int
    /// Slots its pools would run if their maxima and the ceiling allowed.
    public var desired: Int
    /// Slots running a job.
    public var busy: Int

    public init(workers: Int, desired: Int, busy: Int) {
        self.workers = workers
        self.desired = desired
        self.busy = busy
    }

    /// `workers desired busy`, the stored form.
    var text: String { "\(workers) \(desired) \(busy)" }

    init?(text: String) {
        let numbers = text.split(separator: " ").compactMap { Int($0) }
        guard numbers.count == 3, numbers.allSatisfy({ $0 >= 0 }) else { return nil }
        self.init(workers: numbers[0], desired: numbers[1], busy: numbers[2])
    }
}

extension RedisKeys {
    /// One daemon's published capacity (`DaemonCapacity`), expiring unless refreshed.
    public func capacity(daemon: String) -> String { "\(prefix):capacity:\(daemon)" }
}

extension RedisDispatch {
    /// Publishes a daemon's capacity for `jobd status`; it expires after `ttl` unless
    /// published again, so a daemon that died leaves nothing behind for long.
    public func publishCapacity(_ capacity: DaemonCapacity, daemon: String, ttl: Duration) async throws {
        let milliseconds = max(1, ttl.components.seconds * 1_000 + ttl.components.attoseconds / 1_000_000_000_000_000)
        _ = try await connection.command(["SET", keys.capacity(daemon: daemon), capacity.text, "PX", String(milliseconds)])
    }

    public func removeCapacity(daemon: String) async throws {
        _ = try await connection.command(["DEL", keys.capacity(daemon: daemon)])
    }

    /// The published capacity of each daemon named (one round trip); daemons that
    /// published none, or garbage, are absent.
    public func capacities(daemons: [String]) async throws -> [String: DaemonCapacity] {
        guard !daemons.isEmpty else { return [:] }
        let reply = try await connection.command(["MGET"] + daemons.map { keys.capacity(daemon: $0) })
        var result: [String: DaemonCapacity] = [:]
        for (daemon, value) in zip(daemons, reply.array ?? []) {
            if let text = value.string, let capacity = DaemonCapacity(text: text) { result[daemon] = capacity }
        }
        return result
    }
}
