import CLibPQ
import JobdCore

/// A type a result column decodes to, from Postgres's text format.
public protocol PostgresDecodable {
    /// The value the text-format bytes spell; nil when they spell none (a
    /// malformed value: `PostgresRow.decode` throws).
    init?(postgresText bytes: UnsafeRawBufferPointer)
}

/// One row of a result, read by column name while a statement's `decode` runs.
///
/// Only valid during that call: it reads the libpq result in place (no copy of the
/// row), which is freed once every row is decoded. It is not `Sendable` and a
/// statement's `Row` must be, so it cannot be kept in a decoded row.
public struct PostgresRow {
    private let result: OpaquePointer
    private let index: Int32
    private let columns: PostgresColumns

    init(result: OpaquePointer, index: Int32, columns: PostgresColumns) {
        self.result = result
        self.index = index
        self.columns = columns
    }

    /// The value of `column`. Throws `PostgresDecodingError` (never traps) when the
    /// result has no such column, the value is NULL, or its text is not a `T`.
    @inlinable
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let bytes = try text(column, type: T.self) else {
            throw PostgresDecodingError(.null, column: column, type: "\(T.self)")
        }
        guard let value = T(postgresText: bytes) else { throw Self.malformed(column, type: T.self, bytes) }
        return value
    }

    /// The value of `column`, nil when NULL. Throws on a missing column or a malformed value.
    @inlinable
    public func decode<T: PostgresDecodable>(_ column: String, as type: T?.Type) throws -> T? {
        guard let bytes = try text(column, type: T.self) else { return nil }
        guard let value = T(postgresText: bytes) else { throw Self.malformed(column, type: T.self, bytes) }
        return value
    }

    // The generic wrappers above are inlinable so that they are specialised for each
    // decoded type in the module that decodes; the work is here, not generic.

    /// The text-format bytes of `column` in this row, nil when NULL; valid while the row is.
    @usableFromInline
    func text(_ column: String, type: Any.Type) throws -> UnsafeRawBufferPointer? {
        guard let field = columns.index(of: column) else {
            throw PostgresDecodingError(.missingColumn, column: column, type: "\(type)")
        }
        if PQgetisnull(result, index, field) == 1 { return nil }
        return UnsafeRawBufferPointer(start: PQgetvalue(result, index, field), count: Int(PQgetlength(result, index, field)))
    }

    @usableFromInline
    static func malformed(_ column: String, type: Any.Type, _ bytes: UnsafeRawBufferPointer) -> PostgresDecodingError {
        PostgresDecodingError(
            .malformed, column: column, type: "\(type)", value: String(decoding: bytes.prefix(60), as: UTF8.self))
    }
}

@available(*, unavailable)
extension PostgresRow: Sendable {}

/// The columns of one result, and which one each `decode` call of a row reads.
///
/// A statement's `decode` asks for the same columns in the same order on every row,
/// so the index found for the k-th call of the first row is remembered for the k-th
/// call of the next: the name is compared (the same literal, so a pointer compare)
/// rather than searched. A call that asks for another name searches and remembers
/// that one instead. Per result, used on one thread only (the connection's).
///
/// The remembered slots and the cursor live in memory this object allocates, not in
/// stored `var`s: a class's stored variables are checked for exclusive access at
/// run time on every read and write, which cost more than the lookup saves.
final class PostgresColumns {
    private let names: [String]
    private let capacity: Int
    /// The name asked for by the k-th decode call of a row (nil: not seen yet)…
    private let slotNames: UnsafeMutablePointer<String?>
    /// …and its column index (-1: the result has no such column).
    private let slotIndexes: UnsafeMutablePointer<Int32>
    /// The decode call of the current row; `startRow()` resets it.
    private let cursor: UnsafeMutablePointer<Int>

