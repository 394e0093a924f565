import JobdCore

/// The text of a SQL statement, or of a fragment of one.
///
/// A value of this type can only come from string literals written in the source
/// and from other `SQL` values joined with `+`: its literal type is `StaticString`,
/// which cannot be interpolated, and there is no initializer from `String`. So a
/// runtime value (anything a producer, an operator or the network supplied) can
/// never become SQL text; it travels as a bound parameter (`PostgresBindings`).
///
/// That is a compile-time property and has no runtime test: `let s: SQL = "\(x)"`
/// does not compile ("cannot convert value of type 'String' to specified type
/// 'SQL'"), and `SQL(stringLiteral: someString)` does not either.
///
/// Fragments shared by several statements (one condition written once) are `SQL`
/// constants joined with `+`; `+` adds nothing between its operands, so a fragment
/// carries its own leading or trailing whitespace where it needs it.
public struct SQL: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public typealias StringLiteralType = StaticString
    public typealias ExtendedGraphemeClusterLiteralType = StaticString
    public typealias UnicodeScalarLiteralType = StaticString

    /// The statement text as sent to the server.
    public let text: String
    /// The name the statement is prepared under: "jobd_" + FNV-1a of the text, so the
    /// same text gets the same name and a changed statement a new one. Computed once
    /// per value (a statement's `sql` is a `static let`), not per execution.
    public let preparedName: String

    public init(stringLiteral value: StaticString) {
        self.init(text: value.withUTF8Buffer { String(decoding: $0, as: UTF8.self) })
    }

    public init(extendedGraphemeClusterLiteral value: StaticString) {
        self.init(stringLiteral: value)
    }

    public init(unicodeScalarLiteral value: StaticString) {
        self.init(stringLiteral: value)
    }

    /// Private: the only texts are literals and concatenations of them.
    private init(text: String) {
        self.text = text
        self.preparedName = SQL.preparedName(text)
    }

    /// `lhs` followed directly by `rhs`.
    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        SQL(text: lhs.text + rhs.text)
    }

    /// Any text as SQL, for tests only: fixtures read from files, statements a
    /// test builds from its own constants. Behind the `Testing` SPI, which no
    /// target under Sources imports (a test checks), so daemon code cannot reach it.
    @_spi(Testing) public init(unchecked text: String) {
        self.init(text: text)
    }

    /// `name` as a quoted identifier (a role, a database, a channel): wrapped in
    /// double quotes with every double quote doubled, so whatever `name` holds it is
    /// one identifier and never SQL. For names a statement cannot take as a
    /// parameter (DDL); values always travel as bound parameters.
    public static func identifier(_ name: String) -> SQL {
        SQL(text: "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
    }

    public var description: String { text }

    public static func == (lhs: SQL, rhs: SQL) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    static func preparedName(_ text: String) -> String {
        "jobd_" + String(FNV1a.hash(text.utf8), radix: 16)
    }
}
