import FluentKit
import Foundation
import RoundsConnectors
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// Ward-round notes: a recording or typed text becomes a draft (transcribed by the hospital's
/// recogniser, sectioned by its model or by Rounds' rules), the doctor edits and signs it, and
/// each signing is a version kept for ever and an event (the HIS message, the group's card).
/// Doctors of the ward write; the care team reads; every read and write is audited.
public struct RoundNoteService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    public let events: OutboxWriter
    /// The HTTP client for the recogniser and the model, with a timeout in seconds.
    public let http: @Sendable (Int) -> HTTPPoster
    public let structurer = RuleStructurer()
    /// The largest recording taken (about 25 minutes of Opus speech).
    public var maximumAudioBytes = 25 << 20

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, events: OutboxWriter,
                http: @escaping @Sendable (Int) -> HTTPPoster = { HTTPPoster.live(timeout: .seconds(Int64($0))) }) {
        self.clock = clock; self.ids = ids; self.audit = audit; self.events = events; self.http = http
    }

    // MARK: Access

    public struct Stay: Sendable { public var patient: Patient; public var encounter: Encounter; public var ward: Department }

    /// The patient's stay (the given one, or the active one, else the latest) with the check:
    /// writing for the ward's doctors, reading for whoever sees the ward's patients.
    func stay(patientID: String, encounterID: String?, write: Bool, action: String, context: RequestContext, on db: any Database) async throws -> Stay {
        guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
        let encounter: Encounter?
        if let encounterID, !encounterID.isEmpty {
            encounter = try await Encounter.find(encounterID, on: db)
            guard encounter?.patientID == patientID else { throw RoundsError.notFound("encounter", id: encounterID) }
        } else {
            let stays = try await Encounter.query(on: db).filter(\.$patientID == patientID).sort(\.$admittedAt, .descending).all()
            encounter = stays.first { $0.status == .active } ?? stays.first
        }
        guard let encounter else { throw RoundsError.conflict("the patient has no stay") }
        guard let ward = try await Department.find(encounter.wardID, on: db) else { throw RoundsError.notFound("ward", id: encounter.wardID) }
        let allowed = write ? context.principal.canWriteRoundNotes(in: ward.wardRef) : context.principal.canViewPatients(in: ward.wardRef)
        guard allowed else {
            try await audit.record(action, entityType: "patient", entityID: patientID, patientID: patientID, hospitalID: patient.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden(write ? "ward-round notes are written by the ward's doctors" : nil)
        }
        return Stay(patient: patient, encounter: encounter, ward: ward)
    }

    /// A note with the check; `write` for saving and signing.
    func note(_ noteID: String, write: Bool, action: String, context: RequestContext, on db: any Database) async throws -> (RoundNote, Stay) {
        guard let note = try await RoundNote.find(noteID, on: db) else { throw RoundsError.notFound("note", id: noteID) }
        let stay = try await stay(patientID: note.patientID, encounterID: note.encounterID, write: write, action: action, context: context, on: db)
        return (note, stay)
    }

    // MARK: Settings

    public struct Settings: Codable, Sendable, Equatable {
        public var asrURL: String?
        public var asrModel: String
        public var asrLanguage: String
        public var llmURL: String?
        public var llmModel: String
        public var timeoutSeconds: Int
        public var audioRetentionDays: Int
        public var vocabulary: [String]
        /// Whether a key is stored (the key itself is never shown).
        public var hasASRKey: Bool
        public var hasLLMKey: Bool

        public static let defaults = Settings(asrURL: nil, asrModel: "whisper-1", asrLanguage: "zh", llmURL: nil, llmModel: "qwen2.5-7b-instruct",
                                              timeoutSeconds: 60, audioRetentionDays: 30, vocabulary: [], hasASRKey: false, hasLLMKey: false)
    }

    public struct SettingsChange: Codable, Sendable {
        public var asrURL: String?
        public var asrModel: String?
        public var asrLanguage: String?
        /// nil keeps the stored key; "" removes it.
        public var asrKey: String?
        public var llmURL: String?
        public var llmModel: String?
        public var llmKey: String?
        public var timeoutSeconds: Int?
        public var audioRetentionDays: Int?
        public var vocabulary: [String]?
        public init(asrURL: String? = nil, asrModel: String? = nil, asrLanguage: String? = nil, asrKey: String? = nil, llmURL: String? = nil,
                    llmModel: String? = nil, llmKey: String? = nil, timeoutSeconds: Int? = nil, audioRetentionDays: Int? = nil, vocabulary: [String]? = nil) {
            self.asrURL = asrURL; self.asrModel = asrModel; self.asrLanguage = asrLanguage; self.asrKey = asrKey; self.llmURL = llmURL
            self.llmModel = llmModel; self.llmKey = llmKey; self.timeoutSeconds = timeoutSeconds; self.audioRetentionDays = audioRetentionDays
            self.vocabulary = vocabulary
        }
    }

    static func settings(_ row: RoundNoteSettingsRecord?) -> Settings {
        guard let row else { return .defaults }
        return Settings(asrURL: row.asrURL, asrModel: row.asrModel, asrLanguage: row.asrLanguage, llmURL: row.llmURL, llmModel: row.llmModel,
                        timeoutSeconds: row.timeoutSeconds, audioRetentionDays: row.audioRetentionDays,
                        vocabulary: row.vocabulary.split(separator: "\n").map(String.init), hasASRKey: !(row.asrKey ?? "").isEmpty,
                        hasLLMKey: !(row.llmKey ?? "").isEmpty)
    }

    /// A hospital's settings, for its administrators and IT.
    public func settings(hospitalID: String, context: RequestContext, on db: any Database) async throws -> Settings {
        guard context.principal.canAdministerConnectors(hospitalID: hospitalID) else { throw RoundsError.forbidden("set by the hospital's administrators") }
        return Self.settings(try await RoundNoteSettingsRecord.query(on: db).filter(\.$hospitalID == hospitalID).first())
    }

    public func updateSettings(hospitalID: String, _ change: SettingsChange, context: RequestContext, on db: any Database) async throws -> Settings {
        // Where patient audio and chart text go: administrators only, as for every outside destination.
        guard context.principal.canAdministerConnectors(hospitalID: hospitalID) else {
            try await audit.record("round_note.settings", entityType: "hospital", entityID: hospitalID, hospitalID: hospitalID, outcome: .denied,
                                   context: context, on: db)
            throw RoundsError.forbidden("set by the hospital's administrators")
        }
        guard try await Hospital.find(hospitalID, on: db) != nil else { throw RoundsError.notFound("hospital", id: hospitalID) }
        let row = try await RoundNoteSettingsRecord.query(on: db).filter(\.$hospitalID == hospitalID).first() ?? {
            let fresh = RoundNoteSettingsRecord()
            fresh.id = ids.next(); fresh.hospitalID = hospitalID
            let d = Settings.defaults
            fresh.asrModel = d.asrModel; fresh.asrLanguage = d.asrLanguage; fresh.llmModel = d.llmModel
            fresh.timeoutSeconds = d.timeoutSeconds; fresh.audioRetentionDays = d.audioRetentionDays; fresh.vocabulary = ""
            return fresh
        }()
        func address(_ value: String?, _ name: String) throws -> String? {
            guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            do { _ = try OpenAITranscriber.endpoint(value, "x") } catch { throw RoundsError.validation("\(name): not an http(s) address") }
            // A key belongs in the key field (kept secret), never in the address (shown and audited).
            guard let url = URL(string: value), url.user == nil, url.password == nil, url.query == nil, url.fragment == nil else {
                throw RoundsError.validation("\(name): an address without a user, password or query (put the key in its own field)")
            }
            return value
        }
        if let url = change.asrURL { row.asrURL = try address(url, "asrURL") }
        if let url = change.llmURL { row.llmURL = try address(url, "llmURL") }
        if let model = change.asrModel?.trimmingCharacters(in: .whitespaces) {
            guard !model.isEmpty, model.count <= 100 else { throw RoundsError.validation("asrModel: 1–100 characters") }
            row.asrModel = model
        }
        if let model = change.llmModel?.trimmingCharacters(in: .whitespaces) {
            guard !model.isEmpty, model.count <= 100 else { throw RoundsError.validation("llmModel: 1–100 characters") }
            row.llmModel = model
        }
        if let language = change.asrLanguage?.trimmingCharacters(in: .whitespaces) {
            guard language.count <= 10, language.allSatisfy({ $0.isLetter || $0 == "-" }) else { throw RoundsError.validation("asrLanguage: a language code such as zh") }
            row.asrLanguage = language
        }
        if let key = change.asrKey { row.asrKey = key.isEmpty ? nil : key }
        if let key = change.llmKey { row.llmKey = key.isEmpty ? nil : key }
        if let seconds = change.timeoutSeconds {
            guard (5...600).contains(seconds) else { throw RoundsError.validation("timeoutSeconds: 5–600") }
            row.timeoutSeconds = seconds
        }
        if let days = change.audioRetentionDays {
            guard (0...3650).contains(days) else { throw RoundsError.validation("audioRetentionDays: 0–3650 (0 deletes a recording once its note is made)") }
            row.audioRetentionDays = days
        }
        if let words = change.vocabulary {
            let cleaned = words.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard cleaned.count <= 500, cleaned.allSatisfy({ $0.count <= 50 }) else { throw RoundsError.validation("vocabulary: at most 500 words of 50 characters") }
            row.vocabulary = cleaned.joined(separator: "\n")
        }
        row.updatedAt = clock.now()
        row.updatedBy = context.principal.displayName
        let settings = Self.settings(row)
        try await db.transaction { tx in
            try await row.save(on: tx)
            // What changed, without the keys.
            try await audit.record("round_note.settings", entityType: "hospital", entityID: hospitalID, hospitalID: hospitalID,
                                   detail: "asr=\(settings.asrURL ?? "-") llm=\(settings.llmURL ?? "-") keep=\(settings.audioRetentionDays)d",
                                   context: context, on: tx)
        }
        return settings
    }

    // MARK: Drafts

    /// What the web layer knows of the patient's chart: the latest results and reports, in the
    /// words of the record, and the words the recogniser should expect (drugs ordered, diagnoses).
    public struct Chart: Sendable {
        public var investigations: [String]
        public var vocabulary: [String]
        public init(investigations: [String] = [], vocabulary: [String] = []) { self.investigations = investigations; self.vocabulary = vocabulary }
    }

    public struct NewNote: Sendable {
        /// Made by the client once per recording or typed text: a resend returns the first note.
        public var idempotencyKey: String
        public var encounterID: String?
        public var audio: Data?
        public var audioContentType: String?
        public var transcript: String?
        public var chart: Chart
        public init(idempotencyKey: String, encounterID: String? = nil, audio: Data? = nil, audioContentType: String? = nil,
                    transcript: String? = nil, chart: Chart = Chart()) {
            self.idempotencyKey = idempotencyKey; self.encounterID = encounterID; self.audio = audio; self.audioContentType = audioContentType
            self.transcript = transcript; self.chart = chart
        }
    }

    static let audioTypes = ["audio/webm", "audio/ogg", "audio/wav", "audio/x-wav", "audio/wave", "audio/mp4", "audio/mpeg", "audio/aac"]

    /// Makes a draft from a recording (transcribed), typed text (sectioned), or nothing (an
    /// empty form). A recogniser or model that fails never stops the draft: the reason is kept
    /// and the doctor types.
    public func create(patientID: String, _ input: NewNote, context: RequestContext, on db: any Database) async throws -> RoundNote {
        let key = input.idempotencyKey.trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty, key.count <= 100 else { throw RoundsError.validation("idempotencyKey: 1–100 characters") }
        let stay = try await stay(patientID: patientID, encounterID: input.encounterID, write: true, action: "round_note.create", context: context, on: db)
        if let existing = try await RoundNote.query(on: db).filter(\.$idempotencyKey == key).first() {
            guard existing.patientID == patientID, existing.authorID == context.principal.id else {
                throw RoundsError.conflict("idempotencyKey is already used for another note")
            }
            return existing
        }
        var contentType = ""
        if let audio = input.audio {
            guard !audio.isEmpty else { throw RoundsError.validation("audio: the recording is empty") }
            guard audio.count <= maximumAudioBytes else { throw RoundsError.payloadTooLarge("audio: at most \(maximumAudioBytes >> 20) MiB") }
            contentType = (input.audioContentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard Self.audioTypes.contains(contentType) else { throw RoundsError.validation("audio: \(contentType.isEmpty ? "no type" : contentType) is not a recording Rounds takes") }
        }
        if let typed = input.transcript, typed.count > 20_000 { throw RoundsError.validation("transcript: at most 20000 characters") }
        let keys = try await RoundNoteSettingsRecord.query(on: db).filter(\.$hospitalID == stay.encounter.hospitalID).first()
        let settings = Self.settings(keys)

        // Outside any transaction: the recogniser and the model may take their time.
        var transcript = input.transcript?.trimmingCharacters(in: .whitespacesAndNewlines)
        var transcriptionError: String?
        if let audio = input.audio {
            if let base = settings.asrURL {
                let vocabulary = Array((settings.vocabulary + input.chart.vocabulary).prefix(80))
                do {
                    transcript = try await OpenAITranscriber(http: http(settings.timeoutSeconds)).transcribe(
                        audio, contentType: contentType, base: base, model: settings.asrModel, language: settings.asrLanguage,
                        prompt: Self.prompt(vocabulary, language: settings.asrLanguage), key: keys?.asrKey)
                } catch {
                    transcriptionError = "\(error)"
                }
            } else {
                transcriptionError = "no speech recogniser is configured for this hospital"
            }
        }
        var sections = NoteSections(), findings: [Finding] = [], by = StructuredBy.doctor, structureNote: String?
        if let transcript, !transcript.isEmpty {
            let rules = structurer.structure(transcript)
            findings = rules.findings
            sections = rules.sections
            by = .rules
            if let base = settings.llmURL {
                do {
                    sections = try await OpenAIChatStructurer(http: http(settings.timeoutSeconds)).structure(
                        transcript: transcript, context: input.chart.investigations.joined(separator: "\n"), base: base,
                        model: settings.llmModel, key: keys?.llmKey)
                    by = .model
                } catch {
                    structureNote = "\(error)"
                }
            }
        }
        // The latest results and reports, pulled in below what was said, for the doctor to keep or cut.
        if !input.chart.investigations.isEmpty {
            let pulled = "【Rounds 近期结果】" + input.chart.investigations.joined(separator: "；")
            sections.investigations = sections.investigations.isEmpty ? pulled : sections.investigations + "\n" + pulled
        }

        let note = RoundNote()
        note.id = ids.next()
        note.patientID = patientID
        note.encounterID = stay.encounter.id!
        note.hospitalID = stay.encounter.hospitalID
        note.wardID = stay.encounter.wardID
        note.authorID = context.principal.id
        note.authorName = context.principal.displayName
        note.status = .draft
        note.sections = sections
        note.revision = 1
        note.signedVersion = 0
        note.source = input.audio == nil ? .typed : .voice
        note.structuredBy = by
        note.structureNote = structureNote
        note.transcript = transcript
        note.transcriptionError = transcriptionError
        note.findings = String(decoding: try JSONEncoder().encode(findings), as: UTF8.self)
        note.searchText = Self.searchText(sections, transcript)
        note.idempotencyKey = key
        note.createdAt = clock.now()
        note.updatedAt = note.createdAt
        let audioType = contentType, detail = "\(note.source.rawValue) \(by.rawValue)" + (transcriptionError.map { " transcription failed: \($0)" } ?? "")
        do {
            try await insert(note, audio: input.audio, audioType: audioType, retentionDays: settings.audioRetentionDays, detail: detail, context: context, on: db)
        } catch {
            // A resend that arrived while the first was being transcribed: the first's note.
            if let first = try await RoundNote.query(on: db).filter(\.$idempotencyKey == key).first(), first.patientID == patientID,
               first.authorID == context.principal.id { return first }
            throw error
        }
        return note
    }

    private func insert(_ note: RoundNote, audio: Data?, audioType: String, retentionDays: Int, detail: String, context: RequestContext,
                        on db: any Database) async throws {
        let patientID = note.patientID
        try await db.transaction { tx in
            try await note.create(on: tx)
            if let audio {
                let row = RoundNoteAudio()
                row.id = ids.next(); row.noteID = note.id!; row.patientID = patientID; row.hospitalID = note.hospitalID
                row.contentType = audioType; row.data = audio; row.size = audio.count; row.createdAt = clock.now()
                row.deleteAfter = clock.now().addingTimeInterval(TimeInterval(retentionDays) * 86_400)
                try await row.create(on: tx)
            }
            try await audit.record("round_note.create", entityType: "round_note", entityID: note.id, patientID: patientID, hospitalID: note.hospitalID,
                                   detail: detail, context: context, on: tx)
        }
    }

    /// The recogniser's prompt: the words it should expect, in the dictation's language.
    static func prompt(_ vocabulary: [String], language: String) -> String {
        guard !vocabulary.isEmpty else { return "" }
        return language.hasPrefix("zh") || language.isEmpty ? "查房记录。" + vocabulary.joined(separator: "、")
            : "Ward round note. " + vocabulary.joined(separator: ", ")
    }

    static func searchText(_ sections: NoteSections, _ transcript: String?) -> String {
        (NoteSection.allCases.map { sections[$0] } + [transcript ?? ""]).joined(separator: "\n").lowercased()
    }

    public struct Detail: Sendable {
        public var note: RoundNote
        public var versions: [RoundNoteVersion]
        public var hasAudio: Bool
        public var canWrite: Bool
        public var stay: Stay
    }

    /// One note with its signed versions (newest first). Audited as a read of the patient's record.
    public func detail(_ noteID: String, context: RequestContext, on db: any Database) async throws -> Detail {
        let (note, stay) = try await note(noteID, write: false, action: "round_note.read", context: context, on: db)
        let versions = try await RoundNoteVersion.query(on: db).filter(\.$noteID == noteID).sort(\.$version, .descending).all()
        let hasAudio = try await RoundNoteAudio.query(on: db).filter(\.$noteID == noteID).count() > 0
        try await audit.record("round_note.read", entityType: "round_note", entityID: noteID, patientID: note.patientID, hospitalID: note.hospitalID,
                               context: context, on: db)
        return Detail(note: note, versions: versions, hasAudio: hasAudio, canWrite: context.principal.canWriteRoundNotes(in: stay.ward.wardRef), stay: stay)
    }

    /// Saves the draft. `revision` is the one the editor read: a save from an older one is
    /// refused (409) with nothing overwritten. Editing a signed note starts its correction.
    public func save(_ noteID: String, sections: NoteSections, revision: Int, context: RequestContext, on db: any Database) async throws -> RoundNote {
        let clean = try sections.validated()
        // The check (and a refusal's audit row) outside the transaction, so a refusal is kept.
        _ = try await note(noteID, write: true, action: "round_note.update", context: context, on: db)
        return try await db.transaction { tx in
            try await Self.claim(noteID, revision: revision, on: tx)
            guard let note = try await RoundNote.find(noteID, on: tx) else { throw RoundsError.notFound("note", id: noteID) }
            note.sections = clean
            note.revision = revision + 1
            note.status = .draft
            // The doctor's text now: its values are read again from it, and it is hers.
            note.structuredBy = .doctor
            note.findings = String(decoding: try JSONEncoder().encode(structurer.findings(in: clean)), as: UTF8.self)
            note.searchText = Self.searchText(clean, note.transcript)
            note.updatedAt = clock.now()
            try await note.save(on: tx)
            try await audit.record("round_note.update", entityType: "round_note", entityID: noteID, patientID: note.patientID, hospitalID: note.hospitalID,
                                   detail: "revision \(note.revision)", context: context, on: tx)
            return note
        }
    }

    /// Moves the note on from `revision`, or refuses (409) when someone else already did: one
    /// conditional UPDATE, so two saves at once cannot both pass (on PostgreSQL the row stays
    /// locked until the transaction ends).
    static func claim(_ noteID: String, revision: Int, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw RoundsError.conflict("no SQL database") }
        let rows = try await sql.raw("""
            UPDATE round_notes SET revision = revision + 1 WHERE id = \(bind: noteID) AND revision = \(bind: revision) RETURNING id
            """).all()
        guard rows.isEmpty else { return }
        let current = try await RoundNote.find(noteID, on: db)
        throw RoundsError.conflict("the note was changed (now revision \(current?.revision ?? 0)); reload it before saving")
    }

    /// Signs the draft as it stands (after saving `sections` when given): a new version, kept
    /// for ever; an event for the HIS and the patient's group. An empty note is not signed.
    public func sign(_ noteID: String, sections: NoteSections?, revision: Int, context: RequestContext, on db: any Database) async throws -> RoundNoteVersion {
        let clean = try sections.map { try $0.validated() }
        let (_, stay) = try await note(noteID, write: true, action: "round_note.sign", context: context, on: db)
        return try await db.transaction { tx in
            try await Self.claim(noteID, revision: revision, on: tx)
            guard let note = try await RoundNote.find(noteID, on: tx) else { throw RoundsError.notFound("note", id: noteID) }
            if let clean {
                if clean != note.sections { note.structuredBy = .doctor }
                note.sections = clean
            }
            let text = note.sections
            guard !text.isEmpty else { throw RoundsError.validation("the note is empty: write at least one section before signing") }
            guard note.status == .draft else { throw RoundsError.conflict("version \(note.signedVersion) is already signed; edit the note to correct it") }
            let previous = try await RoundNoteVersion.query(on: tx).filter(\.$noteID == noteID).sort(\.$version, .descending).first()
            let version = RoundNoteVersion()
            version.id = ids.next()
            version.noteID = noteID
            version.version = note.signedVersion + 1
            version.sectionsJSON = String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
            version.signedByID = context.principal.id
            version.signedByName = context.principal.displayName
            version.signedAt = clock.now()
            version.documentNumber = "RN\(noteID.replacingOccurrences(of: "-", with: "").prefix(20))-\(version.version)"
            version.controlID = "RN" + version.id!.replacingOccurrences(of: "-", with: "").suffix(18)
            try await version.create(on: tx)
            note.status = .signed
            note.signedVersion = version.version
            note.revision = revision + 1
            note.signedAt = version.signedAt
            note.searchText = Self.searchText(text, note.transcript)
            note.updatedAt = version.signedAt
            try await note.save(on: tx)
            let signer = try await Staff.find(context.principal.id, on: tx)
            let payload = ClinicalEvent.DocumentSigned(
                noteID: noteID, version: version.version, documentNumber: version.documentNumber, replacesDocumentNumber: previous?.documentNumber,
                controlID: version.controlID, title: "查房记录", authorName: version.signedByName, authorHISID: signer?.hl7ID,
                signedAt: version.signedAt,
                sections: NoteSection.allCases.filter { !text[$0].isEmpty }.map { .init(code: $0.rawValue, title: $0.titleZH, text: text[$0]) })
            try await events.emit(PendingEvent(.roundNoteSigned, patientID: note.patientID, encounterID: note.encounterID,
                                               hospitalID: note.hospitalID, payload: payload), in: tx)
            try await audit.record("round_note.sign", entityType: "round_note", entityID: noteID, patientID: note.patientID, hospitalID: note.hospitalID,
                                   detail: "version \(version.version) \(stay.ward.code)", context: context, on: tx)
            return version
        }
    }

    // MARK: Lists

    /// The patient's newest signed note version (what other pages may quote: never a draft).
    public func latestSigned(patientID: String, context: RequestContext, on db: any Database) async throws -> RoundNoteVersion? {
        _ = try await stay(patientID: patientID, encounterID: nil, write: false, action: "round_note.read", context: context, on: db)
        let ids = try await RoundNote.query(on: db).filter(\.$patientID == patientID).filter(\.$signedVersion > 0).all().compactMap(\.id)
        guard !ids.isEmpty else { return nil }
        return try await RoundNoteVersion.query(on: db).filter(\.$noteID ~~ ids).sort(\.$signedAt, .descending).first()
    }

    /// A patient's notes, newest first; `query` searches their text (Chinese included).
    public func notes(patientID: String, query: String?, context: RequestContext, on db: any Database) async throws -> (Stay, [RoundNote]) {
        let stay = try await stay(patientID: patientID, encounterID: nil, write: false, action: "round_note.list", context: context, on: db)
        let q = RoundNote.query(on: db).filter(\.$patientID == patientID).sort(\.$createdAt, .descending)
        if let words = query?.trimmingCharacters(in: .whitespaces).lowercased(), !words.isEmpty {
            for word in words.split(separator: " ").prefix(5) { q.filter(\.$searchText, .contains(inverse: false, .anywhere), String(word)) }
        }
        let notes = try await q.limit(200).all()
        try await audit.record("round_note.list", entityType: "patient", entityID: patientID, patientID: patientID, hospitalID: stay.patient.hospitalID,
                               detail: query.map { "search \($0)" }, context: context, on: db)
        return (stay, notes)
    }

    /// A ward's notes of one day (hospital time) for the head nurse's round.
    public func wardNotes(wardID: String, day: Date, timeZone: TimeZone, context: RequestContext, on db: any Database) async throws -> (Department, [RoundNote]) {
        guard let ward = try await Department.find(wardID, on: db) else { throw RoundsError.notFound("ward", id: wardID) }
        guard context.principal.canViewPatients(in: ward.wardRef) else {
            try await audit.record("round_note.ward", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.startOfDay(for: day), end = start.addingTimeInterval(86_400)
        let notes = try await RoundNote.query(on: db).filter(\.$wardID == wardID).filter(\.$updatedAt >= start).filter(\.$updatedAt < end)
            .sort(\.$updatedAt, .descending).all()
        try await audit.record("round_note.ward", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                               detail: "\(notes.count) notes", context: context, on: db)
        return (ward, notes)
    }

    /// The recording of a note, for its readers (audited); nil once deleted.
    public func audio(noteID: String, context: RequestContext, on db: any Database) async throws -> RoundNoteAudio? {
        let (note, _) = try await note(noteID, write: false, action: "round_note.audio", context: context, on: db)
        let audio = try await RoundNoteAudio.query(on: db).filter(\.$noteID == noteID).first()
        try await audit.record("round_note.audio", entityType: "round_note", entityID: noteID, patientID: note.patientID, hospitalID: note.hospitalID,
                               outcome: audio == nil ? .failure : .success, detail: audio == nil ? "deleted" : nil, context: context, on: db)
        return audio
    }

    /// Deletes the recordings whose time is up, each deletion audited. Returns how many.
    @discardableResult
    public func deleteExpiredAudio(on db: any Database) async throws -> Int {
        let due = try await RoundNoteAudio.query(on: db).filter(\.$deleteAfter <= clock.now()).field(\.$id).field(\.$noteID).field(\.$patientID)
            .field(\.$hospitalID).limit(100).all()
        for audio in due {
            try await db.transaction { tx in
                try await RoundNoteAudio.query(on: tx).filter(\.$id == audio.id!).delete()
                try await audit.record("round_note.audio_deleted", entityType: "round_note", entityID: audio.noteID, patientID: audio.patientID,
                                       hospitalID: audio.hospitalID, detail: "retention period over", actorKind: "system", actorID: nil,
                                       actorName: "Rounds", clientAddress: nil, on: tx)
            }
        }
        return due.count
    }
}
