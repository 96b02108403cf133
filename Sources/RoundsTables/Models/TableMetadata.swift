import FluentKit
import Foundation
import RoundsCore

/// A set of tables with one set of roles, kept in a space: a hospital, or one department of it.
public final class TableBase: Model, @unchecked Sendable {
    public static let schema = "table_bases"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "hospital_id") public var hospitalID: String
    /// The department the base belongs to; nil for a hospital-wide base.
    @OptionalField(key: "department_id") public var departmentID: String?
    @Field(key: "name") public var name: String
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "deleted_at") public var deletedAt: Date?

    public init() {}
}

/// One table of a base. Its records live in a SQL table of their own (`sqlName`).
public final class UserTable: Model, @unchecked Sendable {
    public static let schema = "table_tables"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "base_id") public var baseID: String
    @Field(key: "name") public var name: String
    @Field(key: "sql_name") public var sqlName: String
    /// The last auto-number given (the next record gets one more).
    @Field(key: "last_number") public var lastNumber: Int
    /// Where the next field's column number starts (columns are never reused).
    @Field(key: "next_column") public var nextColumn: Int
    /// A table with a patient field holds patient data: every read and write is audited.
    @Field(key: "has_patients") public var hasPatients: Bool
    @Field(key: "position") public var position: Int
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

/// A field (column) of a table.
public final class TableField: Model, @unchecked Sendable {
    public static let schema = "table_fields"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "table_id") public var tableID: String
    @Field(key: "name") public var name: String
    @Field(key: "kind") public var kind: String
    /// Its SQL column (`f1`, `f2`…); nil for the kinds that read system columns.
    @OptionalField(key: "column_name") public var columnName: String?
    /// `FieldOptions` as JSON.
    @Field(key: "options") public var options: String
    @Field(key: "position") public var position: Int
    /// The field that names a record (its first column).
    @Field(key: "is_primary") public var isPrimary: Bool
    @Field(key: "created_at") public var createdAt: Date

    public init() {}

    public var fieldKind: FieldKind { FieldKind(rawValue: kind) ?? .text }

    public var fieldOptions: FieldOptions {
        (try? JSONDecoder().decode(FieldOptions.self, from: Data(options.utf8))) ?? FieldOptions()
    }
}

/// A role on a base, given to one person or to everyone of a department.
public final class BaseGrant: Model, @unchecked Sendable {
    public static let schema = "table_grants"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "base_id") public var baseID: String
    /// "staff" or "department".
    @Field(key: "grantee_kind") public var granteeKind: String
    @Field(key: "grantee_id") public var granteeID: String
    @Field(key: "role") public var role: String
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

/// One cell's change: who, when, old → new (the record's history).
public final class CellChange: Model, @unchecked Sendable {
    public static let schema = "table_cell_changes"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "table_id") public var tableID: String
    @Field(key: "record_id") public var recordID: String
    /// nil for a whole-record event (created, deleted, restored).
    @OptionalField(key: "field_id") public var fieldID: String?
    /// "set", "created", "deleted", "restored".
    @Field(key: "action") public var action: String
    /// The values as JSON (`CellValue`).
    @OptionalField(key: "old_value") public var oldValue: String?
    @OptionalField(key: "new_value") public var newValue: String?
    /// The record's version this change made.
    @Field(key: "version") public var version: Int
    @Field(key: "actor_id") public var actorID: String
    @Field(key: "actor_name") public var actorName: String
    @Field(key: "at") public var at: Date

    public init() {}
}

/// A table's field and row rules (`TableRules` as JSON), one row per table that has any.
public final class TableRuleSet: Model, @unchecked Sendable {
    public static let schema = "table_rules"
    /// The table's id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "rules") public var rules: String
    @Field(key: "updated_by") public var updatedBy: String
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}
}

/// A comment on a record.
public final class TableComment: Model, @unchecked Sendable {
    public static let schema = "table_comments"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "table_id") public var tableID: String
    @Field(key: "record_id") public var recordID: String
    @Field(key: "author_id") public var authorID: String
    @Field(key: "author_name") public var authorName: String
    @Field(key: "text") public var text: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

/// Someone @mentioned in a comment: a notice for them until they read it. Only people who may
/// read the record are mentioned (a notice must not carry a record past its rules).
public final class TableMention: Model, @unchecked Sendable {
    public static let schema = "table_mentions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "comment_id") public var commentID: String
    @Field(key: "table_id") public var tableID: String
    @Field(key: "record_id") public var recordID: String
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "read_at") public var readAt: Date?

    public init() {}
}
