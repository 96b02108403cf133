import Fluent
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsRoundNotes
import RoundsStore
import Vapor

/// Ward-round notes at the bedside (iPad first): record or type on the patient's notes page,
/// check and edit the sections, sign; the signed versions with the HIS's answer; a ward's notes
/// of the day for the head nurse; the hospital's recogniser and model for IT.
struct RoundNotePages {
    func register(_ routes: any RoutesBuilder) {
        routes.get("patients", ":patientId", "round-notes", use: list)
        routes.post("patients", ":patientId", "round-notes", use: createTyped)
        let upload = routes.on(.POST, "patients", ":patientId", "round-notes", "recording", body: .collect(maxSize: "26mb"), use: createRecorded)
        upload.userInfo[BodyDeadlineMiddleware.maximumSizeKey] = ByteCount(stringLiteral: "26mb")
        routes.get("round-notes", ":noteId", use: note)
        routes.post("round-notes", ":noteId", use: saveOrSign)
        routes.get("round-notes", ":noteId", "audio", use: audio)
        routes.get("wards", ":wardId", "round-notes", use: ward)
        routes.get("admin", "hospitals", ":id", "round-notes", use: settings)
        routes.post("admin", "hospitals", ":id", "round-notes", use: saveSettings)
    }

    static func day(_ req: Request) throws -> Date {
        guard let text = req.query[String.self, at: "day"], !text.isEmpty else { return req.rounds.configuration.clock.now() }
        guard let date = Formatting.day(text) else { throw RoundsError.validation("day: YYYY-MM-DD") }
        return date
    }

    struct NoteRow: Encodable {
        var id: String; var at: String; var author: String; var status: String; var signed: Bool; var version: Int; var excerpt: String
        var patient: String?; var bed: String?
    }

    static func row(_ n: RoundNote, _ t: [String: String], patient: String? = nil, bed: String? = nil) -> NoteRow {
        let s = n.sections
        let excerpt = [s.diagnosis, s.plan, s.complaint].first { !$0.isEmpty } ?? ""
        return NoteRow(id: n.id!, at: Formatting.dateTime(n.updatedAt), author: n.authorName,
                       status: n.status == .signed ? (t["round_note_signed"] ?? "已签名") : (t["round_note_draft"] ?? "草稿"),
                       signed: n.status == .signed, version: n.signedVersion,
                       excerpt: excerpt.count > 80 ? String(excerpt.prefix(80)) + "…" : excerpt, patient: patient, bed: bed)
    }

    // MARK: A patient's notes

    struct ListData: Encodable {
        var patientId: String; var name: String; var mrn: String; var ward: String; var canWrite: Bool; var query: String
        var notes: [NoteRow]; var key: String
    }

    @Sendable func list(req: Request) async throws -> Response {
        let context = try req.context()
        let patientID = try req.parameters.require("patientId")
        let t = req.rounds.catalogue.table(req.locale)
        let query = req.query[String.self, at: "q"] ?? ""
        let (stay, notes) = try await req.rounds.roundNotes.notes(patientID: patientID, query: query, context: context, on: req.db)
        return try await req.page("round_notes", title: "round_notes_title", data: ListData(
            patientId: patientID, name: stay.patient.name, mrn: stay.patient.mrn, ward: stay.ward.name,
            canWrite: context.principal.canWriteRoundNotes(in: stay.ward.wardRef), query: query, notes: notes.map { Self.row($0, t) },
            key: UUID().uuidString), error: req.query[String.self, at: "error"])
    }

    @Sendable func createTyped(req: Request) async throws -> Response {
        struct Form: Content { var transcript: String?; var key: String }
        let patientID = try req.parameters.require("patientId")
        let form = try req.content.decode(Form.self)
        do {
            let note = try await req.rounds.roundNotes.create(
                patientID: patientID, .init(idempotencyKey: form.key, transcript: form.transcript,
                                            chart: try await RoundNoteViews.chart(patientID: patientID, req: req)),
                context: req.context(), on: req.db)
            return req.redirect(to: "/round-notes/\(note.id!)")
        } catch let error as RoundsError where [409, 413, 422].contains(error.status) {
            return req.redirect(to: "/patients/\(patientID)/round-notes", error: error)
        }
    }

