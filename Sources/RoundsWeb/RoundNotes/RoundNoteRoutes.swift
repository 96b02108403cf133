import Fluent
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsFHIR
import RoundsIntegration
import RoundsRoundNotes
import RoundsStore
import Vapor

extension NoteSections: APISchema {
    static var sample: NoteSections {
        NoteSections(complaint: "咳嗽较前减轻，无发热。", examination: "体温36.8℃，双肺呼吸音粗，右下肺少许湿啰音。",
                     investigations: "血常规：白细胞9.8×10⁹/L。", diagnosis: "社区获得性肺炎", plan: "继续头孢曲松抗感染，3天后复查血常规。")
    }
}

extension RoundNoteService.Settings: APISchema {
    static var sample: RoundNoteService.Settings {
        var s = RoundNoteService.Settings.defaults
        s.asrURL = "http://asr.hospital.local:8000"; s.vocabulary = ["头孢曲松", "莫西沙星"]
        return s
    }
}

extension RoundNoteService.SettingsChange: APISchema {
    static var sample: RoundNoteService.SettingsChange {
        .init(asrURL: "http://asr.hospital.local:8000", asrModel: "whisper-small", llmURL: "http://llm.hospital.local:8080", audioRetentionDays: 30)
    }
}

/// The HIS's answer to one message that carried a signed version.
struct HISDeliveryDTO: APISchema {
    static let enums = ["status": ["pending", "sent", "dead"]]
    var channel: String
    var status: String
    var ackCode: String?
    var error: String?
    var attempts: Int
    var sentAt: Date?
    static let sample = HISDeliveryDTO(channel: "HIS 文书", status: "sent", ackCode: "AA", error: nil, attempts: 1, sentAt: Date(timeIntervalSince1970: 0))
}

struct RoundNoteVersionDTO: APISchema {
    var version: Int
    var signedBy: String
    var signedAt: Date
    var documentNumber: String
    var controlId: String
    var sections: NoteSections
    /// Empty when no outbound channel carries MDM for the hospital.
    var his: [HISDeliveryDTO]
    static let sample = RoundNoteVersionDTO(version: 1, signedBy: "李明", signedAt: Date(timeIntervalSince1970: 0), documentNumber: "RN…-1",
                                            controlId: "RN…", sections: .sample, his: [.sample])
}

struct FindingDTO: APISchema {
    var name: String
    var value: String
    var unit: String
    var section: String
    static let sample = FindingDTO(name: "体温", value: "38.5", unit: "℃", section: "examination")
}

struct RoundNoteDTO: APISchema {
    static let enums = ["status": ["draft", "signed"], "source": ["voice", "typed"], "structuredBy": ["model", "rules", "doctor"]]
    var id: String
    var patientId: String
    var encounterId: String
    var wardId: String
    var author: String
    var status: String
    /// Send it back with a save or a signing: an older one is refused (409).
    var revision: Int
    var signedVersion: Int
    var source: String
    var structuredBy: String
    var structureNote: String?
    var transcript: String?
    var transcriptionError: String?
    var sections: NoteSections
    var findings: [FindingDTO]
    var createdAt: Date
    var updatedAt: Date
    var signedAt: Date?
    var versions: [RoundNoteVersionDTO]?

    init(_ n: RoundNote, versions: [RoundNoteVersionDTO]? = nil) {
        id = n.id ?? ""; patientId = n.patientID; encounterId = n.encounterID; wardId = n.wardID; author = n.authorName
        status = n.status.rawValue; revision = n.revision; signedVersion = n.signedVersion; source = n.source.rawValue
        structuredBy = n.structuredBy.rawValue; structureNote = n.structureNote; transcript = n.transcript; transcriptionError = n.transcriptionError
        sections = n.sections; findings = n.decodedFindings.map { FindingDTO(name: $0.name, value: $0.value, unit: $0.unit, section: $0.section.rawValue) }
        createdAt = n.createdAt; updatedAt = n.updatedAt; signedAt = n.signedAt; self.versions = versions
    }
    static var sample: RoundNoteDTO {
        let n = RoundNote()
        n.id = "…"; n.patientID = "…"; n.encounterID = "…"; n.wardID = "…"; n.authorID = "…"; n.authorName = "李明"; n.status = .signed
        n.revision = 3; n.signedVersion = 1; n.source = .voice; n.structuredBy = .rules; n.transcript = "患者咳嗽较前减轻…"; n.sections = .sample
        n.findings = #"[{"name":"体温","value":"36.8","unit":"℃","section":"examination"}]"#
        n.createdAt = Date(timeIntervalSince1970: 0); n.updatedAt = n.createdAt; n.signedAt = n.createdAt
        return RoundNoteDTO(n, versions: [.sample])
    }
}

