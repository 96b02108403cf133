import Crypto
import FluentKit
import Foundation
import NIOConcurrencyHelpers
import RoundsCore
import RoundsStore

/// Sign-in with lock-out, loading who someone is, and API tokens.
public struct AuthService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let hasher: any PasswordHashing
    public let audit: AuditLog
    /// Failed sign-ins, per address and per username at an address (see `SignInThrottle`).
    public let throttle: SignInThrottle
    /// Unknown, expired and revoked API tokens, per address (guessing is slowed down).
    public let tokenGuesses = SignInThrottle(perUsername: .max, perAddress: 50, window: 60)
    private let dummy: DummyHash

    public init(clock: any RoundsClock, ids: IDGenerator, hasher: any PasswordHashing, audit: AuditLog,
                throttle: SignInThrottle = SignInThrottle()) {
        self.clock = clock
        self.ids = ids
        self.hasher = hasher
        self.audit = audit
        self.throttle = throttle
        self.dummy = DummyHash(hasher: hasher)
    }

    /// Checks a password. Unknown users and wrong passwords get the same answer, in the same
    /// time (a bcrypt check of the same cost either way) and with the same lock after repeated
    /// failures; every attempt is audited.
    public func login(username: String, password: String, clientAddress: String?, on db: any Database) async throws -> Staff {
        let now = clock.now()
        let staff = try await Staff.query(on: db).filter(\.$username == username).first().flatMap { $0.isActive ? $0 : nil }
        func refuse(_ detail: String, outcome: AuditOutcome) async throws {
            try await audit.record("auth.login", entityType: "staff", entityID: staff?.id, outcome: outcome, detail: detail,
                                   actorKind: staff == nil ? "anonymous" : "staff", actorID: staff?.id,
                                   actorName: staff?.displayName ?? String(username.prefix(64)), clientAddress: clientAddress, on: db)
        }
        switch throttle.verdict(username: username, address: clientAddress, now: now) {
        case .allowed: break
        case .locked(let minutes):
            try await refuse("locked at this address" + (staff == nil ? " (unknown user)" : ""), outcome: .denied)
            throw RoundsError.accountLocked(minutes: minutes)
        case .slowDown(let seconds):
            try await refuse("too many failed sign-ins from this address", outcome: .denied)
            throw RoundsError.tooManySignIns(seconds: seconds)
        }
        // The same bcrypt work whether or not the user exists.
        let hash: String
        if let staff { hash = staff.passwordHash } else { hash = try await dummy.value() }
        let matches = try await hasher.verify(password, hash: hash)
        guard let staff, matches else {
            let lockedNow = throttle.recordFailure(username: username, address: clientAddress, now: now)
            if let staff {
                staff.failedLogins += 1
                try await staff.save(on: db)
            }
            try await refuse((staff == nil ? "unknown user" : "wrong password") + (lockedNow ? "; locked at this address" : ""),
                             outcome: .failure)
            if lockedNow { throw RoundsError.accountLocked(minutes: Int(throttle.window / 60)) }
            throw RoundsError.badCredentials
        }
        throttle.recordSuccess(username: username, address: clientAddress)
        staff.failedLogins = 0
        staff.lockedUntil = nil
        try await staff.save(on: db)
        try await audit.record("auth.login", entityType: "staff", entityID: staff.id, actorKind: "staff",
                               actorID: staff.id, actorName: staff.displayName, clientAddress: clientAddress, on: db)
        return staff
    }

    /// Builds the principal for a signed-in person, with all their role assignments.
    public func principal(forStaffID id: String, on db: any Database) async throws -> Principal? {
        guard let staff = try await Staff.find(id, on: db), staff.isActive else { return nil }
        return try await principal(for: staff, on: db)
    }

    public func principal(for staff: Staff, on db: any Database) async throws -> Principal {
        try await Principal.of(staff, on: db)
    }

    // MARK: API tokens

    public struct IssuedToken: Sendable {
        public var token: APIToken
        /// The secret, shown to the administrator once and never stored.
        public var secret: String
    }

    public func createToken(name: String, scopes: [TokenScope], hospitalID: String?, expiresAt: Date?,
                            context: RequestContext, on db: any Database) async throws -> IssuedToken {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 100 else { throw RoundsError.validation("name: 1 to 100 characters") }
        guard !scopes.isEmpty else { throw RoundsError.validation("scopes: at least one of \(TokenScope.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard context.principal.canManageTokens(hospitalID: hospitalID) else {
            try await audit.record("token.create", entityType: "api_token", entityID: nil, hospitalID: hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("API tokens are created by administrators, within their hospital")
        }
        if let hospitalID, try await Hospital.find(hospitalID, on: db) == nil {
            throw RoundsError.notFound("hospital", id: hospitalID)
        }
        let secret = "rnd_" + Self.randomSecret()
        let token = APIToken(id: ids.next(), name: trimmed, tokenHash: Self.digest(secret), prefix: String(secret.prefix(10)),
                             scopes: scopes, hospitalID: hospitalID, createdBy: context.principal.id,
                             createdAt: clock.now(), expiresAt: expiresAt)
        try await db.transaction { tx in
            try await token.create(on: tx)
            try await audit.record("token.create", entityType: "api_token", entityID: token.id, hospitalID: hospitalID,
                                   detail: "scopes: \(token.scopes)", context: context, on: tx)
        }
        return IssuedToken(token: token, secret: secret)
    }

    /// Resolves a bearer secret to a principal; nil for unknown, revoked or expired tokens.
    public func principal(forBearer secret: String, on db: any Database) async throws -> Principal? {
        guard secret.hasPrefix("rnd_"), secret.count < 200 else { return nil }
        guard let token = try await APIToken.query(on: db).filter(\.$tokenHash == Self.digest(secret)).first() else { return nil }
        let now = clock.now()
        if token.revokedAt != nil { return nil }
        if let expires = token.expiresAt, expires <= now { return nil }
        // Only touch last_used_at once a minute, to keep token-authenticated reads cheap.
        if token.lastUsedAt.map({ now.timeIntervalSince($0) > 60 }) ?? true {
            token.lastUsedAt = now
            try await token.save(on: db)
        }
        return Principal(kind: .token, id: try token.requireID(), displayName: "token:\(token.name)",
                         scopes: token.scopeSet, tokenHospitalID: token.hospitalID)
    }

    public func listTokens(context: RequestContext, on db: any Database) async throws -> [APIToken] {
        let principal = context.principal
        guard principal.isAdministrator else { throw RoundsError.forbidden("API tokens") }
        let query = APIToken.query(on: db).sort(\.$createdAt, .descending)
        if let hospitals = principal.administeredHospitalIDs {
            query.filter(\.$hospitalID ~~ Array(hospitals))
        }
        return try await query.all()
    }

    public func revokeToken(id: String, context: RequestContext, on db: any Database) async throws -> APIToken {
        guard let token = try await APIToken.find(id, on: db) else { throw RoundsError.notFound("API token", id: id) }
        guard context.principal.canManageTokens(hospitalID: token.hospitalID) else {
            try await audit.record("token.revoke", entityType: "api_token", entityID: id, hospitalID: token.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("API token \(id)")
        }
        guard token.revokedAt == nil else { return token }
        token.revokedAt = clock.now()
        try await db.transaction { tx in
            try await token.save(on: tx)
            try await audit.record("token.revoke", entityType: "api_token", entityID: id, hospitalID: token.hospitalID,
                                   context: context, on: tx)
        }
        return token
    }

    static func digest(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<40).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }
}

/// A bcrypt hash of a random password at the hasher's own cost, made once: checking against it
/// costs what checking a real user's password costs.
final class DummyHash: Sendable {
    private let hasher: any PasswordHashing
    private let cached = NIOLockedValueBox<String?>(nil)

    init(hasher: any PasswordHashing) { self.hasher = hasher }

    func value() async throws -> String {
        if let hash = cached.withLockedValue({ $0 }) { return hash }
        let hash = try await hasher.hash(UUID().uuidString + UUID().uuidString)
        cached.withLockedValue { $0 = $0 ?? hash }
        return cached.withLockedValue { $0 ?? hash }
    }
}

extension Principal {
    /// A staff member as a principal, with all their role assignments (sign-in, and a table
    /// owner previewing a table as someone else).
    public static func of(_ staff: Staff, on db: any Database) async throws -> Principal {
        let roles = try await StaffRole.query(on: db).filter(\.$staffID == staff.requireID()).all()
        return Principal(
            kind: .staff, id: try staff.requireID(), displayName: staff.displayName, isSuperuser: staff.isSuperuser,
            assignments: roles.map { .init(role: $0.role, departmentID: $0.departmentID, hospitalID: $0.hospitalID) },
            locale: staff.preferredLocale)
    }
}