    /// The recorder's upload (the body is the audio, the CSRF token in a header): answers with
    /// the new note's address, which the page then opens.
    @Sendable func createRecorded(req: Request) async throws -> Response {
        let patientID = try req.parameters.require("patientId")
        let (audio, type) = RoundNoteViews.recording(req)
        let note = try await req.rounds.roundNotes.create(
            patientID: patientID, .init(idempotencyKey: req.query[String.self, at: "key"] ?? "", audio: audio, audioContentType: type,
                                        chart: try await RoundNoteViews.chart(patientID: patientID, req: req)),
            context: req.context(), on: req.db)
        struct Answer: Content { var id: String; var url: String }
        return try await Answer(id: note.id!, url: "/round-notes/\(note.id!)").encodeResponse(status: .created, for: req)
    }

    // MARK: One note

    struct SectionView: Encodable { var code: String; var title: String; var text: String; var rows: Int }
    struct DeliveryView: Encodable { var channel: String; var status: String; var ok: Bool; var failed: Bool; var detail: String }
    struct VersionView: Encodable {
        var version: Int; var signedBy: String; var signedAt: String; var sections: [SectionView]; var his: [DeliveryView]; var documentNumber: String
    }
    struct NoteData: Encodable {
        var id: String; var patientId: String; var patient: String; var mrn: String; var ward: String; var bed: String
        var author: String; var isDraft: Bool; var canWrite: Bool; var revision: Int; var signedVersion: Int
        var source: String; var structuredBy: String; var structureNote: String?; var transcript: String?; var transcriptionError: String?
        var findings: String; var sections: [SectionView]; var versions: [VersionView]; var hasAudio: Bool; var createdAt: String
    }

    @Sendable func note(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let detail = try await req.rounds.roundNotes.detail(req.parameters.require("noteId"), context: req.context(), on: req.db)
        let n = detail.note
        let versions = try await RoundNoteViews.versions(detail, on: req.db)
        var bed: String?
        if let bedID = detail.stay.encounter.bedID { bed = try await Bed.find(bedID, on: req.db)?.label }
        func views(_ s: NoteSections) -> [SectionView] {
            NoteSection.allCases.map { SectionView(code: $0.rawValue, title: $0.title(req.locale), text: s[$0],
                                                   rows: max(3, min(14, s[$0].count / 28 + s[$0].filter { $0 == "\n" }.count + 2))) }
        }
        let data = NoteData(
            id: n.id!, patientId: n.patientID, patient: detail.stay.patient.name, mrn: detail.stay.patient.mrn, ward: detail.stay.ward.name,
            bed: bed ?? "", author: n.authorName, isDraft: n.status == .draft, canWrite: detail.canWrite, revision: n.revision,
            signedVersion: n.signedVersion, source: t["round_note_source_\(n.source.rawValue)"] ?? n.source.rawValue,
            structuredBy: t["round_note_by_\(n.structuredBy.rawValue)"] ?? n.structuredBy.rawValue,
            structureNote: n.structureNote.map { Self.reason($0, req.locale) }, transcript: n.transcript,
            transcriptionError: n.transcriptionError.map { Self.reason($0, req.locale) },
            findings: n.decodedFindings.map { "\($0.name) \($0.value)\($0.unit)" }.joined(separator: "；"),
            sections: views(n.sections),
            versions: versions.map { v in
                VersionView(version: v.version, signedBy: v.signedBy, signedAt: Formatting.dateTime(v.signedAt), sections: views(v.sections).filter { !$0.text.isEmpty },
                            his: v.his.map { h in
                                DeliveryView(channel: h.channel, status: t["his_status_\(h.status)"] ?? h.status, ok: h.status == "sent",
                                             failed: h.status == "dead",
                                             detail: [h.ackCode.map { "ACK \($0)" }, h.sentAt.map { Formatting.dateTime($0) }, h.error].compactMap { $0 }.joined(separator: " · "))
                            }, documentNumber: v.documentNumber)
            },
            hasAudio: detail.hasAudio, createdAt: Formatting.dateTime(n.createdAt))
        let done = req.query[String.self, at: "done"]
        return try await req.page("round_note", title: "round_note_title", data: data,
                                  flash: done.map { t["round_note_done_\($0)"] ?? t["saved"] ?? "" }, error: req.query[String.self, at: "error"])
    }

