import CHiredis
import JobdCore
import JobdThreads
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One reply of Redis, copied out of hiredis's memory.
public enum RedisReply: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)

    public var int: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The text of a bulk string or a status reply.
    public var string: String? {
        switch self {
        case .string(let value), .status(let value): value
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var isNull: Bool { self == .null }
}

/// Why a Redis call failed. Messages name the server (host:port) and the command,
/// never a password or any argument.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Connecting, AUTH, SELECT or socket setup failed.
    case connect(String)
    /// The connection broke or timed out during a command; it has been dropped and
    /// the next call reconnects. Commands already sent may or may not have run.
    case io(String)
    /// Redis answered with an error reply.
    case server(String)
    /// A reply had a shape the caller did not expect.
    case unexpectedReply(String)
    /// The caller asked for something that cannot be sent.
    case usage(String)
    /// `close()` was called; the connection is not reopened.
    case closed

    public var description: String {
        switch self {
        case .connect(let message): "redis connect failed: \(message)"
        case .io(let message): "redis connection lost: \(message)"
        case .server(let message): "redis error reply: \(message)"
        case .unexpectedReply(let message): "unexpected redis reply: \(message)"
        case .usage(let message): "invalid redis call: \(message)"
        case .closed: "redis connection is closed"
        }
    }
}

