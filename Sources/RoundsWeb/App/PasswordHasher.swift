import NIOPosix
import RoundsDirectory
import RoundsStore
import Vapor

/// Bcrypt (Vapor's), run off the event loop. The cost is configurable so tests can use a cheap one.
public struct PasswordHasher: PasswordHashing {
    public let cost: Int

    public init(cost: Int = 12) {
        self.cost = cost
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { try Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { try Bcrypt.verify(password, created: hash) }
    }

    public static let minimumPasswordLength = Passwords.minimumLength
}
