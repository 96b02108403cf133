import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
import RoundsIntegration
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// Checks real answers against what `/api/v1/openapi.json` promises: a client generated from
/// the document must be able to read everything the server sends.
@Suite struct OpenAPIConformanceTests {
    /// A small JSON Schema (2020-12 subset) validator: the keywords the document uses.
    struct Validator {
        let document: [String: Any]

        func resolve(_ ref: String) -> [String: Any] {
            var node: Any = document
            for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] ?? [:] }
            return node as? [String: Any] ?? [:]
        }

        func errors(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
            if let ref = schema["$ref"] as? String { return errors(value, resolve(ref), at: path) }
            if let any = schema["anyOf"] as? [[String: Any]] {
                return any.contains { errors(value, $0, at: path).isEmpty } ? [] : ["\(path): matches none of anyOf"]
            }
            var found: [String] = []
            if let allowed = schema["enum"] as? [Any] {
                let ok = allowed.contains { candidate in
                    (candidate is NSNull && value is NSNull) || ((candidate as? String).map { $0 == value as? String } ?? false)
                }
                if !ok { found.append("\(path): \(value) is not one of \(allowed)") }
            }
            let types: [String] = (schema["type"] as? [String]) ?? ((schema["type"] as? String).map { [$0] } ?? [])
            if !types.isEmpty && !types.contains(where: { Self.matches(value, $0) }) {
                return found + ["\(path): \(String(describing: value).prefix(60)) is not \(types)"]
            }
            if let string = value as? String, let format = schema["format"] as? String {
                if format == "date-time", ISO8601DateFormatter().date(from: string) == nil { found.append("\(path): not a date-time: \(string)") }
                if format == "date", string.wholeMatch(of: /\d{4}-\d{2}-\d{2}/) == nil { found.append("\(path): not a date: \(string)") }
            }
            if let object = value as? [String: Any] {
                for key in schema["required"] as? [String] ?? [] where object[key] == nil { found.append("\(path).\(key): required, missing") }
                let properties = schema["properties"] as? [String: Any] ?? [:]
                for (key, child) in object {
                    if let p = properties[key] as? [String: Any] { found += errors(child, p, at: "\(path).\(key)") }
                    else if let extra = schema["additionalProperties"] as? [String: Any] { found += errors(child, extra, at: "\(path).\(key)") }
                    else if schema["additionalProperties"] == nil, !properties.isEmpty { found.append("\(path).\(key): not in the document") }
                }
            }
            if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
                for (i, item) in array.prefix(20).enumerated() { found += errors(item, items, at: "\(path)[\(i)]") }
            }
            return found
        }

        static func matches(_ value: Any, _ type: String) -> Bool {
            switch type {
            case "null": return value is NSNull
            case "object": return value is [String: Any]
            case "array": return value is [Any]
            case "string": return value is String
            case "boolean": return isBoolean(value)
            case "integer":
                guard let n = value as? NSNumber, !isBoolean(value) else { return false }
                return n.doubleValue.rounded() == n.doubleValue
            case "number":
                return value is NSNumber && !isBoolean(value)
            default: return false
            }
        }

        /// JSON `true`/`false` (Foundation hands them over as NSNumbers of type char).
        static func isBoolean(_ value: Any) -> Bool {
            guard let n = value as? NSNumber else { return false }
            return String(cString: n.objCType) == "c"
        }

        /// The schema the document declares for this answer, or a reason there is none.
        func responseSchema(method: String, template: String, status: Int, contentType: String) -> Result<[String: Any]?, Failure> {
            guard let operation = ((document["paths"] as? [String: Any])?[template] as? [String: Any])?[method.lowercased()] as? [String: Any] else {
                return .failure(Failure("\(method) \(template) is not in the document"))
            }
            let responses = operation["responses"] as? [String: Any] ?? [:]
            guard var response = (responses["\(status)"] ?? responses["default"]) as? [String: Any] else {
                return .failure(Failure("\(method) \(template): \(status) is not declared"))
            }
            if let ref = response["$ref"] as? String { response = resolve(ref) }
            guard let content = response["content"] as? [String: Any] else { return .success(nil) }
            let media = contentType.split(separator: ";").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
            guard let entry = content[media] as? [String: Any] else {
                return .failure(Failure("\(method) \(template) \(status): \(media) is not declared (\(content.keys.sorted()))"))
            }
            return .success(entry["schema"] as? [String: Any])
        }
    }

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// Sends a request and checks the answer against the document; returns the problems found.
    static func check(_ client: Client, _ validator: Validator, _ method: HTTPMethod, _ path: String, template: String,
                      body: String? = nil, contentType: String = "application/json") async throws -> [String] {
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if let csrf = client.csrf { headers.add(name: "X-CSRF-Token", value: csrf) }
        if body != nil { headers.add(name: .contentType, value: contentType) }
        let response = try await client.request(method, path, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let type = response.headers.first(name: .contentType) ?? ""
        switch validator.responseSchema(method: method.rawValue, template: template, status: Int(response.status.code), contentType: type) {
        case .failure(let failure): return [failure.description]
        case .success(nil): return []
        case .success(let schema?):
            guard type.contains("json") else { return [] }
            let json = try JSONSerialization.jsonObject(with: Data(buffer: response.body), options: [.fragmentsAllowed])
            return validator.errors(json, schema).map { "\(method) \(path) \(response.status.code): \($0)" }
        }
    }

    @Test(arguments: Backend.all)
    func realAnswersMatchTheDocument(backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let admin = Client(app)
            try await admin.login("admin")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: try await admin.get("/api/v1/openapi.json").body)) as? [String: Any])
            let validator = Validator(document: document)

            // Data for the answers to carry: an acknowledged critical value 18.1 minutes after it
            // was raised (a time that is not whole), an HL7 message, an assessment.
            let alert = try await CriticalValueTests.raise(app)
            clock.advance(by: 18 * 60 + 6)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            let ward = try await Demo.department("LUNG", app)
            let hospital = try await Demo.hospital("HK01", app)
            let staff = try await Demo.staff("wang.fang", app)
            let group = try #require(try await PatientGroupTests.group(app).id)
            let hl7 = try await RoundsIntegration.HL7MessageRecord.query(on: app.db).first()
            let instrument = "braden-scale"

            var problems: [String] = []
            problems += try await Self.check(nurse, validator, .POST, "/api/v1/alerts/\(alert.id!)/acknowledge",
                                             template: "/api/v1/alerts/{alertId}/acknowledge", body: #"{"readBack":"血钾 6.9"}"#)
            problems += try await Self.check(nurse, validator, .POST, "/api/v1/patients/\(patient.id!)/assessments",
                                             template: "/api/v1/patients/{patientId}/assessments",
                                             body: #"{"instrument":"morse-fall-scale","answers":"# + String(decoding: try JSONEncoder().encode(NursingTests.lowMorse), as: UTF8.self) + "}")
            let assessment = try await nurse.get("/api/v1/patients/\(patient.id!)/assessments")
            let assessmentID = ((try? JSONSerialization.jsonObject(with: Data(buffer: assessment.body))) as? [[String: Any]])?.first?["id"] as? String

            // Every GET the document lists, with its path parameters filled from the demo.
            let values: [String: String] = [
                "alertId": alert.id!, "patientId": patient.id!, "wardId": ward.id!, "departmentId": ward.id!,
                "hospitalId": hospital.id!, "staffId": staff.id!, "groupId": group, "code": instrument,
                "messageId": hl7?.id ?? "", "assessmentId": assessmentID ?? "",
            ]
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var checked = 0
            for (template, operations) in paths.sorted(by: { $0.key < $1.key }) where operations["get"] != nil {
                var path = template
                var complete = true
                for match in template.matches(of: /\{([A-Za-z]+)\}/) {
                    let name = String(match.1)
                    guard let value = values[name], !value.isEmpty else { complete = false; break }
                    path = path.replacingOccurrences(of: "{\(name)}", with: value)
                }
                guard complete else { continue }
                // Chat message paths share the `messageId` name with HL7 messages: skip those.
                if template.hasPrefix("/api/v1/messages/") { continue }
                problems += try await Self.check(admin, validator, .GET, path, template: template)
                problems += try await Self.check(nurse, validator, .GET, path, template: template)
                checked += 1
            }
            #expect(checked >= 30, "only \(checked) GET operations could be checked")

            // Refusals are declared too: bad JSON, wrong media type, conflict, unknown method.
            problems += try await Self.check(nurse, validator, .POST, "/api/v1/alerts/\(alert.id!)/acknowledge",
                                             template: "/api/v1/alerts/{alertId}/acknowledge", body: #"{"readBack":"血钾 6.9"}"#)  // 409
            problems += try await Self.check(nurse, validator, .POST, "/api/v1/critical-values", template: "/api/v1/critical-values",
                                             body: "{not json")
            problems += try await Self.check(nurse, validator, .POST, "/api/v1/critical-values", template: "/api/v1/critical-values",
                                             body: "mrn=1", contentType: "application/x-www-form-urlencoded")
            problems += try await Self.check(admin, validator, .POST, "/api/v1/hl7/inbound", template: "/api/v1/hl7/inbound",
                                             body: String(decoding: try HL7Fixtures.bytes("adt_a01_utf8.hl7"), as: UTF8.self),
                                             contentType: "application/hl7-v2")
            #expect(problems.isEmpty, "\(problems.count) disagreements:\n\(problems.prefix(40).joined(separator: "\n"))")

            // The statistics carry the 18.1 minutes as a number, and the document says so.
            let stats = try await admin.get("/api/v1/alerts/statistics").body.string
            #expect(stats.contains("18.1"))
        }
    }
}
