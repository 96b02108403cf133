import FluentKit
import SQLKit

struct CreateRoundNotes: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(RoundNote.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string, .required).field("hospital_id", .string, .required)
            .field("ward_id", .string, .required).field("author_id", .string, .required).field("author_name", .string, .required)
            .field("status", .string, .required).field("draft", .string, .required).field("revision", .int, .required)
            .field("signed_version", .int, .required).field("source", .string, .required).field("structured_by", .string, .required)
            .field("structure_note", .string).field("transcript", .string).field("transcription_error", .string)
            .field("findings", .string, .required).field("search_text", .string, .required)
            .field("idempotency_key", .string, .required)
            .field("created_at", .datetime, .required).field("updated_at", .datetime, .required).field("signed_at", .datetime)
            .unique(on: "idempotency_key").create()
        try await database.schema(RoundNoteVersion.schema)
            .field("id", .string, .identifier(auto: false))
            .field("note_id", .string, .required).field("version", .int, .required).field("sections", .string, .required)
            .field("signed_by_id", .string, .required).field("signed_by_name", .string, .required).field("signed_at", .datetime, .required)
            .field("document_number", .string, .required).field("control_id", .string, .required)
            .unique(on: "note_id", "version").create()
        try await database.schema(RoundNoteAudio.schema)
            .field("id", .string, .identifier(auto: false))
            .field("note_id", .string, .required).field("patient_id", .string, .required).field("hospital_id", .string, .required)
            .field("content_type", .string, .required).field("data", .data, .required).field("size", .int, .required)
            .field("created_at", .datetime, .required).field("delete_after", .datetime, .required).create()
        try await database.schema(RoundNoteSettingsRecord.schema)
            .field("id", .string, .identifier(auto: false))
            .field("hospital_id", .string, .required).field("asr_url", .string).field("asr_model", .string, .required)
            .field("asr_language", .string, .required).field("asr_key", .string).field("llm_url", .string)
            .field("llm_model", .string, .required).field("llm_key", .string).field("timeout_seconds", .int, .required)
            .field("audio_retention_days", .int, .required).field("vocabulary", .string, .required)
            .field("updated_at", .datetime, .required).field("updated_by", .string, .required)
            .unique(on: "hospital_id").create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "round_notes_patient").on(RoundNote.schema).column("patient_id").column("created_at").run()
            try await sql.create(index: "round_notes_ward_day").on(RoundNote.schema).column("ward_id").column("updated_at").run()
            try await sql.create(index: "round_note_audio_due").on(RoundNoteAudio.schema).column("delete_after").run()
        }
    }

    func revert(on database: any Database) async throws {
        for schema in [RoundNoteSettingsRecord.schema, RoundNoteAudio.schema, RoundNoteVersion.schema, RoundNote.schema] {
            try await database.schema(schema).delete()
        }
    }
}

public enum RoundNotesMigrations {
    public static var all: [any Migration] { [CreateRoundNotes()] }
}
