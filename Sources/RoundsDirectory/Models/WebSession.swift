import FluentKit
import Foundation

/// A signed-in browser. The cookie holds a random secret; only its SHA-256 is stored, so a
/// copy of the database cannot be used to sign in. Each session has its own CSRF token.
public final class WebSession: Model, @unchecked Sendable {
    public static let schema = "web_sessions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "csrf_token") public var csrfToken: String
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "expires_at") public var expiresAt: Date
    @OptionalField(key: "client_address") public var clientAddress: String?

    public init() {}
    public init(id: String, staffID: String, csrfToken: String, createdAt: Date, expiresAt: Date, clientAddress: String?) {
        self.id = id; self.staffID = staffID; self.csrfToken = csrfToken; self.createdAt = createdAt
        self.expiresAt = expiresAt; self.clientAddress = clientAddress
    }
}
