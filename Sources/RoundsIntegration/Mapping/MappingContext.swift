import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

/// Why a readable message could not be applied: it is stored with status "error" and the
/// sender gets an AE with this text, to fix and resend.
public struct MappingError: Error, Sendable, CustomStringConvertible {
    public var text: String
    /// HL7 table 0357: 101 required field missing, 103 table value not found, 204 unknown key…
    public var code: String

    public init(_ text: String, code: String = "207") {
        self.text = text
        self.code = code
    }

    public var description: String { text }
}

/// A valid message that waits for a person (or the admission it needs) before it is applied:
/// stored with status "held", answered AE with the reason, applied when released.
public struct HeldForReview: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var code: String
    /// What it waits for, the mapping queue's group: "patient|<hospital id>|<MRN>",
    /// "ward|<sender>|<hospital id>|<code>", "staff|<sender>|<hospital id>|<id>".
    public var key: String
    public var mrn: String?
    public var hospitalID: String?
    public var description: String { text }
}

/// Everything a mapper needs while applying one message, inside its transaction.
struct MappingContext {
    let db: any Database
    let message: HL7Message
    let messageID: String
    let now: Date
    let ids: IDGenerator
    let audit: AuditLog
    let rules: [CriticalValueRule]
    /// Hospitals and staff ids as read a moment ago (see `LookupCache`).
    var lookups = LookupCache(lifetime: .zero)
    /// "hl7:HIS@ARION", the actor of audit rows.
    let actor: String
    /// The person or token that handed the message in over HTTP: the rows are theirs.
    var submitter: HL7Submitter? = nil
    let peer: String?
    /// The sending system's channel: its codes, its policies for what Rounds does not know.
    var channel: ResolvedChannel = .none
    /// The held message this one replays (its release), if it is one.
    var replayOf: String?
    /// Filled in by mappers for the message store (patient search).
    var patientID: String?
    var patientMRN: String?
    var hospitalID: String?
    var events: [PendingEvent] = []

    func value(_ path: String) -> String? {
        guard let v = message[path], !v.isEmpty else { return nil }
        return v
    }

    func require(_ path: String, _ what: String) throws -> String {
        guard let v = value(path) else { throw MappingError("\(path) (\(what)) is required", code: "101") }
        return v
    }

    var actorKind: String { submitter?.kind ?? "system" }
    /// "HIS@ARION": MSH-3@MSH-4, the sender the mapping queue groups by.
    var sender: String { "\(message.sendingApplication)@\(message.sendingFacility)" }
    /// "王芳 (hl7:HIS@ARION)": who handed it in, and what the message says it came from.
    var actorName: String { submitter.map { "\($0.name) (\(actor))" } ?? actor }

    /// Writes a patient-data audit row attributed to the sender (the submitter over HTTP).
    func audit(_ action: String, entityType: String, entityID: String?, patientID: String?, detail: String? = nil) async throws {
        try await audit.record(action, entityType: entityType, entityID: entityID, patientID: patientID, hospitalID: hospitalID,
                               detail: detail, actorKind: actorKind, actorID: submitter?.id, actorName: actorName, clientAddress: peer, on: db)
    }

    /// Queues an event; the pipeline emits them with the stored message, in this transaction.
    mutating func emit(_ kind: EventKind, patientID: String?, encounterID: String?, payload: some Encodable) throws {
        events.append(try PendingEvent(kind, patientID: patientID, encounterID: encounterID, hospitalID: hospitalID,
                                       sourceMessageID: messageID, payload: payload))
    }

    // MARK: Resolving references

    /// The hospital a message is about: PV1-3-4 (the facility of the bed), else MSH-4.
    mutating func resolveHospital() async throws -> Hospital {
        if let id = channel.hospitalID {
            guard let hospital = try await Hospital.find(id, on: db) else {
                throw MappingError("channel '\(channel.name)' feeds a hospital that no longer exists", code: "207")
            }
            hospitalID = hospital.id
            return hospital
        }
        // PL-4 is the facility, unless the channel reads the ward from it.
        let facility = (channel.settings.wardComponent == 4 ? nil : value("PV1-3-4")) ?? value("MSH-4") ?? ""
        if let row = try await lookups.hospital(facility: [facility], soleHospital: true, on: db) {
            hospitalID = row.id
            // Only the id, code and name are read by the mappers: no query for the rest.
            let hospital = Hospital()
            hospital.id = row.id
            hospital.code = row.code
            hospital.name = row.name
            hospital.$id.exists = true
            return hospital
        }
        throw MappingError("unknown facility '\(facility)': set it as the HL7 facility of a hospital", code: "103")
    }

