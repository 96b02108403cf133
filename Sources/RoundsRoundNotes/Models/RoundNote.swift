import FluentKit
import Foundation
import RoundsCore

/// Where a note's draft stands.
public enum RoundNoteStatus: String, Codable, Sendable {
    /// Being written or checked; nothing of it has left Rounds.
    case draft
    /// Its newest version is signed (and queued for the HIS).
    case signed
}

/// How a draft's text came to be.
public enum NoteSource: String, Codable, Sendable {
    case voice, typed
}

/// Who filled the sections from the transcript.
public enum StructuredBy: String, Codable, Sendable {
    /// The hospital's language model (OpenAI-style chat completions, answer checked here).
    case model
    /// Rounds' own rules (no model configured, or its answer was not usable).
    case rules
    /// The doctor typed the sections.
    case doctor
}

/// A ward-round note (查房记录) of one patient's stay: the working draft, and the signed
/// versions (`RoundNoteVersion`), each kept when a later correction is signed.
public final class RoundNote: Model, @unchecked Sendable {
    public static let schema = "round_notes"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "encounter_id") public var encounterID: String
    @Field(key: "hospital_id") public var hospitalID: String
    @Field(key: "ward_id") public var wardID: String
    @Field(key: "author_id") public var authorID: String
    @Field(key: "author_name") public var authorName: String
    @Field(key: "status") public var status: RoundNoteStatus
    /// The draft's sections as JSON (`NoteSections`); after signing, the signed text until a correction starts.
    @Field(key: "draft") public var draft: String
    /// Counts saves of the draft: a save carries the revision it read (a stale one is a 409).
    @Field(key: "revision") public var revision: Int
    /// The newest signed version's number (0: never signed).
    @Field(key: "signed_version") public var signedVersion: Int
    @Field(key: "source") public var source: NoteSource
    @Field(key: "structured_by") public var structuredBy: StructuredBy
    /// Why the rules filled the note when a model is configured ("the model timed out").
    @OptionalField(key: "structure_note") public var structureNote: String?
    @OptionalField(key: "transcript") public var transcript: String?
    /// Why there is no transcript ("the recogniser answered HTTP 500"): the doctor types instead.
    @OptionalField(key: "transcription_error") public var transcriptionError: String?
    /// The values the structurer recognised, as JSON (`[Finding]`).
    @Field(key: "findings") public var findings: String
    /// Plain text of every section and the transcript, for searching a patient's notes.
    @Field(key: "search_text") public var searchText: String
    /// The client's key for the recording or typed text: a resend after a dropped network returns this note.
    @Field(key: "idempotency_key") public var idempotencyKey: String
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "updated_at") public var updatedAt: Date
    @OptionalField(key: "signed_at") public var signedAt: Date?
    public init() {}

    public var sections: NoteSections {
        get { (try? JSONDecoder().decode(NoteSections.self, from: Data(draft.utf8))) ?? NoteSections() }
        set { draft = String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("{}".utf8), as: UTF8.self) }
    }

    public var decodedFindings: [Finding] {
        (try? JSONDecoder().decode([Finding].self, from: Data(findings.utf8))) ?? []
    }
}

/// A signed version of a note, never changed afterwards: what was signed, by whom, when, and
/// the message that carried it to the HIS.
public final class RoundNoteVersion: Model, @unchecked Sendable {
    public static let schema = "round_note_versions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "note_id") public var noteID: String
    @Field(key: "version") public var version: Int
    @Field(key: "sections") public var sectionsJSON: String
    @Field(key: "signed_by_id") public var signedByID: String
    @Field(key: "signed_by_name") public var signedByName: String
    @Field(key: "signed_at") public var signedAt: Date
    /// TXA-12 as the HIS knows this version; MSH-10 of the message that carried it.
    @Field(key: "document_number") public var documentNumber: String
    @Field(key: "control_id") public var controlID: String
    public init() {}

    public var sections: NoteSections {
        (try? JSONDecoder().decode(NoteSections.self, from: Data(sectionsJSON.utf8))) ?? NoteSections()
    }
}

/// A recording, kept for the hospital's retention period and then deleted (audited).
public final class RoundNoteAudio: Model, @unchecked Sendable {
    public static let schema = "round_note_audio"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "note_id") public var noteID: String
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "hospital_id") public var hospitalID: String
    @Field(key: "content_type") public var contentType: String
    @Field(key: "data") public var data: Data
    @Field(key: "size") public var size: Int
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "delete_after") public var deleteAfter: Date
    public init() {}
}

/// A hospital's speech recogniser and language model (both OpenAI-style HTTP services the
/// hospital runs), and how long recordings are kept. Keys are secrets: stored, never shown or logged.
public final class RoundNoteSettingsRecord: Model, @unchecked Sendable {
    public static let schema = "round_note_settings"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "hospital_id") public var hospitalID: String
    @OptionalField(key: "asr_url") public var asrURL: String?
    @Field(key: "asr_model") public var asrModel: String
    @Field(key: "asr_language") public var asrLanguage: String
    @OptionalField(key: "asr_key") public var asrKey: String?
    @OptionalField(key: "llm_url") public var llmURL: String?
    @Field(key: "llm_model") public var llmModel: String
    @OptionalField(key: "llm_key") public var llmKey: String?
    @Field(key: "timeout_seconds") public var timeoutSeconds: Int
    @Field(key: "audio_retention_days") public var audioRetentionDays: Int
    /// Words the recogniser should expect on every ward (drug names), one per line.
    @Field(key: "vocabulary") public var vocabulary: String
    @Field(key: "updated_at") public var updatedAt: Date
    @Field(key: "updated_by") public var updatedBy: String
    public init() {}
}
