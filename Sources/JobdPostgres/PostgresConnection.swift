import CLibPQ
import Foundation
import JobdCore
import JobdThreads
import Logging
import Synchronization

/// One libpq connection, owned by one dedicated thread for its whole life.
///
/// The actor's executor is a `DedicatedThreadExecutor`, so every libpq call below
/// blocks that thread only, never Swift's cooperative pool. Every call has a
/// deadline: queries are sent with the asynchronous libpq API and the socket is
/// polled in short slices until the result arrives or the deadline passes, in which
/// case the query is cancelled and the connection dropped (the next call
/// reconnects). Cancellation of the calling task is checked before each call.
public actor PostgresConnection {
    public nonisolated let name: String
    private nonisolated let executor: DedicatedThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// The thread this connection's calls run on, for another connection to share
    /// (`RedisConnection.init(url:name:commandTimeout:logger:thread:)`): calls between them then run inline.
    public nonisolated var thread: DedicatedThreadExecutor { executor }

    private let conninfo: String?
    /// Seconds: the per-call `timeout:` arguments, which replace it, are seconds too.
    let commandTimeout: Double
    /// statement_timeout, idle_in_transaction_session_timeout, lock_timeout (ms),
    /// enable_seqscan.
    private let sessionSettings: [String?]
    private let logger: Logger
    /// Owns the libpq handle; closing it in the handle's own deinit avoids needing
    /// an isolated deinit on the actor (which crashes the 6.3 optimizer).
    private let handle = LibPQHandle()
    private var connection: OpaquePointer? {
        get { handle.raw }
        set { handle.raw = newValue }
    }
    private var listening: Set<String> = []
    /// Statements prepared on the current session (`PostgresPlanning.perSession`); a new session
    /// starts with none.
    private var prepared: Set<String> = []
    /// Set by `close()`: no new session is ever opened.
    private var closed = false
    /// Statements this connection sent (each one round trip), for tests that bound a
    /// read's statements (a list must not cost one statement per row).
    public private(set) var statementsSent = 0

    /// - Parameters:
    ///   - conninfo: a libpq conninfo string or URI; nil uses libpq's `PG*` defaults.
    ///   - commandTimeout: the deadline of connect and of every statement (also set
    ///     server-side as `statement_timeout`, in milliseconds).
    ///   - scans: the scans the planner may choose; set on every session this
    ///     connection opens.
    public init(
        conninfo: String?, name: String, commandTimeout: Duration, scans: PostgresScans = .any, logger: Logger
    ) {
        self.conninfo = conninfo
        self.name = name
        self.commandTimeout = commandTimeout.seconds
        self.logger = logger
        self.executor = DedicatedThreadExecutor(name: "pg-\(name)")
        let timeoutMs = TotalConversion.milliseconds(commandTimeout)
        // The daemon never holds a transaction open while it waits on anything else;
        // this bounds the damage of a bug to a minute of held locks and bloat.
        self.sessionSettings = [String(timeoutMs), "60000", String(timeoutMs), scans.rawValue]
    }

    /// `commandTimeout` in seconds, for tests and tools that write their deadlines as
    /// numbers; never traps (see `TotalConversion.duration(seconds:)`).
    public init(conninfo: String?, name: String, commandTimeout seconds: Double, logger: Logger) {
        self.init(conninfo: conninfo, name: name, commandTimeout: TotalConversion.duration(seconds: seconds), logger: logger)
    }

    deinit {
        executor.shutdown()
    }

    public var isConnected: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK
    }

    /// Connects if not connected. Re-issues LISTEN for every channel listened to
    /// before, so a reconnect never silently loses notifications.
    public func connect() throws {
        try Task.checkCancellation()
        if closed { throw PostgresError(.closed, "connection \(name) is closed") }
        if isConnected { return }
        dropConnection()
        let deadline = monotonicMilliseconds() + Int64(commandTimeout * 1000)
        // Our defaults come before `dbname` so that values in the user's conninfo win.
        var keywords = [
            "connect_timeout", "application_name", "keepalives", "keepalives_idle",
            "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        ]
        var values = [
            String(max(2, Int(commandTimeout.rounded(.up)))), "jobd-\(name)", "1", "10", "5", "3",
            String(Int(commandTimeout * 1000)),
        ]
        if let conninfo, !conninfo.isEmpty {
            keywords.append("dbname")
            values.append(conninfo)
        }
        let conn = withCStringArray(keywords) { keys in
            withCStringArray(values) { vals in
                PQconnectStartParams(keys, vals, 1)
            }
        }
        guard let conn else { throw PostgresError(.connection, "out of memory starting a connection") }
        if PQstatus(conn) == CONNECTION_BAD {
            let message = errorMessage(conn)
            PQfinish(conn)
            throw PostgresError(.connection, message)
        }
        var status = PGRES_POLLING_WRITING
        while status != PGRES_POLLING_OK {
            if status == PGRES_POLLING_FAILED {
                let message = errorMessage(conn)
                PQfinish(conn)
                throw PostgresError(.connection, message)
            }
            let remaining = Int(deadline - monotonicMilliseconds())
            if remaining <= 0 {
                PQfinish(conn)
                throw PostgresError(.timeout, "connect did not finish within \(commandTimeout) s")
            }
            switch waitForSocket(PQsocket(conn), writable: status == PGRES_POLLING_WRITING, milliseconds: remaining) {
            case .ready, .timedOut: break
            case .failed(let code):
                PQfinish(conn)
                throw PostgresError(.connection, "poll failed while connecting (errno \(code))")
            }
            status = PQconnectPoll(conn)
        }
        // Server NOTICEs (e.g. "already exists, skipping") would go to stderr by
        // default; they carry nothing an operator needs.
        PQsetNoticeReceiver(conn, { _, _ in }, nil)
        guard PQsetnonblocking(conn, 1) == 0 else {
            let message = errorMessage(conn)
            PQfinish(conn)
            throw PostgresError(.connection, message)
        }
        connection = conn
        do {
            // One parameterised statement (SET itself takes no parameters).
            _ = try run("""
                SELECT set_config('statement_timeout', $1, false),
                       set_config('idle_in_transaction_session_timeout', $2, false),
                       set_config('lock_timeout', $3, false),
                       set_config('enable_seqscan', $4, false)
                """, sessionSettings.map(PostgresBinding.text), simple: false, timeout: commandTimeout)
            for channel in listening.sorted() {
                _ = try run("LISTEN " + SQL.identifier(channel).text, [], simple: true, timeout: commandTimeout)
            }
        } catch {
            dropConnection()
            throw error
        }
    }

    /// Runs one parameterised statement (extended protocol, text format), planned
    /// per execution. `$1…$n` take `params`; nil is SQL NULL. For statements that
    /// decode nothing or that tests and tools write inline; a store runs named
    /// `PostgresStatement` types instead (`rows`, `firstRow`, `execute`).
    @discardableResult
    public func query(_ sql: SQL, _ params: [String?] = [], timeout: Double? = nil) throws -> PostgresResult {
        try Task.checkCancellation()
        try connect()
        return try run(sql.text, params.map(PostgresBinding.text), simple: false, timeout: timeout ?? commandTimeout)
    }

    /// Runs one `COPY … FROM STDIN` statement (`statement`, no parameters) and sends `data`
    /// as its input (in the format the statement names, e.g. text: tab-separated
    /// columns, one row per line, `\N` for NULL). Returns the rows copied. One
    /// deadline for the whole statement, data included; a failure of the COPY
    /// (a CHECK, a duplicate key) is thrown as the server reported it and copies nothing.
    @discardableResult
    public func copyIn(_ statement: SQL, data: [UInt8], timeout: Double? = nil) throws -> Int {
        let sql = statement.text
        try Task.checkCancellation()
        try connect()
        guard let conn = connection else { throw PostgresError(.connection, "not connected") }
        PostgresStatistics.roundTrips.add(1, ordering: .relaxed)
        statementsSent += 1
        let deadline = monotonicMilliseconds() + Int64((timeout ?? commandTimeout) * 1000)
        func broken() -> PostgresError {
            let message = errorMessage(conn)
            dropConnection()
            return PostgresError(.connection, message)
        }
        func flushAll() throws {
            while true {
                let flushed = PQflush(conn)
                if flushed == 0 { return }
                if flushed < 0 { throw broken() }
                try wait(conn, writable: true, deadline: deadline, sql: sql)
                guard PQconsumeInput(conn) == 1 else { throw broken() }
            }
        }
        /// The next result, nil once the statement is done.
        func nextResult() throws -> OpaquePointer? {
            while PQisBusy(conn) == 1 {
                try wait(conn, writable: false, deadline: deadline, sql: sql)
                guard PQconsumeInput(conn) == 1 else { throw broken() }
            }
            return PQgetResult(conn)
        }
        guard PQsendQuery(conn, sql) == 1 else { throw broken() }
        try flushAll()
        var failure: PostgresError?
        if let first = try nextResult() {
            if PQresultStatus(first) != PGRES_COPY_IN { failure = PostgresError(result: first) }
            PQclear(first)
        } else {
            failure = PostgresError(.connection, "COPY started no data transfer")
        }
        if failure == nil {
            var offset = 0
            while offset < data.count {
                let length = min(1 << 16, data.count - offset)
                let put = data.withUnsafeBufferPointer { buffer in
                    UnsafeRawPointer(buffer.baseAddress! + offset).withMemoryRebound(to: CChar.self, capacity: length) {
                        PQputCopyData(conn, $0, Int32(length))
                    }
                }
                if put == 1 {
                    offset += length
                } else if put == 0 {
                    try wait(conn, writable: true, deadline: deadline, sql: sql)
                    guard PQconsumeInput(conn) == 1 else { throw broken() }
                    try flushAll()
                } else {
                    throw broken()
                }
            }
            while true {
                let ended = PQputCopyEnd(conn, nil)
                if ended == 1 { break }
                if ended < 0 { throw broken() }
                try wait(conn, writable: true, deadline: deadline, sql: sql)
            }
            try flushAll()
        }
        var copied = 0
        while let result = try nextResult() {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = PostgresError(result: result)
            }
        }
        if PQstatus(conn) == CONNECTION_BAD { throw failure ?? broken() }
        if let failure { throw failure }
        return copied
    }

    /// Prepares `sql` as `name` unless this session has, then binds and executes it;
    /// prepares once more if the server forgot it. `consume` reads the result.
    func runPrepared(
        _ sql: String, name: String, _ params: [PostgresBinding], timeout: Double, consume: (OpaquePointer) throws -> Void
    ) throws {
        var retried = false
        while true {
            if !prepared.contains(name) {
                do {
                    try run(sql, params, simple: false, timeout: timeout, step: .prepare(name)) { _ in }
                } catch let error as PostgresError where error.sqlState == "42P05" {
                    // Already prepared on this session: use it.
                }
                prepared.insert(name)
            }
            do {
                return try run(sql, params, simple: false, timeout: timeout, step: .execute(name), consume: consume)
            } catch let error as PostgresError where error.sqlState == "26000" && !retried {
                prepared.remove(name)
                retried = true
            }
        }
    }

    /// Runs a script of several statements (simple protocol, no parameters):
    /// migrations, and tests' and tools' setup.
    @discardableResult
    public func executeScript(_ script: SQL, timeout: Double? = nil) throws -> PostgresResult {
        try Task.checkCancellation()
        try connect()
        return try run(script.text, [], simple: true, timeout: timeout ?? commandTimeout)
    }

    /// Makes sure this session listens on `channel` (and again after every
    /// reconnect). Returns true when a new session subscribed just now, so the caller
    /// knows notifications sent in between may have been missed.
    @discardableResult
    public func listen(_ channel: String) throws -> Bool {
        try Task.checkCancellation()
        let wasConnected = isConnected
        let known = listening.contains(channel)
        listening.insert(channel)
        try connect()  // a fresh session re-issues LISTEN for every known channel
        if wasConnected && !known {
            _ = try run("LISTEN " + SQL.identifier(channel).text, [], simple: true, timeout: commandTimeout)
        }
        return !wasConnected || !known
    }

    /// Waits up to `timeout` seconds for notifications on the channels listened to.
    /// Returns what arrived (possibly nothing).
    public func waitForNotifications(timeout: Double) throws -> [PostgresNotification] {
        try Task.checkCancellation()
        try connect()
        guard let conn = connection else { throw PostgresError(.connection, "not connected") }
        var received = drainNotifications(conn)
        if !received.isEmpty { return received }
        switch waitForSocket(PQsocket(conn), milliseconds: Int(timeout * 1000)) {
        case .timedOut:
            return []
        case .failed(let code):
            dropConnection()
            throw PostgresError(.connection, "poll failed while listening (errno \(code))")
        case .ready:
            guard PQconsumeInput(conn) == 1 else {
                let message = errorMessage(conn)
                dropConnection()
                throw PostgresError(.connection, message)
            }
            received = drainNotifications(conn)
            return received
        }
    }

    /// Ends the current session; the next call opens a new one (and re-issues LISTEN).
    /// Statements prepared on the old session are prepared again as they are used.
    public func reset() {
        dropConnection()
    }

    /// Closes the connection for good: later calls throw a `.closed` error instead
    /// of reconnecting. For the owner that is done with it (a service that stopped,
    /// shutdown, a test).
    public func close() {
        closed = true
        dropConnection()
    }

    // MARK: - Internals (all on the connection's own thread)

    /// A named statement's two halves (`PostgresPlanning.perSession`).
    enum PreparedStep {
        case prepare(String)
        case execute(String)
    }

    private func run(
        _ sql: String, _ params: [PostgresBinding], simple: Bool, timeout: Double, step: PreparedStep? = nil
    ) throws -> PostgresResult {
        var outcome: PostgresResult?
        try run(sql, params, simple: simple, timeout: timeout, step: step) { outcome = PostgresResult($0) }
        return outcome ?? PostgresResult(columns: [], rows: [], affectedRows: 0)
    }

    /// Sends one statement (or script) and reads every result until the connection is
    /// idle again. `consume` reads each successful result before it is freed (for a
    /// script, the last one counts). An error `consume` throws is rethrown once the
    /// connection is idle, so it stays usable; a server error wins over it.
    func run(
        _ sql: String, _ params: [PostgresBinding], simple: Bool, timeout: Double, step: PreparedStep? = nil,
        consume: (OpaquePointer) throws -> Void
    ) throws {
        guard let conn = connection else { throw PostgresError(.connection, "not connected") }
        PostgresStatistics.roundTrips.add(1, ordering: .relaxed)
        statementsSent += 1
        let deadline = monotonicMilliseconds() + Int64(timeout * 1000)
        let sent: Int32
        if case .prepare(let name) = step {
            sent = PQsendPrepare(conn, name, sql, Int32(params.count), nil)
        } else if case .execute(let name) = step {
            sent = withParameters(params) { values, lengths, formats in
                PQsendQueryPrepared(conn, name, Int32(params.count), values, lengths, formats, 0)
            }
        } else if simple {
            sent = PQsendQuery(conn, sql)
        } else {
            sent = withParameters(params) { values, lengths, formats in
                PQsendQueryParams(conn, sql, Int32(params.count), nil, values, lengths, formats, 0)
            }
        }
        guard sent == 1 else {
            let message = errorMessage(conn)
            dropConnection()
            throw PostgresError(.connection, message)
        }
        // Flush the request; in non-blocking mode a large one may need several tries.
        while true {
            let flushed = PQflush(conn)
            if flushed == 0 { break }
            if flushed < 0 {
                let message = errorMessage(conn)
                dropConnection()
                throw PostgresError(.connection, message)
            }
            try wait(conn, writable: true, deadline: deadline, sql: sql)
            guard PQconsumeInput(conn) == 1 else {
                let message = errorMessage(conn)
                dropConnection()
                throw PostgresError(.connection, message)
            }
        }
        var failure: PostgresError?
        var consumeFailure: (any Error)?
        while true {
            while PQisBusy(conn) == 1 {
                try wait(conn, writable: false, deadline: deadline, sql: sql)
                guard PQconsumeInput(conn) == 1 else {
                    let message = errorMessage(conn)
                    dropConnection()
                    throw PostgresError(.connection, message)
                }
            }
            guard let result = PQgetResult(conn) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if failure == nil && consumeFailure == nil {
                    do { try consume(result) } catch { consumeFailure = error }
                }
            default:
                if failure == nil { failure = PostgresError(result: result) }
            }
        }
        if PQstatus(conn) == CONNECTION_BAD {
            let message = errorMessage(conn)
            dropConnection()
            throw failure ?? PostgresError(.connection, message)
        }
        if let failure { throw failure }
        if let consumeFailure { throw consumeFailure }
    }

    /// Waits for the socket until `deadline`; past it, drops the connection so
    /// nothing half-read can confuse the next call.
    ///
    /// No `PQcancel` here: it opens a second connection and then blocks, without
    /// any timeout, until the server closes it, so on a network that silently drops
    /// packets it would hang this thread for good. The server ends the statement by
    /// itself: its `statement_timeout` is this same deadline.
    private func wait(_ conn: OpaquePointer, writable: Bool, deadline: Int64, sql: String) throws {
        let remaining = Int(deadline - monotonicMilliseconds())
        if remaining > 0 {
            switch waitForSocket(PQsocket(conn), writable: writable, milliseconds: remaining) {
            case .ready: return
            case .timedOut: break
            case .failed(let code):
                dropConnection()
                throw PostgresError(.connection, "poll failed (errno \(code))")
            }
        }
        dropConnection()
        logger.warning("postgres statement timed out", metadata: [
            "connection": "\(name)", "statement": "\(sql.prefix(80))",
        ])
        throw PostgresError(.timeout, "statement did not finish within \(commandTimeout) s")
    }

    private func drainNotifications(_ conn: OpaquePointer) -> [PostgresNotification] {
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(conn) {
            let channel = String(cString: notify.pointee.relname)
            let payload = String(cString: notify.pointee.extra)
            received.append(PostgresNotification(channel: channel, payload: payload, pid: notify.pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }

    private func dropConnection() {
        if let connection { PQfinish(connection) }
        connection = nil
        prepared.removeAll()
    }

    private func errorMessage(_ conn: OpaquePointer) -> String {
        guard let raw = PQerrorMessage(conn) else { return "unknown libpq error" }
        let text = String(cString: raw).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "connection lost" : text
    }
}

/// The libpq connection pointer, closed when its owner (the actor) is released.
/// Only ever touched from the owning actor's thread, or by deinit once no one else
/// can reach it; it is not Sendable and never leaves the actor.
final class LibPQHandle {
    var raw: OpaquePointer?
    deinit {
        if let raw { PQfinish(raw) }
    }
}

/// A NOTIFY received on a channel the connection listens to.
/// Process-wide counts, for `jobd bench`'s cost figures.
public enum PostgresStatistics {
    /// Statements sent (each one round trip), over every connection of this process.
    public static let roundTrips = Atomic<Int>(0)
}

public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    public var pid: Int32
}

// MARK: - C string helpers

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings.map { Optional($0) }) { pointer in
        var terminated = Array(UnsafeBufferPointer(start: pointer, count: strings.count))
        terminated.append(nil)
        return terminated.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// `params` as libpq's parallel arrays: values, and, only when some value is binary,
/// lengths and formats (nil arrays: all text, each value NUL-terminated).
private func withParameters<R>(
    _ params: [PostgresBinding],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    guard params.contains(where: { $0.binary != nil }) else {
        return withOptionalCStringArray(params.map(\.text)) { body($0, nil, nil) }
    }
    let copies: [UnsafeMutablePointer<CChar>?] = params.map { param in
        if let binary = param.binary {
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, binary.count))
            binary.withUnsafeBytes { bytes in
                UnsafeMutableRawPointer(copy).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            return copy
        }
        guard let text = param.text else { return nil }
        return strdup(text)
    }
    defer {
        for (param, copy) in zip(params, copies) {
            if param.binary != nil { copy?.deallocate() } else { free(copy) }
        }
    }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    let lengths = params.map { Int32(clamping: $0.binary?.count ?? 0) }
    let formats = params.map { $0.binary == nil ? Int32(0) : 1 }
    return pointers.withUnsafeBufferPointer { values in
        lengths.withUnsafeBufferPointer { lengths in
            formats.withUnsafeBufferPointer { formats in
                body(values.baseAddress!, lengths.baseAddress, formats.baseAddress)
            }
        }
    }
}

private func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicated: [UnsafeMutablePointer<CChar>?] = strings.map { string in
        guard let string else { return nil }
        return strdup(string)
    }
    defer { duplicated.forEach { free($0) } }
    let pointers = duplicated.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
