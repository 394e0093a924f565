import JobdCore
import JobdRedis
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs against the real Redis named by JOBD_TEST_REDIS_URL. Every test uses keys
/// under a prefix of its own, so the tests may run in parallel with each other and
/// with other suites sharing that server.
@Suite struct RedisAdapterTests {
    // MARK: - RedisConnection

    @Test func commandAndPipelineRoundTrip() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection()
        #expect(try await connection.command(["PING"]) == .status("PONG"))
        #expect(await connection.isConnected)

        let key = redis.key("value")
        let text = "spaces, ünïcödé\r\nand newlines"
        #expect(try await connection.command(["SET", key, text]) == .status("OK"))
        #expect(try await connection.command(["GET", key]) == .string(text))
        #expect(try await connection.command(["SET", key, ""]) == .status("OK"))
        #expect(try await connection.command(["GET", key]) == .string(""))

        let replies = try await connection.pipeline([
            ["SET", key, "v"],
            ["GET", key],
            ["INCRBY", redis.key("n"), "41"],
            ["INCR", redis.key("n")],
            ["GET", redis.key("missing")],
            ["RPUSH", redis.key("list"), "a", "b"],
            ["LRANGE", redis.key("list"), "0", "-1"],
            ["LRANGE", redis.key("missing"), "0", "-1"],
        ])
        #expect(replies == [
            .status("OK"),
            .string("v"),
            .integer(41),
            .integer(42),
            .null,
            .integer(2),
            .array([.string("a"), .string("b")]),
            .array([]),
        ])
        #expect(replies[3].int == 42)
        #expect(replies[1].string == "v")
        #expect(replies[6].array?.count == 2)
        #expect(try await connection.pipeline([]) == [])
    }

    @Test func errorRepliesAreValuesInPipelinesAndThrownByCommand() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection()
        let key = redis.key("text")

        let replies = try await connection.pipeline([["SET", key, "abc"], ["INCR", key], ["GET", key]])
        #expect(replies.count == 3)
        #expect(replies[0] == .status("OK"))
        guard case .error(let message) = replies[1] else {
            Issue.record("INCR of a non-number answered \(replies[1])")
            return
        }
        #expect(message.contains("not an integer"))
        #expect(replies[2] == .string("abc"))

        await #expect(throws: RedisError.server(message)) { try await connection.command(["INCR", key]) }
        await #expect(throws: RedisError.self) { try await connection.command(["NO-SUCH-COMMAND"]) }
        // An error reply is an answer, not a broken connection.
        #expect(await connection.isConnected)
        #expect(try await connection.command(["GET", key]) == .string("abc"))
    }

    @Test func emptyCommandIsRejectedWithoutLosingTheConnection() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection()
        try await connection.connect()
        await #expect(throws: RedisError.self) { try await connection.pipeline([["PING"], []]) }
        #expect(await connection.isConnected)
        #expect(try await connection.command(["PING"]) == .status("PONG"))
    }

    @Test func reconnectsAfterTheServerDropsTheConnection() async throws {
        let redis = try RedisAdapterFixture()
        let victim = redis.connection(name: "victim")
        let killer = redis.connection(name: "killer")
        let firstID = try #require(try await victim.command(["CLIENT", "ID"]).int)

        // By id rather than CLIENT KILL TYPE normal, which would also cut the
        // connections of tests running in parallel.
        #expect(try await killer.command(["CLIENT", "KILL", "ID", String(firstID)]) == .integer(1))

        // The dead socket is noticed by the next command, which fails and drops it…
        await #expect(throws: RedisError.self) { try await victim.command(["PING"]) }
        #expect(await !victim.isConnected)
        // …and the one after reconnects.
        #expect(try await victim.command(["PING"]) == .status("PONG"))
        let secondID = try #require(try await victim.command(["CLIENT", "ID"]).int)
        #expect(secondID != firstID)
    }

    @Test func largeWriteToAResetConnectionFailsInsteadOfKillingTheProcess() async throws {
        let redis = try RedisAdapterFixture()
        let victim = redis.connection(name: "victim")
        let killer = redis.connection(name: "killer")
        let id = try #require(try await victim.command(["CLIENT", "ID"]).int)
        _ = try await killer.command(["CLIENT", "KILL", "ID", String(id)])
        // Several MB need many write(2) calls; once the peer has reset the socket the
        // later ones hit EPIPE, which must surface as an error, not SIGPIPE.
        let big = String(repeating: "x", count: 8 << 20)
        await #expect(throws: RedisError.self) { try await victim.command(["SET", redis.key("big"), big]) }
        #expect(try await victim.command(["PING"]) == .status("PONG"))
    }

    @Test func commandTimeoutAppliesAndBlockingCommandRaisesIt() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection(commandTimeout: .milliseconds(300))
        let list = redis.key("never")
        let clock = ContinuousClock()

        // A plain command may not wait longer than the command timeout.
        var start = clock.now
        await #expect(throws: RedisError.self) { try await connection.command(["BLPOP", list, "3"]) }
        #expect(clock.now - start < .seconds(2))
        #expect(await !connection.isConnected)

        // A blocking command may wait its blockFor, and the connection then stays usable
        // with the ordinary timeout restored.
        start = clock.now
        #expect(try await connection.blockingCommand(["BLPOP", list, "0.6"], blockFor: .milliseconds(600)) == .null)
        #expect(clock.now - start >= .milliseconds(500))
        #expect(await connection.isConnected)
        start = clock.now
        await #expect(throws: RedisError.self) { try await connection.command(["BLPOP", list, "3"]) }
        #expect(clock.now - start < .seconds(2))
    }

    @Test func cancelledTaskThrowsBeforeSendingAnything() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection()
        let dispatch = redis.dispatch(connection)
        let key = redis.key("untouched")

        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            var outcomes: [Bool] = []
            for call in [
                { _ = try await connection.command(["SET", key, "1"]) },
                { _ = try await connection.pipeline([["SET", key, "2"]]) },
                { _ = try await connection.blockingCommand(["BLPOP", key, "5"], blockFor: .seconds(5)) },
                { try await connection.connect() },
                { _ = try await dispatch.pop(order: [.high], max: 1) },
                { try await dispatch.push([(1, .high)]) },
            ] as [@Sendable () async throws -> Void] {
                do {
                    try await call()
                    outcomes.append(false)
                } catch is CancellationError {
                    outcomes.append(true)
                } catch {
                    outcomes.append(false)
                }
            }
            return outcomes
        }
        #expect(await task.value == [true, true, true, true, true, true])
        // Nothing was sent: the connection was never even opened.
        #expect(await !connection.isConnected)
        let observer = redis.connection()
        #expect(try await observer.command(["EXISTS", key]) == .integer(0))
        #expect(try await dispatch.lengths()[.high] == 0)
    }

    @Test func closeIsFinal() async throws {
        let redis = try RedisAdapterFixture()
        let connection = redis.connection()
        try await connection.connect()
        await connection.close()
        #expect(await !connection.isConnected)
        await #expect(throws: RedisError.closed) { try await connection.command(["PING"]) }
        await #expect(throws: RedisError.closed) { try await connection.connect() }
    }

    @Test func releasingTheLastReferenceClosesTheSocket() async throws {
        let redis = try RedisAdapterFixture()
        let observer = redis.connection(name: "observer")
        let name = "dropped-\(redis.keys.prefix)"
        var dropped: RedisConnection? = redis.connection(name: name)
        try await dropped?.connect()
        #expect(try await observer.command(["CLIENT", "LIST"]).string?.contains("name=\(name) ") == true)

        dropped = nil
        let clock = ContinuousClock()
        let start = clock.now
        var listed = true
        while listed, clock.now - start < .seconds(3) {
            try await Task.sleep(for: .milliseconds(20))
            listed = try await observer.command(["CLIENT", "LIST"]).string?.contains("name=\(name) ") ?? true
        }
        #expect(!listed, "the released connection's socket stayed open")
    }

    @Test func unreachableServerIsAConnectError() async throws {
        let connection = RedisConnection(
            url: RedisURL(host: "127.0.0.1", port: 1), name: "nowhere",
            commandTimeout: .seconds(2), logger: RedisAdapterFixture.logger
        )
        await #expect {
            try await connection.command(["PING"])
        } throws: { error in
            guard case RedisError.connect(let message) = error else { return false }
            return message.contains("127.0.0.1:1")
        }
        #expect(await !connection.isConnected)
    }

    @Test func authFailureNeverMentionsThePassword() async throws {
        var url = try RedisAdapterFixture.url()
        url.password = "hunter2-very-secret"
        let connection = RedisConnection(url: url, name: "auth", commandTimeout: .seconds(2), logger: RedisAdapterFixture.logger)
        do {
            _ = try await connection.command(["PING"])
            Issue.record("AUTH unexpectedly succeeded; the test server must not require a password")
        } catch let error as RedisError {
            guard case .connect(let message) = error else {
                Issue.record("expected a connect error, got \(error)")
                return
            }
            #expect(message.contains("AUTH"))
            #expect(!"\(error)".contains("hunter2"))
        }
        #expect(await !connection.isConnected)
    }

    // MARK: - RedisDispatch

    @Test func keys() {
        let keys = RedisKeys(prefix: "jobd")
        #expect(keys.queue(.high) == "jobd:queue:high")
        #expect(keys.queue(.normal) == "jobd:queue:normal")
        #expect(keys.queue(.low) == "jobd:queue:low")
        #expect(keys.epoch == "jobd:epoch")
    }

    @Test func pushThenPopFollowsOrderAndMax() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        try await dispatch.ping()
        try await dispatch.push([(1, .low), (2, .high), (3, .normal), (4, .high), (5, .low), (6, .normal), (7, .high)])
        #expect(try await dispatch.lengths() == [.high: 3, .normal: 2, .low: 2])

        // All of high (FIFO), then only the one still missing from normal.
        var popped = try await dispatch.pop(order: [.high, .normal, .low], max: 4)
        #expect(popped.map(\.id) == [2, 4, 7, 3])
        #expect(popped.map(\.priority) == [.high, .high, .high, .normal])
        #expect(try await dispatch.lengths() == [.high: 0, .normal: 1, .low: 2])

        // Another order; more room than ids.
        popped = try await dispatch.pop(order: [.low, .normal, .high], max: 10)
        #expect(popped.map(\.id) == [1, 5, 6])
        #expect(popped.map(\.priority) == [.low, .low, .normal])

        #expect(try await dispatch.pop(order: JobPriority.allCases, max: 10).isEmpty)
        #expect(try await dispatch.lengths() == [.high: 0, .normal: 0, .low: 0])
    }

    @Test func popNeverTakesMoreThanMax() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        try await dispatch.push((1...5).map { ($0, .high) } + (11...15).map { ($0, .normal) } + (21...25).map { ($0, .low) })

        #expect(try await dispatch.pop(order: JobPriority.allCases, max: 0).isEmpty)
        #expect(try await dispatch.pop(order: JobPriority.allCases, max: 2).map(\.id) == [1, 2])
        #expect(try await dispatch.lengths() == [.high: 3, .normal: 5, .low: 5])

        // A list skipped by `order` is left alone; the remainder spills over lists in order.
        #expect(try await dispatch.pop(order: [.normal, .low], max: 7).map(\.id) == [11, 12, 13, 14, 15, 21, 22])
        #expect(try await dispatch.lengths() == [.high: 3, .normal: 0, .low: 3])

        // Empty first list: the remainder is split across the next ones.
        #expect(try await dispatch.pop(order: [.normal, .high, .low], max: 5).map(\.id) == [3, 4, 5, 23, 24])
        #expect(try await dispatch.lengths() == [.high: 0, .normal: 0, .low: 1])

        // Repeated priorities count once.
        #expect(try await dispatch.pop(order: [.low, .low], max: 5).map(\.id) == [25])
    }

    @Test("take reports the length each list it popped from has left, and only those")
    func takeReportsLengthsAfterItsPops() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        try await dispatch.push((1...5).map { ($0, .high) } + (11...13).map { ($0, .normal) } + (21...24).map { ($0, .low) })

        // Only the first list popped: its length after, nothing about the others.
        var taken = try await dispatch.take(order: JobPriority.allCases, max: 2)
        #expect(taken.ids.map(\.id) == [1, 2])
        #expect(taken.lengthsAfter == [.high: 3])

        // Spilling over: the first list emptied (0 left), the second popped from too.
        taken = try await dispatch.take(order: [.high, .normal, .low], max: 5)
        #expect(taken.ids.map(\.id) == [3, 4, 5, 11, 12])
        #expect(taken.lengthsAfter == [.high: 0, .normal: 1])

        // Nothing in the first list, the rest split over the next ones.
        taken = try await dispatch.take(order: [.high, .normal, .low], max: 3)
        #expect(taken.ids.map(\.id) == [13, 21, 22])
        #expect(taken.lengthsAfter == [.high: 0, .normal: 0, .low: 2])
        #expect(try await dispatch.lengths() == [.high: 0, .normal: 0, .low: 2])

        #expect(try await dispatch.take(order: [], max: 3).lengthsAfter.isEmpty)
        #expect(try await dispatch.take(order: [.low], max: 0).ids.isEmpty)
    }

    @Test func entriesThatAreNotIdsAreSkipped() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        _ = try await dispatch.connection.command(["RPUSH", redis.keys.queue(.high), "x", "8", "", "9.5", "10"])
        let popped = try await dispatch.pop(order: [.high], max: 10)
        #expect(popped.map(\.id) == [8, 10])
        #expect(try await dispatch.lengths()[.high] == 0)

        _ = try await dispatch.connection.command(["RPUSH", redis.keys.queue(.low), "junk"])
        #expect(try await dispatch.blockingPop(order: [.low], timeout: .milliseconds(200)) == nil)
        #expect(try await dispatch.lengths()[.low] == 0)
    }

    @Test func blockingPopReturnsNilAfterItsTimeout() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await dispatch.blockingPop(order: JobPriority.allCases, timeout: .milliseconds(400))
        let elapsed = clock.now - start
        #expect(result == nil)
        #expect(elapsed >= .milliseconds(300))
        // It returns after its timeout instead of blocking on: bounded generously, far
        // below "forever", far above a loaded host's scheduling delay.
        #expect(elapsed < .seconds(30))
    }

    @Test func blockingPopPrefersTheFirstListInOrder() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        try await dispatch.push([(1, .low), (2, .high)])
        let result = try #require(try await dispatch.blockingPop(order: [.high, .low], timeout: .seconds(1)))
        #expect(result == (2, .high))
        let next = try #require(try await dispatch.blockingPop(order: [.normal, .low, .high], timeout: .seconds(1)))
        #expect(next == (1, .low))
    }

    @Test func blockingPopOfManyTakesUpToMaxFromTheFirstListThatHasAny() async throws {
        let redis = try RedisAdapterFixture()
        let dispatch = redis.dispatch()
        try await dispatch.push([(1, .low), (2, .normal), (3, .normal), (4, .normal), (5, .low)])
        // The first list in order that holds ids, up to max, oldest first; later lists wait.
        let first = try await dispatch.blockingPop(order: [.high, .normal, .low], max: 2, timeout: .seconds(1))
        #expect(first.map(\.id) == [2, 3] && first.allSatisfy { $0.priority == .normal })
        let second = try await dispatch.blockingPop(order: [.high, .normal, .low], max: 10, timeout: .seconds(1))
        #expect(second.map(\.id) == [4] && second.allSatisfy { $0.priority == .normal })
        let third = try await dispatch.blockingPop(order: [.high, .normal, .low], max: 10, timeout: .seconds(1))
        #expect(third.map(\.id) == [1, 5] && third.allSatisfy { $0.priority == .low })
        #expect(try await dispatch.lengths().values.allSatisfy { $0 == 0 })
        // Empty lists: empty after the timeout; entries that are not ids are dropped.
        #expect(try await dispatch.blockingPop(order: JobPriority.allCases, max: 5, timeout: .milliseconds(100)).isEmpty)
        _ = try await dispatch.connection.command(["RPUSH", redis.keys.queue(.high), "x", "7"])
        #expect(try await dispatch.blockingPop(order: [.high], max: 5, timeout: .seconds(1)).map(\.id) == [7])
    }

    @Test func blockingPopWakesForAnIdPushedByAnotherConnection() async throws {
        let redis = try RedisAdapterFixture()
        let blocked = redis.dispatch(redis.connection(name: "blocked"))
        let pusher = redis.dispatch(redis.connection(name: "pusher"))
        let blockedID = try #require(try await blocked.connection.command(["CLIENT", "ID"]).int)
        let clock = ContinuousClock()
        let start = clock.now

        let waiter = Task { try await blocked.blockingPop(order: JobPriority.allCases, timeout: .seconds(10)) }

        // Push only once the server reports the client blocked, so the wake-up is what is tested.
        var isBlocked = false
        while !isBlocked, clock.now - start < .seconds(5) {
            let info = try await pusher.connection.command(["CLIENT", "LIST", "ID", String(blockedID)]).string ?? ""
            isBlocked = info.contains("cmd=blpop") && info.contains("flags=b")
            if !isBlocked { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(isBlocked, "the BLPOP client never showed as blocked")
        try await pusher.push([(42, .normal)])

        let result = try await waiter.value
        #expect(result?.id == 42)
        #expect(result?.priority == .normal)
        #expect(clock.now - start < .seconds(5))
        #expect(try await pusher.lengths() == [.high: 0, .normal: 0, .low: 0])
    }

    @Test func epochIsStableUntilTheDatabaseIsFlushed() async throws {
        // FLUSHDB (never FLUSHALL, which empties every db) on a db no other test uses.
        let redis = try RedisAdapterFixture(database: 15)
        let dispatch = redis.dispatch()
        let info = try await dispatch.connection.command(["CLIENT", "INFO"]).string ?? ""
        try #require(info.contains(" db=15 "), "refusing to FLUSHDB: connection is not on db 15 (\(info))")

        let first = try await dispatch.ensureEpoch(candidate: "epoch-a")
        #expect(first == "epoch-a")
        #expect(try await dispatch.ensureEpoch(candidate: "epoch-b") == "epoch-a")
        #expect(try await dispatch.ensureEpoch(candidate: "epoch-c") == "epoch-a")

        #expect(try await dispatch.connection.command(["FLUSHDB"]) == .status("OK"))
        #expect(try await dispatch.ensureEpoch(candidate: "epoch-d") == "epoch-d")
        #expect(try await dispatch.ensureEpoch(candidate: "epoch-e") == "epoch-d")
    }

    @Test func epochsOfDifferentPrefixesAreIndependent() async throws {
        let one = try RedisAdapterFixture()
        let two = try RedisAdapterFixture()
        #expect(try await one.dispatch().ensureEpoch(candidate: "one") == "one")
        #expect(try await two.dispatch().ensureEpoch(candidate: "two") == "two")
    }
}

/// The test server and a key prefix unique to one test.
private struct RedisAdapterFixture {
    static let logger = Logger(label: "jobd.test.redis") { _ in SwiftLogNoOpLogHandler() }

    let url: RedisURL
    let keys: RedisKeys

    init(database: Int? = nil) throws {
        url = try Self.url(database: database)
        keys = RedisKeys(prefix: "test-\(String(UInt64.random(in: .min ... .max), radix: 16))")
    }

    /// Fails the test, loudly, when the harness did not start a Redis.
    static func url(database: Int? = nil) throws -> RedisURL {
        guard let raw = getenv("JOBD_TEST_REDIS_URL") else {
            throw RedisTestServerMissing()
        }
        var url = try RedisURL(parsing: String(cString: raw), key: "JOBD_TEST_REDIS_URL")
        if let database { url.database = database }
        return url
    }

    func key(_ name: String) -> String { "\(keys.prefix):\(name)" }

    func connection(name: String = "test", commandTimeout: Duration = .seconds(5)) -> RedisConnection {
        RedisConnection(url: url, name: name, commandTimeout: commandTimeout, logger: Self.logger)
    }

    func dispatch(_ connection: RedisConnection? = nil) -> RedisDispatch {
        RedisDispatch(connection: connection ?? self.connection(name: "dispatch"), keys: keys, logger: Self.logger)
    }
}

private struct RedisTestServerMissing: Error, CustomStringConvertible {
    var description: String {
        "JOBD_TEST_REDIS_URL is not set: these tests need a real Redis 7, e.g. "
            + "redis-server --port 6399 --save '' --appendonly no --daemonize yes, then "
            + "JOBD_TEST_REDIS_URL=redis://127.0.0.1:6399/0 swift test"
    }
}
