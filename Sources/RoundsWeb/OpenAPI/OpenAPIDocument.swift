import Foundation
import RoundsCore
import RoundsDirectory
import Vapor

/// Builds the OpenAPI 3.1 document from the registry. Schemas come from each type's sample:
/// encoded to JSON for the shapes, reflected for which properties are optional.
enum OpenAPIDocument {
    static func build(_ registry: OpenAPIRegistry) throws -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        var schemas: [String: Any] = [
            "Problem": try schema(for: ProblemDTO.self),
            "FHIRResource": ["type": "object", "required": ["resourceType"],
                             "properties": ["resourceType": ["type": "string"], "id": ["type": "string"]],
                             "additionalProperties": true, "description": "A FHIR R4 resource (see hl7.org/fhir/R4)"],
        ]
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
            } else if let raw = op.rawBody {
                let content = Dictionary(uniqueKeysWithValues: raw.map { type in
                    (type, ["schema": type.hasPrefix("application/hl7") ? ["type": "string"] : ["type": "string", "contentMediaType": type]])
                })
                operation["requestBody"] = ["required": true, "content": content]
            }
            var success: [String: Any] = ["description": "OK"]
            if let response = op.response {
                let name = String(describing: response)
                schemas[name] = try schema(for: response)
                let ref: [String: Any] = ["$ref": "#/components/schemas/\(name)"]
                success["content"] = [op.responseContentType: ["schema": op.responseIsArray ? ["type": "array", "items": ref] : ref]]
            } else if op.responseContentType == "application/fhir+json" {
                success["content"] = [op.responseContentType: ["schema": ["$ref": "#/components/schemas/FHIRResource"]]]
            } else if op.responseContentType != "application/json" {
                success["content"] = [op.responseContentType: ["schema": ["type": "string"]]]
            }
            let problem: [String: Any] = ["$ref": "#/components/responses/Problem"]
            var responses: [String: Any] = ["\(op.status)": success]
            // Every refusal the server gives is problem JSON; these are the ones it gives here.
            var refusals = ["400", "401", "403", "404", "405", "409", "422", "429"]
            if op.body != nil || op.rawBody != nil || [.POST, .PUT, .PATCH].contains(op.method) { refusals += ["408", "413", "415"] }
            for code in refusals { responses[code] = problem }
            responses["default"] = problem
            if op.status == 201 && op.method != .GET { responses["200"] = success }
            operation["responses"] = responses
            operation["security"] = [["bearer": []], ["session": []]]
            paths[op.path, default: [:]][op.method.rawValue.lowercased()] = operation
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Rounds API", "version": "1", "description": "Rounds: clinical collaboration and integration hub. Errors are problem JSON {code, message, detail}."],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "responses": ["Problem": ["description": "Refused: problem JSON {code, message, detail}",
                                          "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]],
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
        var schema = infer(try JSONDecoder().decode(JSONValue.self, from: encoder.encode(sample)), mirror: sample)
        let optional = Mirror(reflecting: sample).children.compactMap { child -> String? in
            Mirror(reflecting: child.value).displayStyle == .optional ? child.label : nil
        }
        if var properties = schema["properties"] as? [String: Any] {
            schema["required"] = properties.keys.filter { !optional.contains($0) }.sorted()
            for key in optional {
                if let p = properties[key] as? [String: Any] { properties[key] = nullable(p) }
            }
            for (key, values) in type.enums {
                guard var p = properties[key] as? [String: Any] else { continue }
                if p["type"] as? String == "array", var items = p["items"] as? [String: Any] {
                    items["enum"] = values
                    p["items"] = items
                } else {
                    p["enum"] = optional.contains(key) ? values + [NSNull()] : values
                }
                properties[key] = p
            }
            schema["properties"] = properties
        }
        return schema
    }

    /// OpenAPI 3.1 (JSON Schema) spells "may be null" as a second type.
    private static func nullable(_ schema: [String: Any]) -> [String: Any] {
        var schema = schema
        if let type = schema["type"] as? String { schema["type"] = [type, "null"] }
        else if schema.isEmpty || schema["$ref"] != nil { return ["anyOf": [schema, ["type": "null"]]] }
        if let values = schema["enum"] as? [Any] { schema["enum"] = values + [NSNull()] }
        return schema
    }

    /// The JSON shape of a sample, with the Swift value beside it where the JSON alone cannot
    /// tell: a Double that happens to be whole (`4.0` encodes as `4`) is a number, not an
    /// integer; a typed enum lists its cases.
    private static func infer(_ value: JSONValue, mirror subject: Any?) -> [String: Any] {
        let subject = subject.flatMap(unwrap)
        if let subject, let enumeration = type(of: subject) as? any APIEnumeration.Type {
            return ["type": "string", "enum": enumeration.apiValues]
        }
        switch value {
        case .object(let object):
            let children = subject.map { Dictionary(Mirror(reflecting: $0).children.compactMap { c in c.label.map { ($0, c.value) } },
                                                    uniquingKeysWith: { a, _ in a }) } ?? [:]
            let isDictionary = subject.map { Mirror(reflecting: $0).displayStyle == .dictionary } ?? false
            if isDictionary {
                return ["type": "object", "additionalProperties": object.values.first.map { infer($0, mirror: nil) } ?? [:]]
            }
            var properties = object.reduce(into: [String: Any]()) { result, entry in
                result[entry.key] = infer(entry.value, mirror: children[entry.key])
            }
            // An optional left nil in the sample is absent from its JSON; it is still a property.
            for (label, child) in children where properties[label] == nil && !label.hasPrefix("_") && unwrap(child) == nil {
                properties[label] = ["description": "optional; any JSON value"]
            }
            return ["type": "object", "properties": properties]
        case .array(let array):
            let first = subject.flatMap { Mirror(reflecting: $0).children.first?.value }
            return ["type": "array", "items": array.first.map { infer($0, mirror: first) } ?? [:]]
        case .bool: return ["type": "boolean"]
        case .int:
            if let subject, subject is Double || subject is Float { return ["type": "number"] }
            return ["type": "integer"]
        case .double: return ["type": "number"]
        case .string(let string):
            if subject is Date || ISO8601DateFormatter().date(from: string) != nil { return ["type": "string", "format": "date-time"] }
            if string.wholeMatch(of: /\d{4}-\d{2}-\d{2}/) != nil { return ["type": "string", "format": "date"] }
            return ["type": "string"]
        case .null: return [:]
        }
    }

    /// Looks through `Optional` to the value inside (nil stays nil).
    private static func unwrap(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first.map(\.value).flatMap(unwrap)
    }
}

/// A string enum whose cases the API document lists.
protocol APIEnumeration { static var apiValues: [String] { get } }
extension APIEnumeration where Self: CaseIterable & RawRepresentable, RawValue == String {
    static var apiValues: [String] { allCases.map(\.rawValue) }
}
extension Role: APIEnumeration {}
extension DepartmentKind: APIEnumeration {}
extension Gender: APIEnumeration {}
extension TokenScope: APIEnumeration {}
extension ConnectorKind: APIEnumeration {}
extension AlertNotice.Event: APIEnumeration {}
extension RoundsCore.Locale: APIEnumeration {}

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
