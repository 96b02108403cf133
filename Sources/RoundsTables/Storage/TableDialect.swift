import FluentKit
import SQLKit

/// What differs between SQLite and PostgreSQL for user tables, in one place: column types, the
/// case-insensitive match, and reading a JSON list column.
public enum TableDialect: Sendable {
    case sqlite, postgres

    public init(_ db: any SQLDatabase) {
        self = db.dialect.name == "postgresql" ? .postgres : .sqlite
    }

    /// How a value is kept in its column.
    enum Storage: Sendable, Equatable {
        /// Text: names, ids, "yyyy-MM-dd" days (which sort as text), JSON lists.
        case text
        /// Numbers, and date-times as seconds since 1970 (sort and compare as numbers).
        case real
        case boolean
    }

    func type(_ storage: Storage) -> String {
        switch (self, storage) {
        case (_, .text): return "TEXT"
        case (.sqlite, .real): return "REAL"
        case (.postgres, .real): return "DOUBLE PRECISION"
        case (.sqlite, .boolean): return "INTEGER"
        case (.postgres, .boolean): return "BOOLEAN"
        }
    }

    var bigint: String { self == .sqlite ? "INTEGER" : "BIGINT" }
    var real: String { type(.real) }

    /// A case-insensitive substring match (SQLite's LIKE already ignores ASCII case; Chinese has
    /// none to ignore).
    var like: String { self == .sqlite ? "LIKE" : "ILIKE" }

    /// `column` holds a JSON list of texts containing `value`: multi-selects, several people.
    func jsonListContains(_ column: SQLIdentifier, _ value: String) -> any SQLExpression {
        switch self {
        case .sqlite:
            return sqlText("EXISTS (SELECT 1 FROM json_each(\(column)) WHERE json_each.value = \(bind: value))")
        case .postgres:
            return sqlText("(\(column)::jsonb ? \(bind: value))")
        }
    }

    /// How many items a JSON list column holds (0 for NULL).
    func jsonListLength(_ column: SQLIdentifier) -> any SQLExpression {
        switch self {
        case .sqlite: return sqlText("COALESCE(json_array_length(\(column)), 0)")
        case .postgres: return sqlText("COALESCE(jsonb_array_length(\(column)::jsonb), 0)")
        }
    }
}