    /// Keeps one patient's messages in order: while an earlier message for the patient waits for
    /// a ward or staff mapping, a later one waits behind it (in the same group, so mapping
    /// applies both, in order). Waiting for the patient's own admission does not count: the
    /// admission is what ends that wait.
    func waitBehindHeld(hospitalID: String, mrn: String) async throws {
        let query = HL7MessageRecord.query(on: db).filter(\.$status == "held").filter(\.$hospitalID == hospitalID)
            .filter(\.$patientMRN == mrn).filter(\.$direction == "in")
        if let replayOf { query.filter(\.$id < replayOf) }
        guard let earlier = try await query.sort(\.$id).first(), let key = earlier.waitingFor, !key.hasPrefix("patient|") else { return }
        throw HeldForReview(text: "waiting behind an earlier \(earlier.messageType) for patient \(mrn), held (\(earlier.error ?? key))",
                            code: "206", key: key, mrn: mrn, hospitalID: hospitalID)
    }

    /// PID-3: the repetition typed MR (medical record number), else the first.
    func medicalRecordNumber() throws -> String {
        var repetition = 1
        while let id = value("PID-3(\(repetition))-1") {
            if value("PID-3(\(repetition))-5") == "MR" { return id }
            repetition += 1
        }
        guard let first = value("PID-3(1)-1") else { throw MappingError("PID-3 (patient identifier) is required", code: "101") }
        return first
    }

    /// A person name from an XPN (family, given) or XCN (id, family, given) field.
    static func personName(family: String?, given: String?) -> String {
        let family = family ?? "", given = given ?? ""
        let isCJK = (family + given).unicodeScalars.contains { (0x3400...0x9FFF).contains($0.value) }
        if isCJK { return family + given }
        return [given, family].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// HL7 DTM ("20261121083000", "202611210830", "20261121", with or without +0800) to a Date,
    /// in the hospital's time zone when no offset is given.
    static func date(_ text: String?, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai") ?? .current) -> Date? {
        guard var text, text.count >= 8 else { return nil }
        var zone = timeZone
        if let sign = text.lastIndex(where: { $0 == "+" || $0 == "-" }), text.distance(from: sign, to: text.endIndex) == 5 {
            let offset = text[text.index(after: sign)...]
            if let hh = Int(offset.prefix(2)), let mm = Int(offset.suffix(2)) {
                let seconds = (hh * 3600 + mm * 60) * (text[sign] == "-" ? -1 : 1)
                zone = TimeZone(secondsFromGMT: seconds) ?? zone
            }
            text = String(text[..<sign])
        }
        if let dot = text.firstIndex(of: ".") { text = String(text[..<dot]) }
        let digits = Array(text)
        guard digits.allSatisfy(\.isNumber) else { return nil }
        func n(_ from: Int, _ length: Int) -> Int? {
            guard digits.count >= from + length else { return nil }
            return Int(String(digits[from..<(from + length)]))
        }
        var c = DateComponents()
        c.year = n(0, 4); c.month = n(4, 2); c.day = n(6, 2)
        c.hour = n(8, 2) ?? 0; c.minute = n(10, 2) ?? 0; c.second = n(12, 2) ?? 0
        guard let m = c.month, (1...12).contains(m), let d = c.day, (1...31).contains(d) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(from: c)
    }

    /// yyyyMMdd → yyyy-MM-dd.
    static func isoDate(_ text: String?) -> String? {
        guard let text, text.count >= 8, text.prefix(8).allSatisfy(\.isNumber) else { return nil }
        let d = Array(text)
        return "\(String(d[0..<4]))-\(String(d[4..<6]))-\(String(d[6..<8]))"
    }

    /// Finds a member of staff by their HIS id (XCN-1); creates an account that cannot sign in
    /// when the HIS names someone Rounds does not know yet, so the care team is never lost.
    func staff(xcn path: String) async throws -> Staff? {
        guard let hisID = value("\(path)-1") else { return nil }
        let cached = try await lookups.id("staff|\(hisID)") { try await Staff.query(on: db).filter(\.$hl7ID == hisID).first()?.id }
        if let cached {
            // The mappers read only the id of the staff they name.
            let known = Staff()
            known.id = cached
            known.$id.exists = true
            return known
        }
        switch channel.settings.unknownStaff {
        case .create: break
        case .refuse:
            throw MappingError("unknown staff id '\(hisID)' in \(path): set it as the HIS id of a member of staff", code: "103")
        case .queue:
            throw HeldForReview(text: "unknown staff id '\(hisID)' in \(path): waiting in the mapping queue", code: "103",
                                key: "staff|\(sender)|\(hospitalID ?? "")|\(hisID)", mrn: patientMRN, hospitalID: hospitalID)
        }
        let name = Self.personName(family: value("\(path)-2"), given: value("\(path)-3"))
        let username = "his." + hisID.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }
        if let existing = try await Staff.query(on: db).filter(\.$username == username).first() { return existing }
        let staff = Staff(id: ids.next(), username: username, displayName: name.isEmpty ? hisID : name, employeeNo: hisID,
                          passwordHash: "!", createdAt: now)  // "!" never verifies: no sign-in until an admin sets up the account
        staff.isActive = false
        staff.hl7ID = hisID
        try await staff.create(on: db)
        try await audit.record("staff.create", entityType: "staff", entityID: staff.id, detail: "from HL7: \(hisID) \(name)",
                               actorKind: actorKind, actorID: submitter?.id, actorName: actorName, clientAddress: peer, on: db)
        return staff
    }
}
