import JobdCore
import Logging

/// The Redis keys of one queue; the prefix lets several queues share a Redis.
public struct RedisKeys: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// The list of ready job ids of one priority, oldest first.
    public func queue(_ priority: JobPriority) -> String { "\(prefix):queue:\(priority.rawValue)" }

    /// A random value set once per Redis dataset: if it vanishes or changes, Redis
    /// lost its data (FLUSHALL, restart without persistence) and the lists must be
    /// rebuilt from Postgres.
    public var epoch: String { "\(prefix):epoch" }
}

/// The Redis side of dispatch: job ids waiting in one list per priority.
///
/// Postgres stays the truth; these lists only say which ids to try to claim next.
/// An id lost here (a pop whose reply never arrived, a flushed Redis) is found again
/// by the daemon's reconciliation, and an id that appears twice is fenced by the claim.
public struct RedisDispatch: Sendable {
    public let connection: RedisConnection
    public let keys: RedisKeys
    private let logger: Logger

    public init(connection: RedisConnection, keys: RedisKeys, logger: Logging.Logger) {
        self.connection = connection
        self.keys = keys
        self.logger = logger
    }

    /// Appends ids to the tail of their lists: one RPUSH per priority, one round trip.
    public func push(_ ids: [(id: Int64, priority: JobPriority)]) async throws {
        var grouped: [JobPriority: [String]] = [:]
        for entry in ids {
            grouped[entry.priority, default: []].append(String(entry.id))
        }
        let commands = JobPriority.allCases.compactMap { priority -> [String]? in
            guard let members = grouped[priority] else { return nil }
            return ["RPUSH", keys.queue(priority)] + members
        }
        if commands.isEmpty { return }
        for reply in try await connection.pipeline(commands) {
            try Self.check(reply)
        }
    }

    /// Takes up to `max` ids without waiting, draining the lists in `order`.
    ///
    /// At most two round trips: the first pops from the first list and reads the
    /// lengths of the others; the second pops from those only what is still missing,
    /// split by the lengths seen, so the total never exceeds `max`. Ids pushed to a
    /// later list between the two trips simply wait for the next call.
    public func pop(order: [JobPriority], max: Int) async throws -> [(id: Int64, priority: JobPriority)] {
        try await take(order: order, max: max).ids
    }

    /// What `take` popped, and the length each list it popped from had right after
    /// its pop (read in the same round trip).
    public struct Taken: Sendable {
        public var ids: [(id: Int64, priority: JobPriority)]
        /// Only the lists popped from; another client may have changed them since.
        public var lengthsAfter: [JobPriority: Int]
    }

    /// `pop`, also reading the length each list popped from has after the pop (an
    /// LLEN pipelined after its LPOP: no extra round trip), so the caller can tell
    /// whether it took a list below a mark.
    /// Runs on its caller's executor (`nonisolated(nonsending)`): a caller on the
    /// connection's own thread pops without a hand-off.
    nonisolated(nonsending) public func take(order: [JobPriority], max: Int) async throws -> Taken {
        let lanes = Self.distinct(order)
        guard let first = lanes.first, max > 0 else { return Taken(ids: [], lengthsAfter: [:]) }
        let rest = lanes.dropFirst()

        var firstTrip = [["LPOP", keys.queue(first), String(max)], ["LLEN", keys.queue(first)]]
        firstTrip += rest.map { ["LLEN", keys.queue($0)] }
        let replies = try await connection.pipeline(firstTrip)

        var taken = try ids(in: replies[0], priority: first)
        var lengthsAfter = [first: try Self.length(replies[1])]
        var missing = max - taken.count - skipped(replies[0], taken)
        guard missing > 0, !rest.isEmpty else { return Taken(ids: taken, lengthsAfter: lengthsAfter) }

        var secondTrip: [(priority: JobPriority, args: [String])] = []
        for (priority, reply) in zip(rest, replies.dropFirst(2)) where missing > 0 {
            let length = try Self.length(reply)
            let count = min(missing, length)
            if count > 0 {
                secondTrip.append((priority, ["LPOP", keys.queue(priority), String(count)]))
                missing -= count
            }
        }
        if secondTrip.isEmpty { return Taken(ids: taken, lengthsAfter: lengthsAfter) }
        let more = try await connection.pipeline(secondTrip.flatMap { [$0.args, ["LLEN", keys.queue($0.priority)]] })
        for (index, command) in secondTrip.enumerated() {
            taken += try ids(in: more[2 * index], priority: command.priority)
            lengthsAfter[command.priority] = try Self.length(more[2 * index + 1])
        }
        return Taken(ids: taken, lengthsAfter: lengthsAfter)
    }

