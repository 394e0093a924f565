import CLibPQ

/// A fully read result set, values in Postgres's text format.
public struct PostgresResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[String?]]
    /// Rows touched by INSERT/UPDATE/DELETE (from the command tag).
    public var affectedRows: Int

    public init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    init(_ result: OpaquePointer) {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        self.rows = rows
        affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// Index of a column by name; crashes on a typo, which tests catch at once.
    public func column(_ name: String) -> Int {
        guard let index = columns.firstIndex(of: name) else {
            preconditionFailure("result has no column \(name); has \(columns)")
        }
        return index
    }

    /// Each row as a name → value dictionary (for CLI output, not hot paths).
    public var records: [[String: String?]] {
        rows.map { row in Dictionary(uniqueKeysWithValues: zip(columns, row).map { ($0, $1) }) }
    }
}

/// A libpq or server error, with the SQLSTATE when the server sent one.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The connection failed or broke; the statement may or may not have run.
        case connection
        /// The deadline passed; the statement was cancelled and the connection dropped.
        case timeout
        /// The server rejected the statement; the connection is fine.
        case server
        /// `close()` was called; the connection is not reopened.
        case closed
    }

    public var kind: Kind
    public var message: String
    public var sqlState: String?
    public var detail: String?
    public var constraint: String?

    public init(_ kind: Kind, _ message: String, sqlState: String? = nil, detail: String? = nil, constraint: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.constraint = constraint
    }

    init(result: OpaquePointer) {
        func field(_ code: Character) -> String? {
            guard let raw = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: raw)
        }
        self.init(
            .server,
            field("M") ?? String(cString: PQresultErrorMessage(result)),
            sqlState: field("C"), detail: field("D"), constraint: field("n")
        )
    }

    /// True for errors worth retrying on a fresh connection.
    public var isTransient: Bool {
        switch kind {
        case .connection, .timeout: return true
        case .closed: return false
        case .server:
            // Class 08 connection exceptions, 40 serialization/deadlock, 57P0x shutdown.
            guard let state = sqlState else { return false }
            return state.hasPrefix("08") || state.hasPrefix("40") || state.hasPrefix("57P")
        }
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += " — \(detail)" }
        return text
    }
}

/// Renders Swift values as Postgres array literals for `$n::bigint[]` parameters.
/// Passing a whole batch as one array keeps a batch to one round trip.
public enum PostgresArray {
    public static func integers<T: BinaryInteger>(_ values: some Sequence<T>) -> String {
        "{" + values.map { String($0) }.joined(separator: ",") + "}"
    }

    /// A one-dimensional `int8[]` without NULLs in the binary format `array_recv`
    /// reads (`binaryArray`).
    public static func int8Binary(_ values: some Collection<Int64>) -> [UInt8] {
        fixedWidthBinary(elementType: 20, values) { $0.bigEndian }
    }

    /// A one-dimensional `int4[]` without NULLs, binary (`binaryArray`).
    public static func int4Binary(_ values: some Collection<Int32>) -> [UInt8] {
        fixedWidthBinary(elementType: 23, values) { $0.bigEndian }
    }

    /// A one-dimensional `float8[]` without NULLs, binary: each element its IEEE 754
    /// bits (NaN and the infinities pass as they are; float8 takes them).
    public static func float8Binary(_ values: some Collection<Double>) -> [UInt8] {
        fixedWidthBinary(elementType: 701, values) { $0.bitPattern.bigEndian }
    }

    /// A one-dimensional `boolean[]` without NULLs, binary: one byte an element.
    public static func boolBinary(_ values: some Collection<Bool>) -> [UInt8] {
        fixedWidthBinary(elementType: 16, values) { UInt8($0 ? 1 : 0) }
    }