struct NewRoundNoteBody: APISchema {
    /// Made once per typed text: sending it again returns the first note.
    var idempotencyKey: String
    var encounterId: String?
    /// What the doctor said or typed; Rounds fills the sections from it. Empty: a blank form.
    var transcript: String?
    static let sample = NewRoundNoteBody(idempotencyKey: "6d0f…", encounterId: nil, transcript: "患者今日咳嗽减轻。查体体温三十六度八。诊断社区获得性肺炎。计划继续抗感染。")
}

struct SaveRoundNoteBody: APISchema {
    var sections: NoteSections?
    var revision: Int
    static let sample = SaveRoundNoteBody(sections: .sample, revision: 2)
}

enum RoundNoteViews {
    /// What Rounds knows of the patient for the note: the latest results and reports in words,
    /// and the drug and test names the recogniser should expect.
    static func chart(patientID: String, req: Request) async throws -> RoundNoteService.Chart {
        let chart = try await req.rounds.patients.chart(patientID: patientID, context: req.context(), on: req.db)
        var seen = Set<String>(), lines: [String] = []
        for r in chart.results.sorted(by: { ($0.observedAt ?? $0.createdAt) > ($1.observedAt ?? $1.createdAt) }) where seen.insert(r.name).inserted && lines.count < 8 {
            let shown = ClinicalEvent.ObservationResult.shown(value: r.value, text: r.valueText)
            lines.append("\(r.name) \(shown)\(r.unit.map { " \($0)" } ?? "")\(AbnormalFlag.inWords(r.abnormalFlag) ?? "")（\(Formatting.dateTime(r.observedAt ?? r.createdAt))）")
        }
        for report in chart.reports.prefix(3) {
            let text = report.text.replacingOccurrences(of: "\n", with: " ")
            lines.append("\(report.title)：\(text.count > 80 ? String(text.prefix(80)) + "…" : text)（\(Formatting.dateTime(report.createdAt))）")
        }
        // The patient's diagnoses as the last signed note has them, then what was ordered and tested.
        let signed = try? await req.rounds.roundNotes.latestSigned(patientID: patientID, context: req.context(), on: req.db)
        let diagnoses = signed?.sections.diagnosis
            .split(whereSeparator: { "，,。；;、\n".contains($0) }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        var vocabulary: [String] = []
        for name in diagnoses + chart.orders.map(\.description) + chart.results.map(\.name) + chart.reports.map(\.title) where !vocabulary.contains(name) {
            vocabulary.append(name)
        }
        return RoundNoteService.Chart(investigations: lines, vocabulary: Array(vocabulary.prefix(40)))
    }

    /// Each signed version with the HIS's answers (found by the message's control id).
    static func versions(_ detail: RoundNoteService.Detail, on db: any Database) async throws -> [RoundNoteVersionDTO] {
        let controlIDs = detail.versions.map(\.controlID)
        let messages = controlIDs.isEmpty ? [] : try await OutboundMessage.query(on: db).filter(\.$controlID ~~ controlIDs).all()
        let channelIDs = Array(Set(messages.compactMap(\.channelID)))
        let names = channelIDs.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: try await HL7OutboundChannel.query(on: db).filter(\.$id ~~ channelIDs).all().map { ($0.id!, $0.name) })
        return detail.versions.map { v in
            RoundNoteVersionDTO(version: v.version, signedBy: v.signedByName, signedAt: v.signedAt, documentNumber: v.documentNumber,
                                controlId: v.controlID, sections: v.sections,
                                his: messages.filter { $0.controlID == v.controlID }.map { m in
                                    HISDeliveryDTO(channel: m.channelID.flatMap { names[$0] } ?? "\(m.host):\(m.port)", status: m.status, ackCode: m.ackCode,
                                                   error: m.lastError, attempts: m.attempts, sentAt: m.sentAt)
                                })
        }
    }