    /// Waits up to `timeout` for an id in any of the lists, preferring them in
    /// `order` (BLPOP). Nil when the time ran out. A timeout under 1 ms is sent as
    /// 1 ms, because BLPOP reads 0 as "wait forever".
    public func blockingPop(order: [JobPriority], timeout: Duration) async throws -> (id: Int64, priority: JobPriority)? {
        let lanes = Self.distinct(order)
        guard !lanes.isEmpty else { throw RedisError.usage("blockingPop needs at least one priority") }
        let milliseconds = Swift.max(1, timeout.components.seconds * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let fraction = String(milliseconds % 1_000)
        let seconds = "\(milliseconds / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction

        let reply = try await connection.blockingCommand(
            ["BLPOP"] + lanes.map(keys.queue) + [seconds],
            blockFor: .milliseconds(milliseconds)
        )
        if reply.isNull { return nil }
        guard let pair = reply.array, pair.count == 2, let key = pair[0].string, let value = pair[1].string,
              let priority = lanes.first(where: { keys.queue($0) == key })
        else {
            throw RedisError.unexpectedReply("BLPOP answered \(Self.shape(reply))")
        }
        guard let id = Int64(value) else {
            logger.debug("skipped a Redis list entry that is not a job id", metadata: ["key": "\(key)", "skipped": "1"])
            return nil
        }
        return (id, priority)
    }

    /// Waits up to `timeout` for ids in any of the lists and takes up to `max` of them
    /// from the first list in `order` that holds any (`BLMPOP … LEFT COUNT max`): the
    /// wait and the take in one round trip, where `blockingPop` and a `pop` after it
    /// are two. Ids in later lists wait for the next call. Empty when the time ran out
    /// (or the list held only entries that are not ids). A timeout under 1 ms is sent
    /// as 1 ms, because 0 means "wait forever".
    public func blockingPop(
        order: [JobPriority], max: Int, timeout: Duration
    ) async throws -> [(id: Int64, priority: JobPriority)] {
        let lanes = Self.distinct(order)
        guard !lanes.isEmpty else { throw RedisError.usage("blockingPop needs at least one priority") }
        guard max > 0 else { return [] }
        let milliseconds = Swift.max(1, timeout.components.seconds * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let fraction = String(milliseconds % 1_000)
        let seconds = "\(milliseconds / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction

        let reply = try await connection.blockingCommand(
            ["BLMPOP", seconds, String(lanes.count)] + lanes.map(keys.queue) + ["LEFT", "COUNT", String(max)],
            blockFor: .milliseconds(milliseconds)
        )
        if reply.isNull { return [] }
        guard let pair = reply.array, pair.count == 2, let key = pair[0].string,
              let priority = lanes.first(where: { keys.queue($0) == key })
        else {
            throw RedisError.unexpectedReply("BLMPOP answered \(Self.shape(reply))")
        }
        return try ids(in: pair[1], priority: priority)
    }

    /// The length of every list, in one round trip.
    public func lengths() async throws -> [JobPriority: Int] {
        let replies = try await connection.pipeline(JobPriority.allCases.map { ["LLEN", keys.queue($0)] })
        var lengths: [JobPriority: Int] = [:]
        for (priority, reply) in zip(JobPriority.allCases, replies) {
            try Self.check(reply)
            guard let length = reply.int else {
                throw RedisError.unexpectedReply("LLEN answered \(Self.shape(reply))")
            }
            lengths[priority] = Int(clamping: length)
        }
        return lengths
    }

    /// Stores `candidate` as the epoch unless one is already there, and returns the
    /// stored epoch (SET NX then GET, one round trip). A result other than the epoch
    /// the daemon remembered means Redis lost its data.
    public func ensureEpoch(candidate: String) async throws -> String {
        let replies = try await connection.pipeline([
            ["SET", keys.epoch, candidate, "NX"],
            ["GET", keys.epoch],
        ])
        try Self.check(replies[0])
        try Self.check(replies[1])
        guard case .string(let epoch) = replies[1] else {
            throw RedisError.unexpectedReply("GET \(keys.epoch) answered \(Self.shape(replies[1])) right after SET NX")
        }
        return epoch
    }

    public func ping() async throws {
        let reply = try await connection.command(["PING"])
        guard reply == .status("PONG") else {
            throw RedisError.unexpectedReply("PING answered \(Self.shape(reply))")
        }
    }

    // MARK: - Replies

    /// The ids of an `LPOP key count` reply; entries that are not ids are dropped.
    private func ids(in reply: RedisReply, priority: JobPriority) throws -> [(id: Int64, priority: JobPriority)] {
        try Self.check(reply)
        if reply.isNull { return [] } // the list was empty (Redis deletes empty lists)
        guard let entries = reply.array else {
            throw RedisError.unexpectedReply("LPOP \(keys.queue(priority)) answered \(Self.shape(reply))")
        }
        var ids: [(id: Int64, priority: JobPriority)] = []
        ids.reserveCapacity(entries.count)
        var skipped = 0
        for entry in entries {
            if let text = entry.string, let id = Int64(text) {
                ids.append((id, priority))
            } else {
                skipped += 1
            }
        }
        if skipped > 0 {
            logger.debug(
                "skipped Redis list entries that are not job ids",
                metadata: ["key": "\(keys.queue(priority))", "skipped": "\(skipped)"]
            )
        }
        return ids
    }

    /// How many entries of an LPOP reply were dropped by `ids(in:)`: they count
    /// against `max` too, since they were taken off the list.
    private func skipped(_ reply: RedisReply, _ kept: [(id: Int64, priority: JobPriority)]) -> Int {
        (reply.array?.count ?? 0) - kept.count
    }

    /// An LLEN reply's length.
    private static func length(_ reply: RedisReply) throws -> Int {
        try check(reply)
        guard let length = reply.int else {
            throw RedisError.unexpectedReply("LLEN answered \(shape(reply))")
        }
        return Int(clamping: length)
    }

    private static func check(_ reply: RedisReply) throws {
        if case .error(let message) = reply { throw RedisError.server(message) }
    }

    /// A reply's kind, for error messages: never its content, which may be long.
    private static func shape(_ reply: RedisReply) -> String {
        switch reply {
        case .string: "a string"
        case .integer: "an integer"
        case .array(let items): "an array of \(items.count)"
        case .null: "nil"
        case .status: "a status"
        case .error: "an error"
        }
    }

    private static func distinct(_ order: [JobPriority]) -> [JobPriority] {
        var seen = Set<JobPriority>()
        return order.filter { seen.insert($0).inserted }
    }
}
