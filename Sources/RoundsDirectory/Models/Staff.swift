import FluentKit
import Foundation
import RoundsCore

/// A person who signs in: nurse, doctor, administrator… Roles live in `StaffRole`.
public final class Staff: Model, @unchecked Sendable {
    public static let schema = "staff"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "username") public var username: String
    @Field(key: "display_name") public var displayName: String
    @OptionalField(key: "employee_no") public var employeeNo: String?
    @Field(key: "password_hash") public var passwordHash: String
    @Field(key: "locale") public var locale: String
    /// Group administrator: may do everything, everywhere.
    @Field(key: "is_superuser") public var isSuperuser: Bool
    @Field(key: "is_active") public var isActive: Bool
    @Field(key: "failed_logins") public var failedLogins: Int
    @OptionalField(key: "locked_until") public var lockedUntil: Date?
    @Field(key: "created_at") public var createdAt: Date
    /// The person's id in the HIS (XCN-1 in HL7 messages), e.g. "D001".
    @OptionalField(key: "hl7_id") public var hl7ID: String?
    /// Where urgent notices reach the person outside Rounds (SMS, WeCom @-mention, e-mail).
    @OptionalField(key: "mobile") public var mobile: String?
    @OptionalField(key: "email") public var email: String?

    public init() {}
    public init(id: String, username: String, displayName: String, employeeNo: String? = nil,
                passwordHash: String, locale: RoundsCore.Locale = .default, isSuperuser: Bool = false,
                createdAt: Date) {
        self.id = id; self.username = username; self.displayName = displayName
        self.employeeNo = employeeNo; self.passwordHash = passwordHash; self.locale = locale.rawValue
        self.isSuperuser = isSuperuser; self.isActive = true; self.failedLogins = 0
        self.lockedUntil = nil; self.createdAt = createdAt
    }

    public var preferredLocale: RoundsCore.Locale { RoundsCore.Locale(rawValue: locale) ?? .default }
}

public final class StaffRole: Model, @unchecked Sendable {
    public static let schema = "staff_roles"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "department_id") public var departmentID: String
    @Field(key: "hospital_id") public var hospitalID: String
    @Enum(key: "role") public var role: Role

    public init() {}
    public init(id: String, staffID: String, departmentID: String, hospitalID: String, role: Role) {
        self.id = id; self.staffID = staffID; self.departmentID = departmentID
        self.hospitalID = hospitalID; self.role = role
    }
}

/// A bearer token for another system (HIS, LIS, a bot). Only the SHA-256 of the secret is
/// stored; the secret is shown once, at creation.
public final class APIToken: Model, @unchecked Sendable {
    public static let schema = "api_tokens"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "name") public var name: String
    @Field(key: "token_hash") public var tokenHash: String
    @Field(key: "prefix") public var prefix: String
    @Field(key: "scopes") public var scopes: String
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "expires_at") public var expiresAt: Date?
    @OptionalField(key: "revoked_at") public var revokedAt: Date?
    @OptionalField(key: "last_used_at") public var lastUsedAt: Date?

    public init() {}
    public init(id: String, name: String, tokenHash: String, prefix: String, scopes: [TokenScope],
                hospitalID: String?, createdBy: String, createdAt: Date, expiresAt: Date?) {
        self.id = id; self.name = name; self.tokenHash = tokenHash; self.prefix = prefix
        self.scopes = scopes.map(\.rawValue).sorted().joined(separator: " ")
        self.hospitalID = hospitalID; self.createdBy = createdBy; self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    public var scopeSet: Set<TokenScope> {
        Set(scopes.split(separator: " ").compactMap { TokenScope(rawValue: String($0)) })
    }
}
