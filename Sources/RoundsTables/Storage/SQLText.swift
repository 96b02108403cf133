import SQLKit

/// A piece of SQL written as a string with SQLKit's interpolations (`\(ident:)`, `\(bind:)`,
/// `\(expression)`): binds stay binds, names stay quoted.
@inline(__always) func sqlText(_ text: SQLQueryString) -> SQLQueryString { text }
