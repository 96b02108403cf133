/// Hashes and checks passwords. The directory's services take one; the web layer supplies bcrypt
/// (`PasswordHasher`), so the directory needs no web framework. Both run off the event loop.
public protocol PasswordHashing: Sendable {
    func hash(_ password: String) async throws -> String
    func verify(_ password: String, hash: String) async throws -> Bool
}

public enum Passwords {
    /// Shortest password accepted for a new or changed account.
    public static let minimumLength = 8
}
