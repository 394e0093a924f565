/// One parameter of a statement: in Postgres's text format (what libpq's
/// `PQsendQueryParams` and `PQsendQueryPrepared` take with format 0), or, for the
/// bindings that say so (the typed arrays: `int8Array`, `int4Array`, `float8Array`,
/// `boolArray`, `textArrayBinary`), in its binary format (format 1). The
/// statement's SQL casts each `$n` to its type (`$1::bigint[]`, `$2::float8`); the
/// factory used here must render a value that type accepts.
///
/// A binding is data, never SQL: whatever its text holds (quotes, backslashes,
/// `;`) reaches the server as a parameter value.
public struct PostgresBinding: Sendable, Equatable {
    /// The text-format value; nil is SQL NULL or a binary value.
    public let text: String?
    /// The binary-format value (sent with format 1); nil for a text value.
    public let binary: [UInt8]?

    private init(_ text: String?) {
        self.text = text
        self.binary = nil
    }

    private init(binary: [UInt8]) {
        self.text = nil
        self.binary = binary
    }

    /// SQL NULL.
    public static let null = PostgresBinding(nil)

    /// An integer, for `$n::int`, `$n::bigint` (or `smallint`); nil is NULL.
    public static func int<T: BinaryInteger>(_ value: T?) -> PostgresBinding {
        PostgresBinding(value.map { String($0) })
    }

    /// Text as it is, for `$n` or `$n::text`; nil is NULL.
    public static func text(_ value: String?) -> PostgresBinding {
        PostgresBinding(value)
    }

    /// JSON text, for `$n::jsonb` (the server parses and checks it); nil is NULL.
    public static func jsonb(_ value: String?) -> PostgresBinding {
        PostgresBinding(value)
    }

    /// `t` or `f`, for `$n::boolean`; nil is NULL.
    public static func bool(_ value: Bool?) -> PostgresBinding {
        PostgresBinding(value.map { $0 ? "t" : "f" })
    }

    /// For `$n::float8`: Swift's shortest round-trip form; `inf`, `-inf` and `nan`,
    /// which float8 accepts too. nil is NULL.
    public static func double(_ value: Double?) -> PostgresBinding {
        PostgresBinding(value.map { String($0) })
    }

    /// A duration as float8 seconds, for `make_interval(secs => $n::float8)` (the
    /// form the queue's statements use). Exact to the microsecond Postgres keeps.
    /// The one way a statement binds a `Duration`; never `inf` or `nan`.
    public static func seconds(_ value: Duration) -> PostgresBinding {
        .double(value.seconds)
    }

    /// An array literal for `$n::bigint[]` or `$n::int[]`: a whole batch in one
    /// parameter, so a batch is one round trip.
    public static func intArray<S: Sequence>(_ values: S) -> PostgresBinding where S.Element: BinaryInteger {
        PostgresBinding(PostgresArray.integers(values))
    }

    /// A `bigint[]` in Postgres's binary array format, for `$n::bigint[]` only (the
    /// server checks the element type): no text to render here or to parse there,
    /// for the arrays bound on every pass (the promoter's pushed ids, claimed ids).
    public static func int8Array(_ values: some Collection<Int64>) -> PostgresBinding {
        PostgresBinding(binary: PostgresArray.int8Binary(values))
    }

    /// An `int[]` (`int4[]`) in the binary array format, for `$n::int[]` only.
    public static func int4Array(_ values: some Collection<Int32>) -> PostgresBinding {
        PostgresBinding(binary: PostgresArray.int4Binary(values))
    }

    /// A `float8[]` in the binary array format, for `$n::float8[]` only: no decimal
    /// text; NaN and the infinities reach the server as such.
    public static func float8Array(_ values: some Collection<Double>) -> PostgresBinding {
        PostgresBinding(binary: PostgresArray.float8Binary(values))
    }

    /// A `boolean[]` in the binary array format, for `$n::boolean[]` only.
    public static func boolArray(_ values: some Collection<Bool>) -> PostgresBinding {
        PostgresBinding(binary: PostgresArray.boolBinary(values))
    }

    /// A `text[]` in the binary array format, for `$n::text[]` only (`textArray` is the
    /// text form, which any element type that parses from text accepts); nil elements
    /// NULL. The server refuses a NUL byte in text: the caller keeps NUL out.
    public static func textArrayBinary(_ values: some Collection<String?>) -> PostgresBinding {
        PostgresBinding(binary: PostgresArray.textBinary(values))
    }

    /// An array literal for `$n::text[]` (or any array whose elements parse from
    /// text): every element quoted and escaped, nil elements NULL.
    public static func textArray(_ values: some Sequence<String?>) -> PostgresBinding {
        PostgresBinding(PostgresArray.texts(values))
    }

    /// `\x…` hex, for `$n::bytea`.
    public static func bytea(_ bytes: [UInt8]) -> PostgresBinding {
        PostgresBinding(PostgresBytea.encode(bytes))
    }
}

/// The parameters of one statement, `$1…$n` in order.
///
/// Written as an array literal of typed bindings, e.g.
/// `[.intArray(ids), .text(daemon), .double(lease)]`.
public struct PostgresBindings: Sendable, Equatable, ExpressibleByArrayLiteral {
    /// The bindings in parameter order.
    public private(set) var parameters: [PostgresBinding]

    public init() { parameters = [] }

    public init(arrayLiteral elements: PostgresBinding...) {
        parameters = elements
    }

    public mutating func append(_ binding: PostgresBinding) {
        parameters.append(binding)
    }

    public var count: Int { parameters.count }

    /// Text-format values in parameter order; nil is NULL (a binary value reads as nil).
    public var values: [String?] { parameters.map(\.text) }
}
