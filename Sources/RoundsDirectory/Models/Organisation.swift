import FluentKit
import Foundation
import RoundsCore

/// The top of the organisation tree: one installation usually serves one hospital group.
public final class HospitalGroup: Model, @unchecked Sendable {
    public static let schema = "hospital_groups"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "name") public var name: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
    public init(id: String, name: String, createdAt: Date) {
        self.id = id; self.name = name; self.createdAt = createdAt
    }
}

public final class Hospital: Model, @unchecked Sendable {
    public static let schema = "hospitals"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "group_id") public var groupID: String
    @Field(key: "code") public var code: String
    @Field(key: "name") public var name: String
    @Field(key: "created_at") public var createdAt: Date
    /// The facility name other systems use for this hospital in HL7 (MSH-4, PV1-3-4), e.g. "ARION".
    @OptionalField(key: "hl7_facility") public var hl7Facility: String?

    public init() {}
    public init(id: String, groupID: String, code: String, name: String, createdAt: Date) {
        self.id = id; self.groupID = groupID; self.code = code; self.name = name; self.createdAt = createdAt
    }
}

/// A clinical department or a ward. Wards hold beds and patients; a ward may sit under a
/// department (its parent), and people assigned to the department see the ward's patients.
public final class Department: Model, @unchecked Sendable {
    public static let schema = "departments"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "hospital_id") public var hospitalID: String
    @OptionalField(key: "parent_id") public var parentID: String?
    @Field(key: "code") public var code: String
    @Field(key: "name") public var name: String
    @Enum(key: "kind") public var kind: DepartmentKind
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
    public init(id: String, hospitalID: String, parentID: String? = nil, code: String, name: String,
                kind: DepartmentKind, createdAt: Date) {
        self.id = id; self.hospitalID = hospitalID; self.parentID = parentID; self.code = code
        self.name = name; self.kind = kind; self.createdAt = createdAt
    }

    public var wardRef: Principal.WardRef {
        Principal.WardRef(id: id ?? "", parentDepartmentID: parentID, hospitalID: hospitalID)
    }
}

public final class Bed: Model, @unchecked Sendable {
    public static let schema = "beds"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "ward_id") public var wardID: String
    @Field(key: "label") public var label: String
    @Field(key: "sort_order") public var sortOrder: Int

    public init() {}
    public init(id: String, wardID: String, label: String, sortOrder: Int) {
        self.id = id; self.wardID = wardID; self.label = label; self.sortOrder = sortOrder
    }
}