    init(_ result: OpaquePointer) {
        names = (0..<PQnfields(result)).map { String(cString: PQfname(result, $0)) }
        // Calls beyond the capacity (a decoder reading columns twice over) search each time.
        capacity = 2 * names.count + 8
        slotNames = .allocate(capacity: capacity)
        slotNames.initialize(repeating: nil, count: capacity)
        slotIndexes = .allocate(capacity: capacity)
        slotIndexes.initialize(repeating: -1, count: capacity)
        cursor = .allocate(capacity: 1)
        cursor.initialize(to: 0)
    }

    deinit {
        slotNames.deinitialize(count: capacity)
        slotNames.deallocate()
        slotIndexes.deallocate()
        cursor.deallocate()
    }

    func startRow() { cursor.pointee = 0 }

    func index(of name: String) -> Int32? {
        let call = cursor.pointee
        cursor.pointee = call + 1
        if call < capacity, slotNames[call] == name {
            let index = slotIndexes[call]
            return index < 0 ? nil : index
        }
        let found = names.firstIndex(of: name).map { Int32($0) }
        if call < capacity {
            slotNames[call] = name
            slotIndexes[call] = found ?? -1
        }
        return found
    }
}

/// A result value that is not what the statement's decoder expects: a column the
/// result lacks, NULL where the decoder wants a value, or text that does not parse.
/// The statement's SQL and its decoder disagree, or the schema changed under them.
public struct PostgresDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case missingColumn = "no such column"
        case null = "NULL where a value is required"
        case malformed = "malformed value"
    }

    public var kind: Kind
    public var column: String
    /// The Swift type asked for.
    public var type: String
    /// The start of the malformed text (for `.malformed`).
    public var value: String?
    /// The statement type whose row failed to decode (set by the connection).
    public var statement: String?

    public init(_ kind: Kind, column: String, type: String, value: String? = nil, statement: String? = nil) {
        self.kind = kind
        self.column = column
        self.type = type
        self.value = value
        self.statement = statement
    }

    public var description: String {
        var text = "\(kind.rawValue): column \(column) as \(type)"
        if let value { text += " (\"\(value)\")" }
        if let statement { text += " in \(statement)" }
        return text
    }
}

// MARK: - Conformances

extension String: PostgresDecodable {
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        self = String(decoding: bytes, as: UTF8.self)
    }
}

extension Int64: PostgresDecodable {
    /// Decimal digits with an optional leading `-` (how Postgres writes every
    /// integer type); nil on anything else or on overflow.
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = negative
                ? shifted.subtractingReportingOverflow(Int64(digit)) : shifted.addingReportingOverflow(Int64(digit))
            guard !overflowA, !overflowB else { return nil }
            value = next
            index += 1
        }
        self = value
    }
}

extension Int: PostgresDecodable {
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        guard let value = Int64(postgresText: bytes), let exact = Int(exactly: value) else { return nil }
        self = exact
    }
}

extension Int32: PostgresDecodable {
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        guard let value = Int64(postgresText: bytes), let exact = Int32(exactly: value) else { return nil }
        self = exact
    }
}

extension Double: PostgresDecodable {
    /// float8's output, including `Infinity`, `-Infinity` and `NaN`.
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        guard let value = Double(String(decoding: bytes, as: UTF8.self)) else { return nil }
        self = value
    }
}

extension Bool: PostgresDecodable {
    /// `t` or `f`, as Postgres writes a boolean.
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 1 else { return nil }
        switch bytes[0] {
        case UInt8(ascii: "t"): self = true
        case UInt8(ascii: "f"): self = false
        default: return nil
        }
    }
}

/// A string enum decodes from its raw value; a text the enum has no case for is malformed.
extension PostgresDecodable where Self: RawRepresentable, RawValue == String {
    public init?(postgresText bytes: UnsafeRawBufferPointer) {
        self.init(rawValue: String(decoding: bytes, as: UTF8.self))
    }
}

extension JobPriority: PostgresDecodable {}
extension JobState: PostgresDecodable {}
