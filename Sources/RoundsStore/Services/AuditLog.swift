import FluentKit
import Foundation
import RoundsCore

/// Who asked, and from where: passed to every service call that reads or writes patient data
/// or changes the organisation, so the audit row can be written in the same transaction.
public struct RequestContext: Sendable {
    public var principal: Principal
    public var clientAddress: String?

    public init(principal: Principal, clientAddress: String?) {
        self.principal = principal
        self.clientAddress = clientAddress
    }
}

public enum AuditOutcome: String, Sendable, Codable {
    case success
    case denied
    case failure
}

/// Writes and reads the append-only audit trail.
public struct AuditLog: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let subjects: any AuditSubjects

    public init(clock: any RoundsClock, ids: IDGenerator, subjects: any AuditSubjects) {
        self.clock = clock
        self.ids = ids
        self.subjects = subjects
    }

    /// Records one event. Call inside the transaction of the write it describes.
    public func record(
        _ action: String, entityType: String, entityID: String?, patientID: String? = nil,
        hospitalID: String? = nil, outcome: AuditOutcome = .success, detail: String? = nil,
        context: RequestContext, on db: any Database
    ) async throws {
        try await record(action, entityType: entityType, entityID: entityID, patientID: patientID,
                         hospitalID: hospitalID, outcome: outcome, detail: detail,
                         actorKind: context.principal.actorKind, actorID: context.principal.id,
                         actorName: context.principal.displayName, clientAddress: context.clientAddress, on: db)
    }

    /// For events without a signed-in principal (failed logins, the system itself).
    public func record(
        _ action: String, entityType: String, entityID: String?, patientID: String? = nil,
        hospitalID: String? = nil, outcome: AuditOutcome = .success, detail: String? = nil,
        actorKind: String, actorID: String?, actorName: String, clientAddress: String?, on db: any Database
    ) async throws {
        let event = AuditEvent()
        event.id = ids.next()
        event.at = clock.now()
        event.actorKind = actorKind
        event.actorID = actorID
        event.actorName = actorName
        event.action = action
        event.entityType = entityType
        event.entityID = entityID
        event.patientID = patientID
        // A row about a patient belongs to the patient's hospital, so that hospital's quality
        // control sees it even when the caller did not say (assessments, care plans, reports).
        if hospitalID == nil, let patientID {
            event.hospitalID = try await subjects.hospital(ofPatient: patientID, on: db)
        } else {
            event.hospitalID = hospitalID
        }
        event.clientAddress = clientAddress
        event.outcome = outcome.rawValue
        event.detail = detail
        try await event.create(on: db)
    }

    public struct Filter: Sendable {
        public var actorID: String?
        public var action: String?
        public var entityType: String?
        public var entityID: String?
        public var patientID: String?
        public var outcome: String?
        public var from: Date?
        public var to: Date?
        public var limit: Int
        /// Newest first; rows older than this id.
        public var beforeID: String?
        /// Any of these people, or patients (found by name or MRN); an empty list matches nothing.
        public var actorIDs: [String]?
        public var patientIDs: [String]?
        /// Words a reader typed: part of a person's name, a patient's MRN or part of the name.
        /// Resolved to ids once the reader's right to search is checked.
        public var personName: String?
        public var patientText: String?

        public init(actorID: String? = nil, action: String? = nil, entityType: String? = nil,
                    entityID: String? = nil, patientID: String? = nil, outcome: String? = nil,
                    from: Date? = nil, to: Date? = nil, limit: Int = 100, beforeID: String? = nil) {
            self.actorID = actorID; self.action = action; self.entityType = entityType
            self.entityID = entityID; self.patientID = patientID; self.outcome = outcome
            self.from = from; self.to = to; self.limit = limit; self.beforeID = beforeID
        }
    }

    /// "name · MRN" of the patients the rows are about, for an auditor's page of them.
    public func patientLabels(of events: [AuditEvent], on db: any Database) async throws -> [String: String] {
        let ids = Set(events.compactMap(\.patientID))
        guard !ids.isEmpty else { return [:] }
        return try await subjects.patientLabels(ids, on: db)
    }

    /// Audit rows the principal may see, newest first. Browsing the audit log is itself audited.
    public func search(_ filter: Filter, context: RequestContext, on db: any Database) async throws -> [AuditEvent] {
        let principal = context.principal
        guard principal.isAuditor || principal.hasScope(.auditRead) else {
            try await record("audit.search", entityType: "audit", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("audit log")
        }
        var filter = filter
        if let person = filter.personName?.trimmingCharacters(in: .whitespaces), !person.isEmpty {
            filter.actorIDs = try await subjects.staff(named: person, limit: 200, on: db)
        }
        if let patient = filter.patientText?.trimmingCharacters(in: .whitespaces), !patient.isEmpty {
            filter.patientIDs = try await subjects.patients(matching: patient, limit: 200, on: db)
        }
        let query = AuditEvent.query(on: db)
        if let hospitals = principal.auditHospitalIDs.map(Array.init) {
            // Rows of no hospital (sign-ins, tokens, contact details) belong to the people: a
            // hospital's auditors see those by or about its staff and its tokens.
            let (staff, tokens) = try await subjects.people(ofHospitals: hospitals, on: db)
            let people = staff + tokens
            query.group(.or) { or in
                or.filter(\.$hospitalID ~~ hospitals)
                if !people.isEmpty {
                    or.group(.and) { $0.filter(\.$hospitalID == nil).filter(\.$actorID ~~ people) }
                    or.group(.and) { $0.filter(\.$hospitalID == nil).filter(\.$entityType == "staff").filter(\.$entityID ~~ staff) }
                }
            }
        }
        if let v = filter.actorID { query.filter(\.$actorID == v) }
        if let v = filter.action { query.filter(\.$action == v) }
        if let v = filter.entityType { query.filter(\.$entityType == v) }
        if let v = filter.entityID { query.filter(\.$entityID == v) }
        if let v = filter.patientID { query.filter(\.$patientID == v) }
        if let v = filter.outcome { query.filter(\.$outcome == v) }
        if let v = filter.from { query.filter(\.$at >= v) }
        if let v = filter.to { query.filter(\.$at < v) }
        if let v = filter.beforeID { query.filter(\.$id < v) }
        if let v = filter.actorIDs { query.filter(\.$actorID ~~ v) }
        if let v = filter.patientIDs { query.filter(\.$patientID ~~ v) }
        let rows = try await query.sort(\.$at, .descending).sort(\.$id, .descending)
            .limit(max(1, min(filter.limit, 10_000))).all()
        try await record("audit.search", entityType: "audit", entityID: nil, detail: "\(rows.count) rows",
                         context: context, on: db)
        return rows
    }

    /// RFC 4180 CSV, with a BOM so spreadsheet programs open the Chinese text as UTF-8.
    public static func csv(_ rows: [AuditEvent], style: CSVStyle = .machine) -> String {
        let columns = ["id", "at", "actor_kind", "actor_id", "actor_name", "action", "entity_type", "entity_id", "patient_id",
                       "hospital_id", "client_address", "outcome", "detail"]
        var out = "\u{FEFF}" + style.header(columns, prefix: "csv_audit_") + "\r\n"
        let time = style.timeFormat()
        for r in rows {
            let fields: [String?] = [r.id, time(r.at), style.word("actor_kind", r.actorKind), r.actorID, r.actorName,
                                     style.word("audit_action", r.action), r.entityType, r.entityID, r.patientID, r.hospitalID,
                                     r.clientAddress, style.word("audit_outcome", r.outcome), r.detail]
            out += fields.map { csvField($0 ?? "") }.joined(separator: ",") + "\r\n"
        }
        return out
    }

    public static func csvField(_ value: String) -> String {
        // A leading =, +, - or @ would run as a formula in a spreadsheet.
        var v = value
        if let first = v.first, "=+-@".contains(first) { v = "'" + v }
        if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }
}