    struct Bundle: Encodable {
        struct Entry: Encodable { var fullUrl: String; var resource: FHIR.DocumentReference }
        var resourceType = "Bundle"
        var type = "searchset"
        var total: Int
        var entry: [Entry]
    }

    /// Each signed version as a DocumentReference (LOINC 11506-3 progress note), its text inline.
    static func documentReferences(_ d: RoundNoteService.Detail) -> Bundle {
        let iso = ISO8601DateFormatter()
        iso.timeZone = Formatting.hospitalTimeZone
        iso.formatOptions = [.withInternetDateTime]
        let newest = d.versions.first?.version
        let entries = d.versions.map { v -> Bundle.Entry in
            let text = NoteSection.allCases.filter { !v.sections[$0].isEmpty }.map { "\($0.titleZH)：\(v.sections[$0])" }.joined(separator: "\n")
            let previous = d.versions.first { $0.version == v.version - 1 }
            let id = "\(d.note.id!)-\(v.version)"
            let author = FHIR.Reference(reference: nil, display: v.signedByName)
            let resource = FHIR.DocumentReference(
                id: id, masterIdentifier: .init(system: "urn:rounds:round-note", value: v.documentNumber),
                status: v.version == newest ? "current" : "superseded", docStatus: v.version == 1 ? "final" : "amended",
                type: .init(coding: [.init(system: "http://loinc.org", code: "11506-3", display: "Progress note")], text: "查房记录"),
                subject: .init(reference: nil, display: "\(d.stay.patient.name) \(d.stay.patient.mrn)"),
                date: iso.string(from: v.signedAt), author: [author], authenticator: author,
                relatesTo: previous.map { [.init(code: "replaces", target: .init(reference: "DocumentReference/\(d.note.id!)-\($0.version)"))] },
                description: "查房记录 第 \(v.version) 版",
                content: [.init(attachment: .init(contentType: "text/plain; charset=utf-8", language: "zh-CN", data: Data(text.utf8).base64EncodedString(),
                                                  title: "查房记录", creation: iso.string(from: v.signedAt)))])
            return .init(fullUrl: "urn:uuid:\(id)", resource: resource)
        }
        return Bundle(total: entries.count, entry: entries)
    }

    /// A recording's body and type from a raw upload.
    static func recording(_ req: Request) -> (Data, String) {
        (req.body.data.map { Data(buffer: $0) } ?? Data(), req.headers.contentType.map { "\($0.type)/\($0.subType)" } ?? "")
    }
}

struct RoundNoteRoutes {
    let api: APIBuilder