/// A blocking hiredis connection owned by one dedicated thread.
///
/// Every method runs on the actor's `DedicatedThreadExecutor`, so a command that
/// waits on the network blocks that thread only, never Swift's cooperative pool.
/// Calls are serial: a `blockingCommand` occupies the connection until it returns.
/// The connection is opened lazily and reopened by the next call after any failure.
public actor RedisConnection {
    public let url: RedisURL
    public let name: String
    public let commandTimeout: Duration
    private let logger: Logger
    private let executor: DedicatedThreadExecutor
    private var context: HiredisContext?
    private var closed = false

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// Does not connect; the first call (or `connect()`) does.
    /// - Parameter thread: runs on this executor's thread (shared, see
    ///   `DedicatedThreadExecutor.share()`) instead of a thread of its own. For a pair
    ///   that works in sequence, e.g. a claim pipeline's pop then claim: a call from
    ///   one to the other then runs inline instead of handing off between two threads.
    ///   Blocking calls of either block both.
    public init(
        url: RedisURL, name: String, commandTimeout: Duration, logger: Logging.Logger,
        thread: DedicatedThreadExecutor? = nil
    ) {
        self.url = url
        self.name = name
        self.commandTimeout = commandTimeout
        var logger = logger
        logger[metadataKey: "redis"] = "\(url.redacted)"
        logger[metadataKey: "redis.connection"] = "\(name)"
        self.logger = logger
        executor = thread?.share() ?? DedicatedThreadExecutor(name: name)
    }

    deinit {
        // `context` (a HiredisContext) frees itself when released with the actor;
        // nothing can be queued on the executor any more, so its thread may end.
        executor.shutdown()
    }

    /// True once connected and until a failure or `close()`. A connection the server
    /// dropped is only noticed by the next command.
    public var isConnected: Bool { context != nil }

    /// Opens the connection if it is not open: connect, AUTH, SETNAME, SELECT.
    public func connect() throws {
        try Task.checkCancellation()
        _ = try connectedContext()
    }

    /// Runs one command. An error reply is thrown as `RedisError.server`.
    public func command(_ args: [String]) throws -> RedisReply {
        try Task.checkCancellation()
        let reply = try roundTrip([args], label: Self.label(args))[0]
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Sends every command, then reads every reply: one round trip. Error replies
    /// are returned in place as `.error`, so one failing command does not hide the
    /// results of the others.
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        try Task.checkCancellation()
        if commands.isEmpty { return [] }
        return try roundTrip(commands, label: "pipeline of \(commands.count)")
    }

    /// Runs a command that may legitimately wait up to `blockFor` on the server
    /// (BLPOP and friends): the socket deadline is raised to `blockFor` plus the
    /// command timeout for this call only. An error reply throws `RedisError.server`.
    public func blockingCommand(_ args: [String], blockFor: Duration) throws -> RedisReply {
        try Task.checkCancellation()
        guard !args.isEmpty else { throw RedisError.usage("a command needs a name") }
        let context = try connectedContext()
        let label = Self.label(args)
        guard redisSetTimeout(context.raw, Self.timeValue(blockFor + commandTimeout)) == REDIS_OK else {
            throw fail(context, "setting the socket timeout for \(label)")
        }
        let reply = try roundTrip([args], label: label)[0]
        // Only reached when the round trip succeeded, so the context is still ours.
        guard redisSetTimeout(context.raw, Self.timeValue(commandTimeout)) == REDIS_OK else {
            throw fail(context, "restoring the socket timeout after \(label)")
        }
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Closes the connection for good; later calls throw `RedisError.closed` instead
    /// of reconnecting (as `PostgresConnection.close()`). A connection that failed is
    /// dropped and reopened by the next call without any call here.
    public func close() {
        closed = true
        if context != nil {
            context = nil
            logger.debug("redis connection closed")
        }
    }

    // MARK: - hiredis

    private func connectedContext() throws -> HiredisContext {
        if closed { throw RedisError.closed }
        if let context { return context }
        Self.blockSIGPIPEOnThisThread()

        let endpoint = Self.endpoint(url)
        guard let raw = redisConnectWithTimeout(url.host, Int32(clamping: url.port), Self.timeValue(commandTimeout)) else {
            throw RedisError.connect("\(endpoint): out of memory allocating the hiredis context")
        }
        // Owned from here on: every early exit below frees it.
        let candidate = HiredisContext(raw)
        if raw.pointee.err != 0 {
            throw RedisError.connect("\(endpoint): \(Self.errorText(raw))")
        }
        guard redisEnableKeepAlive(raw) == REDIS_OK, redisSetTimeout(raw, Self.timeValue(commandTimeout)) == REDIS_OK else {
            throw RedisError.connect("\(endpoint): setting socket options: \(Self.errorText(raw))")
        }

        // AUTH, SETNAME and SELECT in one round trip; Redis runs them in order, so
        // a failed AUTH makes the others fail too and the first error is reported.
        var setup: [(label: String, args: [String])] = []
        if let password = url.password {
            setup.append(("AUTH", url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]))
        }
        let clientName = Self.clientName(name)
        if !clientName.isEmpty {
            setup.append(("CLIENT SETNAME", ["CLIENT", "SETNAME", clientName]))
        }
        if url.database != 0 {
            setup.append(("SELECT \(url.database)", ["SELECT", String(url.database)]))
        }
        if !setup.isEmpty {
            let replies: [RedisReply]
            do {
                replies = try Self.exchange(candidate, setup.map(\.args))
            } catch {
                throw RedisError.connect("\(endpoint): \(error.message) during connection setup")
            }
            for (step, reply) in zip(setup, replies) {
                if case .error(let message) = reply {
                    throw RedisError.connect("\(endpoint): \(step.label) failed: \(message)")
                }
            }
        }

        context = candidate
        logger.debug("redis connected")
        return candidate
    }

    /// Runs `commands` on the (possibly new) connection; on any I/O or protocol
    /// failure drops the connection and throws `RedisError.io`.
    private func roundTrip(_ commands: [[String]], label: String) throws -> [RedisReply] {
        // Checked before anything is appended, so a bad call never costs the connection.
        guard commands.allSatisfy({ !$0.isEmpty }) else { throw RedisError.usage("a command needs a name") }
        let context = try connectedContext()
        do {
            return try Self.exchange(context, commands)
        } catch {
            throw fail(context, "\(error.message) during \(label)", known: true)
        }
    }

    /// Drops the connection after a failure and builds the error to throw.
    private func fail(_ context: HiredisContext, _ what: String, known: Bool = false) -> RedisError {
        let message = "\(Self.endpoint(url)): " + (known ? what : "\(what): \(Self.errorText(context.raw))")
        if self.context === context { self.context = nil }
        logger.warning("redis connection dropped", metadata: ["error": "\(message)"])
        return RedisError.io(message)
    }

    /// Appends every command, then reads one reply per command.
    private static func exchange(_ context: HiredisContext, _ commands: [[String]]) throws(HiredisFailure) -> [RedisReply] {
        let raw = context.raw
        for args in commands {
            guard appendCommand(raw, args) == REDIS_OK else {
                throw HiredisFailure(message: errorText(raw))
            }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(raw, &reply) == REDIS_OK, let reply else {
                throw HiredisFailure(message: errorText(raw))
            }
            defer { freeReplyObject(reply) }
            replies.append(convert(reply.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    /// redisAppendCommandArgv with explicit lengths, so arguments may hold any bytes.
    private static func appendCommand(_ raw: UnsafeMutablePointer<redisContext>, _ args: [String]) -> Int32 {
        // All arguments in one buffer; the trailing 0 keeps it non-empty, so every
        // pointer is valid even when every argument is "".
        var storage: [UInt8] = []
        var lengths: [Int] = []
        lengths.reserveCapacity(args.count)
        for arg in args {
            storage.append(contentsOf: arg.utf8)
            lengths.append(arg.utf8.count)
        }
        storage.append(0)
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            var offset = 0
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(args.count)
            for length in lengths {
                pointers.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisAppendCommandArgv(raw, Int32(args.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING: return .string(text(value))
        case REDIS_REPLY_STATUS: return .status(text(value))
        case REDIS_REPLY_ERROR: return .error(text(value))
        case REDIS_REPLY_INTEGER: return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            guard let elements = value.element else { return .array([]) }
            return .array((0..<value.elements).map { index in
                elements[index].map(convert) ?? .null
            })
        default: return .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let bytes = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: reply.len), as: UTF8.self)
    }

    private static func errorText(_ raw: UnsafeMutablePointer<redisContext>) -> String {
        let message = withUnsafeBytes(of: raw.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch Int32(raw.pointee.err) {
        case REDIS_ERR_EOF: return "server closed the connection"
        // A socket timeout surfaces as EAGAIN ("Resource temporarily unavailable").
        case REDIS_ERR_IO where message.contains("temporarily unavailable"): return "timed out (\(message))"
        default: return message.isEmpty ? "hiredis error \(raw.pointee.err)" : message
        }
    }

    /// hiredis writes with plain write(2): on a socket the server already reset, that
    /// raises SIGPIPE, whose default action kills the process. Blocked on this
    /// (dedicated) thread, the signal stays pending harmlessly and write returns EPIPE,
    /// which becomes an ordinary `RedisError.io`.
    private static func blockSIGPIPEOnThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The command name only: arguments may be secrets (AUTH) or large payloads.
    private static func label(_ args: [String]) -> String {
        args.first.map { $0.uppercased() } ?? "empty command"
    }

    private static func endpoint(_ url: RedisURL) -> String {
        url.host.contains(":") ? "[\(url.host)]:\(url.port)" : "\(url.host):\(url.port)"
    }

    /// CLIENT SETNAME forbids spaces and newlines; the name shows in CLIENT LIST.
    private static func clientName(_ name: String) -> String {
        String(name.unicodeScalars.map { $0.value > 32 && $0.value < 127 ? Character($0) : "_" })
    }

    /// A zero timeval would mean "no timeout" to the socket layer, so the floor is 1 ms.
    private static func timeValue(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        let microseconds = max(seconds * 1_000_000 + attoseconds / 1_000_000_000_000, 1_000)
        return timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }
}

/// A failed hiredis call; turned into a `RedisError` naming the endpoint.
private struct HiredisFailure: Error {
    var message: String
}

/// Owns one hiredis context and frees it exactly once, when released.
///
/// Kept in a class so that the actor's deinit (which may not call isolated methods)
/// needs no code: releasing the actor's stored properties releases this box, and a
/// failed connection attempt is freed by simply dropping it.
private final class HiredisContext {
    let raw: UnsafeMutablePointer<redisContext>

    init(_ raw: UnsafeMutablePointer<redisContext>) {
        self.raw = raw
    }

    deinit {
        redisFree(raw)
    }
}
