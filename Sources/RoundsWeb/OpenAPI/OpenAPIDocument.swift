import Foundation
import Vapor

/// Builds the OpenAPI 3.1 document from the registry. Schemas come from each type's sample:
/// encoded to JSON for the shapes, reflected for which properties are optional.
enum OpenAPIDocument {
    static func build(_ registry: OpenAPIRegistry) throws -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        var schemas: [String: Any] = ["Problem": try schema(for: ProblemDTO.self)]
        for op in registry.operations {
            var operation: [String: Any] = [
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": op.method.rawValue.lowercased() + op.path.replacingOccurrences(of: "/api/v1", with: "")
                    .split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(),
            ]
            var parameters: [[String: Any]] = op.path.split(separator: "/").filter { $0.hasPrefix("{") }.map {
                ["name": String($0.dropFirst().dropLast()), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            parameters += op.query.map { ["name": $0, "in": "query", "required": false, "schema": ["type": "string"]] }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let body = op.body {
                let name = String(describing: body)
                schemas[name] = try schema(for: body)
                operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(name)"]]]]
            }
            var success: [String: Any] = ["description": "OK"]
            if let response = op.response {
                let name = String(describing: response)
                schemas[name] = try schema(for: response)
                let ref: [String: Any] = ["$ref": "#/components/schemas/\(name)"]
                success["content"] = [op.responseContentType: ["schema": op.responseIsArray ? ["type": "array", "items": ref] : ref]]
            } else if op.responseContentType != "application/json" {
                success["content"] = [op.responseContentType: ["schema": ["type": "string"]]]
            }
            let problem: [String: Any] = ["description": "Problem", "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
            operation["responses"] = ["\(op.status)": success, "400": problem, "401": problem, "403": problem, "404": problem, "422": problem]
            operation["security"] = [["bearer": []], ["session": []]]
            paths[op.path, default: [:]][op.method.rawValue.lowercased()] = operation
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Rounds API", "version": "1", "description": "Rounds: clinical collaboration and integration hub. Errors are problem JSON {code, message, detail}."],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "description": "API token created by an administrator"],
                    "session": ["type": "apiKey", "in": "cookie", "name": "rounds_session", "description": "Browser session; writes need the X-CSRF-Token header"],
                ],
            ],
        ]
    }

    static func schema(for type: any APISchema.Type) throws -> [String: Any] {
        let sample = type.sample
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var schema = infer(try JSONDecoder().decode(JSONValue.self, from: encoder.encode(sample)))
        let optional = Mirror(reflecting: sample).children.compactMap { child -> String? in
            Mirror(reflecting: child.value).displayStyle == .optional ? child.label : nil
        }
        if var properties = schema["properties"] as? [String: Any] {
            schema["required"] = properties.keys.filter { !optional.contains($0) }.sorted()
            for key in optional { if var p = properties[key] as? [String: Any] { p["nullable"] = true; properties[key] = p } }
            schema["properties"] = properties
        }
        return schema
    }

    private static func infer(_ value: JSONValue) -> [String: Any] {
        switch value {
        case .object(let object): return ["type": "object", "properties": object.mapValues(infer)]
        case .array(let array): return ["type": "array", "items": array.first.map(infer) ?? [:]]
        case .bool: return ["type": "boolean"]
        case .int: return ["type": "integer"]
        case .double: return ["type": "number"]
        case .string(let string):
            return ISO8601DateFormatter().date(from: string) != nil ? ["type": "string", "format": "date-time"] : ["type": "string"]
        case .null: return [:]
        }
    }
}

/// Any JSON value; decoding tries the strictest reading first, so `true` stays a Bool.
enum JSONValue: Decodable {
    case object([String: JSONValue]), array([JSONValue]), bool(Bool), int(Int), double(Double), string(String), null

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}
