import Crypto
import FluentKit
import Foundation
import RoundsCore
import RoundsStore

/// Browser sessions: created at sign-in (always a fresh secret, so a planted cookie is useless),
/// looked up per request, deleted at sign-out or expiry.
public struct SessionService: Sendable {
    public let clock: any RoundsClock
    public var lifetime: TimeInterval = 12 * 3600

    public init(clock: any RoundsClock) {
        self.clock = clock
    }

    /// Returns the cookie secret; the caller sets it on the response.
    public func start(staffID: String, clientAddress: String?, on db: any Database) async throws -> (secret: String, session: WebSession) {
        let secret = Self.random(32)
        let now = clock.now()
        let session = WebSession(id: Self.digest(secret), staffID: staffID, csrfToken: Self.random(32),
                                 createdAt: now, expiresAt: now.addingTimeInterval(lifetime), clientAddress: clientAddress)
        try await session.create(on: db)
        return (secret, session)
    }

    public func find(secret: String, on db: any Database) async throws -> WebSession? {
        guard (20...100).contains(secret.count) else { return nil }
        guard let session = try await WebSession.find(Self.digest(secret), on: db) else { return nil }
        if session.expiresAt <= clock.now() {
            try await session.delete(on: db)
            return nil
        }
        return session
    }

    public func end(secret: String, on db: any Database) async throws {
        try await WebSession.query(on: db).filter(\.$id == Self.digest(secret)).delete()
    }

    /// Removes every session of a person (after a password change or deactivation).
    public func endAll(staffID: String, on db: any Database) async throws {
        try await WebSession.query(on: db).filter(\.$staffID == staffID).delete()
    }

    public static func digest(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// URL-safe random text with `bytes` bytes of entropy.
    public static func random(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
