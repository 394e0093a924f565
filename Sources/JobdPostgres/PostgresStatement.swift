import CLibPQ

/// How the server plans a statement.
public enum PostgresPlanning: Sendable {
    /// Parsed and planned once per session, then only bound and executed: for
    /// statements that run over and over on a long-lived connection. The first
    /// execution on a session costs one extra round trip (the prepare).
    case perSession
    /// Parsed and planned on every execution, with the values bound: for one-shot
    /// operator commands (a prepare would be a wasted round trip), statements next to
    /// DDL, and filters whose `$n IS NULL OR …` conditions must fold away for the
    /// plan to use an index (a generic plan keeps them all).
    case perExecution
}

/// Which scans a session's planner may choose (`enable_seqscan`).
public enum PostgresScans: String, Sendable {
    /// Whichever the planner's costs favour.
    case any = "on"
    /// A sequential scan only where no index can serve the statement. For a connection
    /// whose statements find a few rows by key in a table that swings between nearly
    /// empty and a backlog of millions: a plan made while the table was small may scan
    /// it whole (the cheapest way through 20 rows), and a prepared statement keeps that
    /// plan while the table grows (see `QueueStore.claim`, `QueueStore.dueJobs`).
    case indexed = "off"
}

/// One SQL statement as a type: its text, its parameters and how a row of its
/// result decodes. The model is postgres-nio's `PostgresPreparedStatement`.
///
/// A store runs statements through `PostgresConnection.rows(_:)`, `firstRow(_:)`
/// or `execute(_:)`; it never builds SQL text (`SQL` cannot hold a runtime value)
/// and never reads a column by position.
///
/// ```swift
/// struct DeleteListener: PostgresStatement {
///     static let sql: SQL = "DELETE FROM queue.listeners WHERE daemon_id = $1"
///     var daemonID: String
///     var bindings: PostgresBindings { [.text(daemonID)] }
/// }
/// ```
public protocol PostgresStatement: Sendable {
    /// What `decode` makes of one row; `PostgresNoRow` for statements whose rows
    /// (if any) are not read.
    associatedtype Row: Sendable = PostgresNoRow

    /// The statement's text; `$1…$n` are `bindings` in order.
    static var sql: SQL { get }
    /// `.perSession` unless the statement says otherwise.
    static var planning: PostgresPlanning { get }
    /// The parameters, `$1…$n`.
    var bindings: PostgresBindings { get }
    /// One row of the result, by column name. Throws `PostgresDecodingError` (from
    /// `row.decode`) when a value is missing, NULL or malformed.
    static func decode(_ row: PostgresRow) throws -> Row
}

extension PostgresStatement {
    public static var planning: PostgresPlanning { .perSession }
}

/// The `Row` of a statement whose result rows are not read (a command, or a
/// statement run for its effect and its affected-row count).
public struct PostgresNoRow: Sendable, Equatable {
    public init() {}
}

extension PostgresStatement where Row == PostgresNoRow {
    public static func decode(_ row: PostgresRow) throws -> PostgresNoRow { PostgresNoRow() }
}

extension PostgresConnection {
    /// Runs `statement` and decodes every row of its result.
    ///
    /// The same deadline, cancellation and error semantics as `query`: `timeout`
    /// seconds (default: the connection's command timeout); `PostgresError` for a
    /// failed, timed-out or closed connection and for a server error;
    /// `PostgresDecodingError` when a row does not decode (the connection stays usable).
    public func rows<S: PostgresStatement>(_ statement: S, timeout: Double? = nil) throws -> [S.Row] {
        var rows: [S.Row] = []
        try execute(statement, timeout: timeout) { result in
            rows = try Self.decodeRows(S.self, result)
        }
        return rows
    }

    /// The first row of `statement`'s result, nil when it has none.
    public func firstRow<S: PostgresStatement>(_ statement: S, timeout: Double? = nil) throws -> S.Row? {
        var row: S.Row?
        try execute(statement, timeout: timeout) { result in
            row = try Self.decodeRows(S.self, result, limit: 1).first
        }
        return row
    }

    /// Runs `statement` for its effect; returns the rows it touched (the command
    /// tag's count: inserted, updated, deleted, or selected).
    @discardableResult
    public func execute<S: PostgresStatement>(_ statement: S, timeout: Double? = nil) throws -> Int {
        var affected = 0
        try execute(statement, timeout: timeout) { result in
            affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        }
        return affected
    }

    private func execute<S: PostgresStatement>(
        _ statement: S, timeout: Double?, consume: (OpaquePointer) throws -> Void
    ) throws {
        try Task.checkCancellation()
        try connect()
        let sql = S.sql
        let limit = timeout ?? commandTimeout
        switch S.planning {
        case .perSession:
            try runPrepared(sql.text, name: sql.preparedName, statement.bindings.parameters, timeout: limit, consume: consume)
        case .perExecution:
            try run(sql.text, statement.bindings.parameters, simple: false, timeout: limit, consume: consume)
        }
    }

    private static func decodeRows<S: PostgresStatement>(
        _ type: S.Type, _ result: OpaquePointer, limit: Int32 = .max
    ) throws -> [S.Row] {
        let count = min(PQntuples(result), limit)
        var rows: [S.Row] = []
        rows.reserveCapacity(Int(count))
        let columns = PostgresColumns(result)
        do {
            for index in 0..<count {
                columns.startRow()
                rows.append(try S.decode(PostgresRow(result: result, index: index, columns: columns)))
            }
        } catch var error as PostgresDecodingError {
            error.statement = "\(S.self)"
            throw error
        }
        return rows
    }
}