    func register() {
        api.on(.POST, "patients", ":patientId", "round-notes", summary: "Start a ward-round note from typed text (sectioned by the hospital's model or Rounds' rules), or blank",
               tag: "round-notes", body: NewRoundNoteBody.self, returns: RoundNoteDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(NewRoundNoteBody.self)
            let patientID = try req.parameters.require("patientId")
            let note = try await req.rounds.roundNotes.create(
                patientID: patientID, .init(idempotencyKey: body.idempotencyKey, encounterID: body.encounterId, transcript: body.transcript,
                                            chart: try await RoundNoteViews.chart(patientID: patientID, req: req)),
                context: req.context(), on: req.db)
            return try await RoundNoteDTO(note).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "patients", ":patientId", "round-notes", "recording",
               summary: "Start a ward-round note from a recording (the body is the audio; ?idempotencyKey=&encounterId=): transcribed by the hospital's recogniser",
               tag: "round-notes", returns: RoundNoteDTO.self, status: 201, query: ["idempotencyKey", "encounterId"],
               rawBody: ["audio/webm", "audio/ogg", "audio/wav", "audio/mp4"], maxBody: "26mb") { req -> Response in
            let patientID = try req.parameters.require("patientId")
            let (audio, type) = RoundNoteViews.recording(req)
            let note = try await req.rounds.roundNotes.create(
                patientID: patientID, .init(idempotencyKey: req.query[String.self, at: "idempotencyKey"] ?? "", encounterID: req.query[String.self, at: "encounterId"],
                                            audio: audio, audioContentType: type, chart: try await RoundNoteViews.chart(patientID: patientID, req: req)),
                context: req.context(), on: req.db)
            return try await RoundNoteDTO(note).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "patients", ":patientId", "round-notes", summary: "A patient's ward-round notes, newest first (?q= searches their text)",
               tag: "round-notes", returns: RoundNoteDTO.self, array: true, query: ["q"]) { req in
            try await req.rounds.roundNotes.notes(patientID: req.parameters.require("patientId"), query: req.query[String.self, at: "q"],
                                                  context: req.context(), on: req.db).1.map { RoundNoteDTO($0) }
        }
        api.on(.GET, "round-notes", ":noteId", summary: "One note with its signed versions and the HIS's answers", tag: "round-notes",
               returns: RoundNoteDTO.self) { req in
            let detail = try await req.rounds.roundNotes.detail(req.parameters.require("noteId"), context: req.context(), on: req.db)
            return RoundNoteDTO(detail.note, versions: try await RoundNoteViews.versions(detail, on: req.db))
        }
        api.on(.PUT, "round-notes", ":noteId", summary: "Save the draft (editing a signed note starts its correction)", tag: "round-notes",
               body: SaveRoundNoteBody.self, returns: RoundNoteDTO.self) { req in
            let body = try req.content.decode(SaveRoundNoteBody.self)
            guard let sections = body.sections else { throw RoundsError.validation("sections: required") }
            return RoundNoteDTO(try await req.rounds.roundNotes.save(req.parameters.require("noteId"), sections: sections, revision: body.revision,
                                                                     context: req.context(), on: req.db))
        }
        api.on(.POST, "round-notes", ":noteId", "sign", summary: "Sign the draft: a new version, sent to the HIS (MDM^T02, corrections MDM^T10) and to the patient's group",
               tag: "round-notes", body: SaveRoundNoteBody.self, returns: RoundNoteDTO.self) { req in
            let body = try req.content.decode(SaveRoundNoteBody.self)
            let id = try req.parameters.require("noteId")
            _ = try await req.rounds.roundNotes.sign(id, sections: body.sections, revision: body.revision, context: req.context(), on: req.db)
            let detail = try await req.rounds.roundNotes.detail(id, context: req.context(), on: req.db)
            return RoundNoteDTO(detail.note, versions: try await RoundNoteViews.versions(detail, on: req.db))
        }
        api.on(.GET, "round-notes", ":noteId", "document-references",
               summary: "The signed versions as FHIR R4 DocumentReferences (a Bundle, newest first; earlier versions superseded)",
               tag: "round-notes", contentType: "application/fhir+json") { req in
            let detail = try await req.rounds.roundNotes.detail(req.parameters.require("noteId"), context: req.context(), on: req.db)
            return try FHIRJSON(RoundNoteViews.documentReferences(detail))
        }
        api.on(.GET, "wards", ":wardId", "round-notes", summary: "A ward's notes of one day (?day=YYYY-MM-DD, hospital time; today by default)",
               tag: "round-notes", returns: RoundNoteDTO.self, array: true, query: ["day"]) { req in
            try await req.rounds.roundNotes.wardNotes(wardID: req.parameters.require("wardId"), day: RoundNotePages.day(req),
                                                      timeZone: Formatting.hospitalTimeZone, context: req.context(), on: req.db).1.map { RoundNoteDTO($0) }
        }
        api.on(.GET, "hospitals", ":hospitalId", "round-note-settings", summary: "The hospital's speech recogniser, language model and recording retention",
               tag: "round-notes", returns: RoundNoteService.Settings.self) { req in
            try await req.rounds.roundNotes.settings(hospitalID: req.parameters.require("hospitalId"), context: req.context(), on: req.db)
        }
        api.on(.PUT, "hospitals", ":hospitalId", "round-note-settings", summary: "Change them (administrators and IT; keys are stored, never shown)",
               tag: "round-notes", body: RoundNoteService.SettingsChange.self, returns: RoundNoteService.Settings.self) { req in
            try await req.rounds.roundNotes.updateSettings(hospitalID: req.parameters.require("hospitalId"),
                                                           try req.content.decode(RoundNoteService.SettingsChange.self), context: req.context(), on: req.db)
        }
    }
}