    /// Why the recogniser or the model gave nothing usable, in the reader's language (the
    /// services' reasons are kept in English on the note and in the API).
    static func reason(_ text: String, _ locale: RoundsCore.Locale) -> String {
        guard locale != .en else { return text }
        let service = text.contains("language model") ? "语言模型" : "语音识别服务"
        if text.hasPrefix("no speech recogniser is configured") { return "本院尚未配置语音识别服务" }
        if let range = text.range(of: "answered HTTP ") { return "\(service)返回错误（HTTP \(text[range.upperBound...])）" }
        if text.contains("did not answer in time") { return "\(service)响应超时" }
        if text.hasPrefix("could not reach") { return "无法连接\(service)" }
        if text.contains("heard nothing") { return "没有识别到语音" }
        if text.contains("is not an http(s) address") { return "\(service)地址无效" }
        return "\(service)的回答无法使用"
    }

    @Sendable func saveOrSign(req: Request) async throws -> Response {
        struct Form: Content {
            var revision: Int; var action: String
            var complaint: String?; var examination: String?; var investigations: String?; var diagnosis: String?; var plan: String?
        }
        let id = try req.parameters.require("noteId")
        let form = try req.content.decode(Form.self)
        let sections = NoteSections(complaint: form.complaint ?? "", examination: form.examination ?? "", investigations: form.investigations ?? "",
                                    diagnosis: form.diagnosis ?? "", plan: form.plan ?? "")
        do {
            switch form.action {
            case "sign":
                _ = try await req.rounds.roundNotes.sign(id, sections: sections, revision: form.revision, context: req.context(), on: req.db)
                return req.redirect(to: "/round-notes/\(id)?done=signed")
            case "save":
                _ = try await req.rounds.roundNotes.save(id, sections: sections, revision: form.revision, context: req.context(), on: req.db)
                return req.redirect(to: "/round-notes/\(id)?done=saved")
            default:
                throw RoundsError.validation("action: save or sign")
            }
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: "/round-notes/\(id)", error: error)
        }
    }

    /// The recording, as the browser plays it; never run as a page.
    @Sendable func audio(req: Request) async throws -> Response {
        guard let audio = try await req.rounds.roundNotes.audio(noteID: req.parameters.require("noteId"), context: req.context(), on: req.db) else {
            throw RoundsError.notFound("recording", id: req.parameters.get("noteId") ?? "")
        }
        let response = Response(status: .ok, body: .init(data: audio.data))
        let parts = audio.contentType.split(separator: "/")
        response.headers.contentType = HTTPMediaType(type: String(parts.first ?? "audio"), subType: String(parts.last ?? "webm"))
        response.headers.replaceOrAdd(name: "Content-Security-Policy", value: "sandbox; default-src 'none'")
        response.headers.replaceOrAdd(name: .cacheControl, value: "private, no-store")
        return response
    }

    // MARK: A ward's day

    struct WardData: Encodable { var wardId: String; var ward: String; var day: String; var previous: String; var next: String; var notes: [NoteRow] }

    @Sendable func ward(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let day = try Self.day(req)
        let (ward, notes) = try await req.rounds.roundNotes.wardNotes(wardID: req.parameters.require("wardId"), day: day,
                                                                       timeZone: Formatting.hospitalTimeZone, context: req.context(), on: req.db)
        let patients = Dictionary(uniqueKeysWithValues: try await Patient.query(on: req.db).filter(\.$id ~~ Array(Set(notes.map(\.patientID)))).all().map { ($0.id!, $0) })
        let encounters = Dictionary(uniqueKeysWithValues: try await Encounter.query(on: req.db).filter(\.$id ~~ Array(Set(notes.map(\.encounterID)))).all().map { ($0.id!, $0) })
        let bedIDs = Array(Set(encounters.values.compactMap(\.bedID)))
        let beds = Dictionary(uniqueKeysWithValues: try await Bed.query(on: req.db).filter(\.$id ~~ bedIDs).all().map { ($0.id!, $0.label) })
        return try await req.page("round_notes_ward", title: "round_notes_ward_title", data: WardData(
            wardId: ward.id!, ward: ward.name, day: Formatting.day(day), previous: Formatting.day(day.addingTimeInterval(-86_400)),
            next: Formatting.day(day.addingTimeInterval(86_400)),
            notes: notes.map { n in
                Self.row(n, t, patient: patients[n.patientID]?.name, bed: encounters[n.encounterID]?.bedID.flatMap { beds[$0] })
            }))
    }

    // MARK: Settings

    struct SettingsData: Encodable {
        var hospitalId: String; var hospital: String; var settings: RoundNoteService.Settings; var vocabulary: String
        var asrURL: String; var llmURL: String
    }

    @Sendable func settings(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        let settings = try await req.rounds.roundNotes.settings(hospitalID: id, context: req.context(), on: req.db)
        let hospital = try await Hospital.find(id, on: req.db)
        return try await req.page("admin_round_notes", title: "round_note_settings_title", data: SettingsData(
            hospitalId: id, hospital: hospital?.name ?? "", settings: settings, vocabulary: settings.vocabulary.joined(separator: "\n"),
            asrURL: settings.asrURL ?? "", llmURL: settings.llmURL ?? ""),
            flash: req.query[String.self, at: "done"].map { _ in req.rounds.catalogue.table(req.locale)["saved"] ?? "" },
            error: req.query[String.self, at: "error"])
    }

    @Sendable func saveSettings(req: Request) async throws -> Response {
        struct Form: Content {
            var asrURL: String?; var asrModel: String?; var asrLanguage: String?; var asrKey: String?
            var llmURL: String?; var llmModel: String?; var llmKey: String?; var timeoutSeconds: Int?; var audioRetentionDays: Int?
            var vocabulary: String?; var clearASRKey: String?; var clearLLMKey: String?
        }
        let id = try req.parameters.require("id")
        let form = try req.content.decode(Form.self)
        // An empty key field keeps the stored key; the "remove" box removes it.
        let asrKey = form.clearASRKey != nil ? "" : ((form.asrKey ?? "").isEmpty ? nil : form.asrKey)
        let llmKey = form.clearLLMKey != nil ? "" : ((form.llmKey ?? "").isEmpty ? nil : form.llmKey)
        return try await req.formResult(back: "/admin/hospitals/\(id)/round-notes") {
            _ = try await req.rounds.roundNotes.updateSettings(hospitalID: id, .init(
                asrURL: form.asrURL ?? "", asrModel: form.asrModel, asrLanguage: form.asrLanguage, asrKey: asrKey, llmURL: form.llmURL ?? "",
                llmModel: form.llmModel, llmKey: llmKey, timeoutSeconds: form.timeoutSeconds, audioRetentionDays: form.audioRetentionDays,
                vocabulary: form.vocabulary.map { $0.split(whereSeparator: { $0 == "\n" || $0 == "、" || $0 == "," || $0 == "，" }).map(String.init) }),
                context: req.context(), on: req.db)
        }
    }
}
