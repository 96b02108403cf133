import FluentKit

/// Small lookups pages need for display (names by id, counts). Kept beside the models so
/// route handlers never build queries themselves.
extension Staff {
    public static func displayNames(ids: some Collection<String>, on db: any Database) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await Staff.query(on: db).filter(\.$id ~~ Array(Set(ids))).all()
        return Dictionary(rows.map { ($0.id!, $0.displayName) }, uniquingKeysWith: { a, _ in a })
    }
}

extension StaffRole {
    public static func of(staffIDs: [String], on db: any Database) async throws -> [StaffRole] {
        try await StaffRole.query(on: db).filter(\.$staffID ~~ staffIDs).all()
    }
}

extension Bed {
    public static func counts(wardIDs: [String], on db: any Database) async throws -> [String: Int] {
        try await Bed.query(on: db).filter(\.$wardID ~~ wardIDs).all().reduce(into: [:]) { $0[$1.wardID, default: 0] += 1 }
    }
}

extension Department {
    public static func allSorted(on db: any Database) async throws -> [Department] {
        try await Department.query(on: db).sort(\.$hospitalID).sort(\.$code).all()
    }
}

extension Hospital {
    public static func names(on db: any Database) async throws -> [String: String] {
        Dictionary(try await Hospital.query(on: db).all().map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
    }
}

extension OutboundMessage {
    public static func recent(limit: Int = 200, on db: any Database) async throws -> [OutboundMessage] {
        try await OutboundMessage.query(on: db).sort(\.$createdAt, .descending).limit(limit).all()
    }
}