    /// A one-dimensional `text[]`, binary: each element its UTF-8 bytes, nil elements
    /// NULL. The server refuses a NUL byte in text, so the caller keeps NUL out.
    public static func textBinary(_ values: some Collection<String?>) -> [UInt8] {
        let bytes = values.reduce(0) { $0 + ($1?.utf8.count ?? 0) }
        return binaryArray(elementType: 25, count: values.count, elementBytes: bytes) { raw, offset in
            for value in values {
                guard var value else {
                    raw.storeBytes(of: Int32(-1).bigEndian, toByteOffset: offset, as: Int32.self)
                    offset += 4
                    continue
                }
                value.withUTF8 { utf8 in
                    raw.storeBytes(of: Int32(clamping: utf8.count).bigEndian, toByteOffset: offset, as: Int32.self)
                    UnsafeMutableRawBufferPointer(rebasing: raw[(offset + 4)...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
                    offset += 4 + utf8.count
                }
            }
        }
    }

    /// Fixed-width elements, `bigEndian` giving each one's bytes in wire order.
    private static func fixedWidthBinary<C: Collection, Element: BitwiseCopyable>(
        elementType: Int32, _ values: C, bigEndian: (C.Element) -> Element
    ) -> [UInt8] {
        let width = MemoryLayout<Element>.size
        return binaryArray(elementType: elementType, count: values.count, elementBytes: values.count * width) { raw, offset in
            let length = Int32(width).bigEndian
            for value in values {
                raw.storeBytes(of: length, toByteOffset: offset, as: Int32.self)
                raw.storeBytes(of: bigEndian(value), toByteOffset: offset + 4, as: Element.self)
                offset += 4 + width
            }
        }
    }

    /// A one-dimensional array in the binary format `array_recv` reads: dimensions (0
    /// for an empty array), a has-nulls flag (0: the server finds NULLs by their
    /// length), the element type's oid, then the dimension's length and lower bound
    /// (1), then each element as its length and its bytes, or length −1 for NULL;
    /// integers big-endian. The server checks the oid against the parameter's type
    /// (`$n::bigint[]` takes only int8's).
    ///
    /// Written straight into a buffer of the exact size (`elementBytes`: the
    /// elements' bytes without their length words): the promoter binds up to a few
    /// thousand ids on every pass, and the completion ten arrays a batch.
    /// `writeElements` stores the `count` elements from `offset` on and advances it.
    private static func binaryArray(
        elementType: Int32, count: Int, elementBytes: Int,
        writeElements: (UnsafeMutableRawBufferPointer, inout Int) -> Void
    ) -> [UInt8] {
        let headerSize = count == 0 ? 12 : 20
        return [UInt8](unsafeUninitializedCapacity: headerSize + 4 * count + elementBytes) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.storeBytes(of: Int32(count == 0 ? 0 : 1).bigEndian, toByteOffset: 0, as: Int32.self)
            raw.storeBytes(of: Int32(0).bigEndian, toByteOffset: 4, as: Int32.self)
            raw.storeBytes(of: elementType.bigEndian, toByteOffset: 8, as: Int32.self)
            if count > 0 {
                raw.storeBytes(of: Int32(clamping: count).bigEndian, toByteOffset: 12, as: Int32.self)
                raw.storeBytes(of: Int32(1).bigEndian, toByteOffset: 16, as: Int32.self)
            }
            var offset = headerSize
            writeElements(raw, &offset)
            precondition(offset == raw.count, "binary array: wrote \(offset) of \(raw.count) bytes")
            initialized = offset
        }
    }

    /// Every element quoted, `"` and `\` escaped, nil elements NULL. Built as UTF-8
    /// bytes: both escaped characters are ASCII, so they never occur inside a
    /// multi-byte sequence, and runs between them are copied whole (a message body
    /// in hex is tens of kilobytes per element).
    public static func texts(_ values: some Sequence<String?>) -> String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var out: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for value in values {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            guard var value else {
                out.append(contentsOf: "NULL".utf8)
                continue
            }
            out.append(quote)
            value.withUTF8 { bytes in
                var start = 0
                for index in bytes.indices where bytes[index] == quote || bytes[index] == backslash {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                    out.append(backslash)
                    start = index
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
            }
            out.append(quote)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

extension Result where Failure == any Error {
    /// `body`'s value, or the server's refusal (`PostgresError.Kind.server`) as this
    /// result's failure: the outcome of one item of a group-committed batch. Any other
    /// error (the connection) is thrown, since no outcome is known.
    public static func refusable(_ body: () async throws -> Success) async throws -> Self {
        do {
            return .success(try await body())
        } catch let error as PostgresError where error.kind == .server {
            return .failure(error)
        }
    }
}
