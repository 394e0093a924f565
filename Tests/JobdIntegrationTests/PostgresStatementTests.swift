import JobdCore
import JobdPostgres
import JobdTestSupport
import PropertyBased
import Synchronization
import Testing

/// The typed-statement API of JobdPostgres against a real server: bindings reach the
/// server as the values they hold, rows decode by name and throw (never trap) on a
/// value that is not what the decoder expects, and statements are prepared per
/// session and prepared again when the server forgot them.
///
/// That no runtime value can become SQL text is a compile-time property of `SQL`
/// (its literal type is `StaticString`; there is no init from `String`), so it has
/// no runtime test here: `let sql: SQL = "\(value)"` does not compile.
@Suite("Typed statements", .serialized)
struct PostgresStatementTests {
    // MARK: Statements used by the tests

    /// Echoes a text, a text array (element by element), an int array and scalars.
    struct EchoText: PostgresStatement {
        var value: String?
        static let sql: SQL = "SELECT $1::text AS value, $1::text IS NULL AS is_null"
        var bindings: PostgresBindings { [.text(value)] }
        struct Row: Sendable, Equatable {
            var value: String?
            var isNull: Bool
        }
        static func decode(_ row: PostgresRow) throws -> Row {
            Row(value: try row.decode("value", as: String?.self), isNull: try row.decode("is_null"))
        }
    }

    struct TextArrayElements: PostgresStatement {
        var values: [String?]
        static let sql: SQL = """
            SELECT v AS value, n FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n
            """
        var bindings: PostgresBindings { [.textArray(values)] }
        static func decode(_ row: PostgresRow) throws -> String? { try row.decode("value", as: String?.self) }
    }