/// How a CSV is written: for programs (the API: column keys, ISO 8601 UTC times) or for people
/// (the pages' download: headers and values in the reader's language, hospital-local times).
public enum CSVStyle: Sendable {
    case machine
    case people(labels: [String: String], timeZone: TimeZone)

    public func header(_ columns: [String], prefix: String) -> String {
        switch self {
        case .machine: return columns.joined(separator: ",")
        case .people(let labels, _): return columns.map { AuditLog.csvField(labels[prefix + $0] ?? $0) }.joined(separator: ",")
        }
    }

    /// How this style writes a time; make it once per export (formatters are costly to make).
    public func timeFormat() -> (Date?) -> String? {
        switch self {
        case .machine:
            let iso = ISO8601DateFormatter()
            return { $0.map(iso.string(from:)) }
        case .people(_, let zone):
            let f = DateFormatter()
            f.locale = Foundation.Locale(identifier: "en_US_POSIX")
            f.timeZone = zone
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            return { $0.map(f.string(from:)) }
        }
    }

    /// A coded value in words ("alert_status_open" → 未确认), or as it is for programs.
    public func word(_ kind: String, _ value: String?) -> String? {
        guard let value else { return nil }
        switch self {
        case .machine: return value
        case .people(let labels, _): return labels["\(kind)_\(value)"] ?? value
        }
    }
}
