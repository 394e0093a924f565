import JobdPostgres
import JobdTestSupport
import Testing

/// `PostgresConnection.queryPrepared`: parse and plan once per session, and recover
/// when the server forgot the statement.
@Suite("Prepared statements", .serialized)
struct PreparedStatementTests {
    @Test("the second call binds the prepared statement; results match a plain query")
    func preparedOnce() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("prepared")
        let sql = "SELECT $1::int + 1, $2::text"
        #expect(try await connection.queryPrepared(sql, ["41", "a"]).rows == [["42", "a"]])
        #expect(try await connection.queryPrepared(sql, ["1", nil]).rows == [["2", nil]])
        let name = PostgresConnection.statementName(sql)
        let known = try await connection.query("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", [name])
        #expect(known.rows == [["1"]])
        await connection.close()
        await database.drop()
    }

    @Test("after DEALLOCATE ALL (as a pooler would) the statement is prepared again")
    func reprepares() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("prepared")
        let sql = "SELECT $1::int * 2"
        #expect(try await connection.queryPrepared(sql, ["2"]).rows == [["4"]])
        try await connection.query("DEALLOCATE ALL")
        #expect(try await connection.queryPrepared(sql, ["3"]).rows == [["6"]])
        // A server error is still reported as one.
        await #expect(throws: PostgresError.self) {
            try await connection.queryPrepared("SELECT 1 / $1::int", ["0"])
        }
        #expect(try await connection.queryPrepared(sql, ["5"]).rows == [["10"]])
        await connection.close()
        await database.drop()
    }

    @Test("a new session prepares afresh")
    func newSession() async throws {
        let database = try await TestDatabase.create()
        let connection = database.connection("prepared")
        let sql = "SELECT $1::int - 1"
        #expect(try await connection.queryPrepared(sql, ["1"]).rows == [["0"]])
        await connection.reset()
        #expect(try await connection.queryPrepared(sql, ["10"]).rows == [["9"]])
        await connection.close()
        // Closed for good: no new session behind the caller's back.
        await #expect(throws: PostgresError(.closed, "connection prepared is closed")) {
            try await connection.queryPrepared(sql, ["10"])
        }
        await database.drop()
    }

    @Test("statement names follow the text")
    func names() {
        #expect(PostgresConnection.statementName("SELECT 1") == PostgresConnection.statementName("SELECT 1"))
        #expect(PostgresConnection.statementName("SELECT 1") != PostgresConnection.statementName("SELECT 2"))
        #expect(PostgresConnection.statementName("SELECT 1").hasPrefix("jobd_"))
    }
}
