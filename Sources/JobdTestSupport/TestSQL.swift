@_spi(Testing) import JobdPostgres

/// Tests write SQL as text: fixtures read from files, statements assembled from a
/// test's own constants (role and database names, tables to probe). The daemon's
/// code cannot: `SQL` has no initializer from `String` outside the `Testing` SPI,
/// and only this target (linked by test targets alone) imports it.
extension PostgresConnection {
    /// `query(_:_:timeout:)` with the statement as text.
    @discardableResult
    public func query(_ text: String, _ params: [String?] = [], timeout: Double? = nil) throws -> PostgresResult {
        try query(SQL(unchecked: text), params, timeout: timeout)
    }

    /// `executeScript(_:timeout:)` with the script as text.
    @discardableResult
    public func executeScript(_ text: String, timeout: Double? = nil) throws -> PostgresResult {
        try executeScript(SQL(unchecked: text), timeout: timeout)
    }
}