    struct IntArrayElements: PostgresStatement {
        var values: [Int64]
        static let sql: SQL = "SELECT v AS value, n FROM unnest($1::bigint[]) WITH ORDINALITY AS u(v, n) ORDER BY n"
        var bindings: PostgresBindings { [.intArray(values)] }
        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("value") }
    }

    /// The binary `int8[]` binding, prepared once per session (the default planning)
    /// and beside text parameters, as the queue's statements bind it.
    struct Int8ArrayElements: PostgresStatement {
        var values: [Int64]
        var label: String
        static let sql: SQL = """
            SELECT v AS value, n, $2::text AS label FROM unnest($1::bigint[]) WITH ORDINALITY AS u(v, n) ORDER BY n
            """
        var bindings: PostgresBindings { [.int8Array(values), .text(label)] }
        static func decode(_ row: PostgresRow) throws -> String { "\(try row.decode("value") as Int64) \(try row.decode("label") as String)" }
    }

    struct Int8ArrayPerExecution: PostgresStatement {
        var values: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT count(*)::bigint AS n, coalesce(sum(v), 0)::bigint AS total FROM unnest($1::bigint[]) AS u(v)"
        var bindings: PostgresBindings { [.int8Array(values)] }
        static func decode(_ row: PostgresRow) throws -> [Int64] { [try row.decode("n"), try row.decode("total")] }
    }

    /// The binary typed arrays (`int4Array`, `float8Array`, `boolArray`,
    /// `textArrayBinary`), as the completion binds them, each echoed element by
    /// element; the element count of each comes back beside it.
    struct TypedArrayElements: PostgresStatement {
        var ints: [Int32]
        var doubles: [Double]
        var bools: [Bool]
        var texts: [String?]
        static let sql: SQL = """
            SELECT 'i' AS array, n, v::text AS value, NULL::boolean AS is_null FROM unnest($1::int[]) WITH ORDINALITY AS u(v, n)
            UNION ALL
            SELECT 'd', n, v::text, NULL FROM unnest($2::float8[]) WITH ORDINALITY AS u(v, n)
            UNION ALL
            SELECT 'b', n, v::text, NULL FROM unnest($3::boolean[]) WITH ORDINALITY AS u(v, n)
            UNION ALL
            SELECT 't', n, v, v IS NULL FROM unnest($4::text[]) WITH ORDINALITY AS u(v, n)
            ORDER BY 1, 2
            """
        var bindings: PostgresBindings {
            [.int4Array(ints), .float8Array(doubles), .boolArray(bools), .textArrayBinary(texts)]
        }
        struct Row: Sendable, Equatable {
            var array: String
            var value: String?
        }
        static func decode(_ row: PostgresRow) throws -> Row {
            Row(array: try row.decode("array"), value: try row.decode("value", as: String?.self))
        }

        /// How what the server returned differs from what was bound (NaN matches any NaN:
        /// the server keeps no NaN payload); empty when every element came back as it went.
        func mismatches(_ rows: [Row]) -> [String] {
            func values(_ array: String) -> [String?] { rows.filter { $0.array == array }.map(\.value) }
            var found: [String] = []
            let backInts = values("i").map { $0.flatMap { Int32($0) } }
            if backInts != ints.map(Optional.some) { found.append("int4 sent \(ints), got \(backInts)") }
            let backBools = values("b").map { $0.map { $0 == "true" } }
            if backBools != bools.map(Optional.some) { found.append("boolean sent \(bools), got \(backBools)") }
            let backTexts = values("t")
            if backTexts != texts { found.append("text sent \(texts.map { $0?.prefix(40) }), got \(backTexts.map { $0?.prefix(40) })") }
            let backDoubles = values("d").map { $0.flatMap(Self.double) }
            if backDoubles.count != doubles.count { found.append("float8 sent \(doubles.count), got \(backDoubles.count)") }
            for (sent, got) in zip(doubles, backDoubles) where !(sent.isNaN ? got?.isNaN == true : got == sent) {
                found.append("float8 sent \(sent) (bits \(sent.bitPattern)), got \(String(describing: got))")
            }
            return found
        }

        /// float8's text output: shortest round-trip digits, `NaN`, `Infinity`, `-Infinity`.
        static func double(_ text: String) -> Double? {
            switch text {
            case "NaN": .nan
            case "Infinity": .infinity
            case "-Infinity": -.infinity
            default: Double(text)
            }
        }
    }

    struct Scalars: PostgresStatement {
        var int: Int
        var int32: Int32
        var bool: Bool
        var double: Double
        var duration: Duration
        var json: String
        var bytes: [UInt8]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT $1::bigint AS int, $2::int AS int32, $3::boolean AS bool, $4::float8 AS double,
                   extract(epoch FROM make_interval(secs => $5::float8))::float8 AS seconds,
                   ($6::jsonb ->> 'k') AS json_k, encode($7::bytea, 'hex') AS hex
            """
        var bindings: PostgresBindings {
            [.int(int), .int(int32), .bool(bool), .double(double), .seconds(duration), .jsonb(json), .bytea(bytes)]
        }
        struct Row: Sendable, Equatable {
            var int: Int
            var int32: Int32
            var bool: Bool
            var double: Double
            var seconds: Double
            var jsonK: String
            var hex: String
        }
        static func decode(_ row: PostgresRow) throws -> Row {
            Row(int: try row.decode("int"), int32: try row.decode("int32"), bool: try row.decode("bool"),
                double: try row.decode("double"), seconds: try row.decode("seconds"), jsonK: try row.decode("json_k"),
                hex: try row.decode("hex"))
        }
    }

    /// Decodes column `C.name` of a fixed one-row result as `T` (non-optional).
    struct DecodeAs<T: PostgresDecodable & Sendable, C: ColumnName>: PostgresStatement {
        static var planning: PostgresPlanning { .perExecution }
        static var sql: SQL {
            """
            SELECT 42 AS good, NULL::int AS nothing, 'abc'::text AS letters, 9223372036854775807 AS big,
                   'x'::text AS not_bool, 'high'::text AS priority_text, 'urgent'::text AS bad_priority
            """
        }
        var bindings: PostgresBindings { [] }
        static func decode(_ row: PostgresRow) throws -> T { try row.decode(C.name) }
    }

    struct Doubled: PostgresStatement {
        var value: Int
        static let sql: SQL = "SELECT $1::int * 2 AS doubled"
        var bindings: PostgresBindings { [.int(value)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("doubled") }
    }

    struct Unprepared: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT 7 AS seven"
        var bindings: PostgresBindings { [] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("seven") }
    }

    struct Divide: PostgresStatement {
        var by: Int
        static let sql: SQL = "SELECT 1 / $1::int AS quotient"
        var bindings: PostgresBindings { [.int(by)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("quotient") }
    }

    struct PreparedCount: PostgresStatement {
        var name: String
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "SELECT count(*) AS count FROM pg_prepared_statements WHERE name = $1"
        var bindings: PostgresBindings { [.text(name)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("count") }
    }

    /// Rows that ask for different columns: odd rows read `a` then `b`, even rows `b`
    /// only, so the remembered index of a call is wrong for the next row half the time.
    struct Alternating: PostgresStatement {
        static let sql: SQL = "SELECT n, n * 10 AS a, n * 100 AS b FROM generate_series(1, 6) AS g(n) ORDER BY n"
        var bindings: PostgresBindings { [] }
        static func decode(_ row: PostgresRow) throws -> [Int] {
            let n: Int = try row.decode("n")
            return n % 2 == 1 ? [n, try row.decode("a"), try row.decode("b")] : [n, try row.decode("b")]
        }
    }

    struct Delete: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "DELETE FROM scratch WHERE n <= 3"
        var bindings: PostgresBindings { [] }
    }

    // MARK: Bindings

    @Test("text bindings reach the server as they are: quotes, backslashes, unicode, empty, NULL")
    func textRoundTrip() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        let values: [String?] = [
            "it's", #"a\b"#, #"\x00"#, "'; DROP TABLE queue.jobs; --", "$1", "ünïcødé 🐘 日本", "", "line\nbreak\ttab",
            "{\"a\": [1, 2]}", nil,
        ]
        for value in values {
            let row = try await connection.firstRow(EchoText(value: value))
            #expect(row == EchoText.Row(value: value, isNull: value == nil))
        }
        await connection.close()
        await database.drop()
    }

    @Test("array bindings: text elements with quotes, backslashes, commas, braces, unicode and NULLs; bigints")
    func arrayRoundTrip() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        let texts: [String?] = [
            "plain", "with \"quotes\"", #"back\slash"#, "a,b", "{braces}", "NULL", nil, "", " padded ", "ü🐘", nil,
        ]
        #expect(try await connection.rows(TextArrayElements(values: texts)) == texts)
        #expect(try await connection.rows(TextArrayElements(values: [])) == [])
        let ints: [Int64] = [0, -1, .max, .min, 42]
        #expect(try await connection.rows(IntArrayElements(values: ints)) == ints)
        // The binary form: the same values, empty, and large, in both planning modes.
        #expect(try await connection.rows(Int8ArrayElements(values: ints, label: "x")) == ints.map { "\($0) x" })
        #expect(try await connection.rows(Int8ArrayElements(values: [], label: "x")) == [])
        let many = (1...5_000).map { Int64($0) * 1_000_003 }
        #expect(try await connection.rows(Int8ArrayElements(values: many, label: "y")) == many.map { "\($0) y" })
        #expect(try await connection.firstRow(Int8ArrayPerExecution(values: ints)) == [5, -2 + 42])
        #expect(try await connection.firstRow(Int8ArrayPerExecution(values: [])) == [0, 0])
        await connection.close()
        await database.drop()
    }

    @Test("binary int4, float8, boolean and text arrays: extremes, NaN, infinities, NULL elements, unicode, empty")
    func typedArrayRoundTrip() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        let ints: [Int32] = [0, -1, .max, .min, 42]
        let doubles: [Double] = [0, -0.0, 1.5, -2.25e-308, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e-9,
                                 0.1, .infinity, -.infinity, .nan]
        let bools = [true, false, true]
        let texts: [String?] = ["completed", nil, "", "with \"quotes\" and \\", "ü🐘 日本", "a,b{}", nil, String(repeating: "x", count: 70_000)]
        let sent = TypedArrayElements(ints: ints, doubles: doubles, bools: bools, texts: texts)
        #expect(sent.mismatches(try await connection.rows(sent)) == [])
        // Empty arrays: no elements, and no error.
        #expect(try await connection.rows(TypedArrayElements(ints: [], doubles: [], bools: [], texts: [])) == [])
        await connection.close()
        await database.drop()
    }

    @Test("binary typed arrays: any int4, any float8 bit pattern, any text without NUL reach the server as they are")
    func typedArrayProperty() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        let cases = Mutex(0)
        await propertyCheck(
            count: 60,
            input: Gen.int32().array(of: 0...40),
            // Every bit pattern: NaNs with payloads, subnormals, negative zero.
            Gen.uint64().map { Double(bitPattern: $0) }.array(of: 0...40),
            Gen.bool.array(of: 0...40),
            Gen.oneOf(
                Gen.character(in: "\u{1}"..."\u{D7FF}"), Gen.character(in: "\u{E000}"..."\u{10FFFF}"),
                Gen.character(in: "\u{300}"..."\u{36F}")
            ).string(of: 0...60).map { Optional($0) }.array(of: 0...20)
        ) { ints, doubles, bools, texts in
            cases.withLock { $0 += 1 }
            do {
                let sent = TypedArrayElements(ints: ints, doubles: doubles, bools: bools, texts: texts)
                #expect(sent.mismatches(try await connection.rows(sent)) == [])
            } catch {
                Issue.record("statement failed: \(error)")
            }
        }
        #expect(cases.withLock { $0 } == 60)
        await connection.close()
        await database.drop()
    }

    @Test("integer, boolean, float8, duration, jsonb and bytea bindings round-trip")
    func scalarRoundTrip() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        let statement = Scalars(
            int: .min, int32: .max, bool: true, double: 0.1 + 0.2, duration: .milliseconds(1500) + .microseconds(3),
            json: #"{"k": "va\"l'ue"}"#, bytes: [0, 1, 0xAB, 0xFF])
        let row = try #require(try await connection.firstRow(statement))
        #expect(row == Scalars.Row(
            int: .min, int32: .max, bool: true, double: 0.1 + 0.2, seconds: 1.500003, jsonK: "va\"l'ue", hex: "0001abff"))
        let other = try #require(try await connection.firstRow(Scalars(
            int: 0, int32: -5, bool: false, double: -.infinity, duration: .zero, json: #"{"k": ""}"#, bytes: [])))
        #expect(other == Scalars.Row(int: 0, int32: -5, bool: false, double: -.infinity, seconds: 0, jsonK: "", hex: ""))
        await connection.close()
        await database.drop()
    }

    // MARK: Decoding

    @Test("decoding throws on a missing column, NULL, a malformed or out-of-range value; never traps")
    func decodingErrors() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        func attempt<T: PostgresDecodable & Sendable, C: ColumnName>(_ column: C.Type, as: T.Type) async throws -> T? {
            try await connection.firstRow(DecodeAs<T, C>())
        }
        #expect(try await attempt(Good.self, as: Int.self) == 42)
        #expect(try await attempt(PriorityText.self, as: JobPriority.self) == .high)
        let cases: [(String, PostgresDecodingError.Kind, () async throws -> Void)] = [
            ("missing", .missingColumn, { _ = try await attempt(NoSuchColumn.self, as: Int.self) }),
            ("null", .null, { _ = try await attempt(Nothing.self, as: Int.self) }),
            ("letters as int", .malformed, { _ = try await attempt(Letters.self, as: Int.self) }),
            ("int64.max as int32", .malformed, { _ = try await attempt(Big.self, as: Int32.self) }),
            ("x as bool", .malformed, { _ = try await attempt(NotBool.self, as: Bool.self) }),
            ("unknown enum case", .malformed, { _ = try await attempt(BadPriority.self, as: JobPriority.self) }),
        ]
        for (label, kind, run) in cases {
            do {
                try await run()
                Issue.record("\(label): decoded without an error")
            } catch let error as PostgresDecodingError {
                #expect(error.kind == kind, "\(label)")
                #expect(error.statement?.contains("DecodeAs") == true, "\(label): \(error)")
            }
        }
        // The connection is idle and usable after a decoding error.
        #expect(try await connection.firstRow(Doubled(value: 4)) == 8)
        await connection.close()
        await database.drop()
    }

    @Test("a row that reads other columns than the one before it still gets the right values")
    func columnLookupPerCall() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        #expect(try await connection.rows(Alternating()) == [
            [1, 10, 100], [2, 200], [3, 30, 300], [4, 400], [5, 50, 500], [6, 600],
        ])
        await connection.close()
        await database.drop()
    }

    @Test("execute returns the affected rows")
    func affectedRows() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        try await connection.executeScript("CREATE TABLE scratch (n int); INSERT INTO scratch SELECT generate_series(1, 5)")
        #expect(try await connection.execute(Delete()) == 3)
        #expect(try await connection.execute(Delete()) == 0)
        await connection.close()
        await database.drop()
    }

    // MARK: Preparation

    @Test("a statement is prepared once per session under its SQL's name, and again after DEALLOCATE ALL")
    func preparedAndReprepared() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        #expect(try await connection.firstRow(Doubled(value: 2)) == 4)
        #expect(try await connection.firstRow(PreparedCount(name: Doubled.sql.preparedName)) == 1)
        try await connection.query("DEALLOCATE ALL")
        #expect(try await connection.firstRow(PreparedCount(name: Doubled.sql.preparedName)) == 0)
        #expect(try await connection.firstRow(Doubled(value: 3)) == 6)
        #expect(try await connection.firstRow(PreparedCount(name: Doubled.sql.preparedName)) == 1)
        // A server error is still reported as one, and the statement works after it.
        await #expect(throws: PostgresError.self) { try await connection.firstRow(Divide(by: 0)) }
        #expect(try await connection.firstRow(Divide(by: 1)) == 1)
        // Planned per execution: never prepared.
        #expect(try await connection.firstRow(Unprepared()) == 7)
        #expect(try await connection.firstRow(PreparedCount(name: Unprepared.sql.preparedName)) == 0)
        await connection.reset()
        #expect(try await connection.firstRow(Doubled(value: 10)) == 20)
        await connection.close()
        await #expect(throws: PostgresError(.closed, "connection statements is closed")) {
            try await connection.firstRow(Doubled(value: 1))
        }
        await database.drop()
    }

    @Test("an identifier is quoted: whatever the name holds, it stays one identifier")
    func identifiers() async throws {
        #expect(SQL.identifier("plain").text == "\"plain\"")
        #expect(SQL.identifier("a\"; DROP TABLE t; --").text == "\"a\"\"; DROP TABLE t; --\"")
        let database = try await TestDatabase.create()
        let connection = database.connection("statements")
        // The server reads a hostile name back as the one identifier it is.
        let hostile = "x\"; DROP TABLE queue.jobs; --"
        try await connection.executeScript("CREATE TABLE public." + SQL.identifier(hostile) + " (a int)")
        #expect(try await connection.query("SELECT count(*) FROM pg_tables WHERE tablename = $1", [hostile]).rows == [["1"]])
        #expect(try await connection.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'queue' AND tablename = 'jobs'").rows == [["1"]])
        await connection.close()
        await database.drop()
    }

    @Test("SQL composes from literals; its prepared name follows its text")
    func composition() {
        let fragment: SQL = " FROM t"
        let composed: SQL = "SELECT a" + fragment + " WHERE b"
        #expect(composed.text == "SELECT a FROM t WHERE b")
        let same: SQL = "SELECT a FROM t" + " WHERE b"
        #expect(composed == same)
        #expect(composed.preparedName == ("SELECT a FROM t WHERE b" as SQL).preparedName)
        #expect(composed.preparedName.hasPrefix("jobd_"))
        #expect(composed.preparedName != ("SELECT a" + fragment).preparedName)
    }
}

/// The column a `DecodeAs` statement reads.
protocol ColumnName { static var name: String { get } }
enum Good: ColumnName { static let name = "good" }
enum NoSuchColumn: ColumnName { static let name = "no_such_column" }
enum Nothing: ColumnName { static let name = "nothing" }
enum Letters: ColumnName { static let name = "letters" }
enum Big: ColumnName { static let name = "big" }
enum NotBool: ColumnName { static let name = "not_bool" }
enum PriorityText: ColumnName { static let name = "priority_text" }
enum BadPriority: ColumnName { static let name = "bad_priority" }
