import Foundation
import NIOConcurrencyHelpers
import Vapor

/// Collects each API route as it is registered, so `/api/v1/openapi.json` describes exactly
/// the routes that exist.
final class OpenAPIRegistry: Sendable {
    struct Operation: Sendable {
        var method: HTTPMethod
        var path: String
        var summary: String
        var tag: String
        var body: (any APISchema.Type)?
        var response: (any APISchema.Type)?
        var responseIsArray: Bool
        var status: Int
        var query: [String]
        var responseContentType: String
        /// A body that is not JSON (an HL7 message): its media type.
        var rawBody: [String]?
    }

    private let box = NIOLockedValueBox<[Operation]>([])

    var operations: [Operation] { box.withLockedValue { $0 } }

    func add(_ operation: Operation) {
        box.withLockedValue { $0.append(operation) }
    }
}

extension Application {
    private struct RegistryKey: StorageKey { typealias Value = OpenAPIRegistry }

    var openAPI: OpenAPIRegistry {
        if let registry = storage[RegistryKey.self] { return registry }
        let registry = OpenAPIRegistry()
        storage[RegistryKey.self] = registry
        return registry
    }
}

/// A route builder for `/api/v1` that documents as it registers.
struct APIBuilder {
    let routes: any RoutesBuilder
    let registry: OpenAPIRegistry
    let prefix: String

    @discardableResult
    func on<R: AsyncResponseEncodable>(
        _ method: HTTPMethod, _ path: PathComponent..., summary: String, tag: String,
        body: (any APISchema.Type)? = nil, returns response: (any APISchema.Type)? = nil, array: Bool = false,
        status: Int = 200, query: [String] = [], contentType: String = "application/json", rawBody: [String]? = nil, maxBody: ByteCount? = nil,
        use handler: @escaping @Sendable (Request) async throws -> R
    ) -> Route {
        let openAPIPath = prefix + "/" + path.map { component -> String in
            switch component {
            case .parameter(let name): return "{\(name)}"
            default: return component.description
            }
        }.joined(separator: "/")
        registry.add(.init(method: method, path: openAPIPath, summary: summary, tag: tag, body: body, response: response,
                           responseIsArray: array, status: status, query: query, responseContentType: contentType,
                           rawBody: rawBody))
        let route = routes.on(method, path, body: .collect(maxSize: maxBody ?? "1mb"), use: handler)
        route.userInfo[BodyDeadlineMiddleware.maximumSizeKey] = maxBody ?? "1mb"
        return route
    }
}
