import FluentKit
import SQLKit

struct CreateChat: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ChatGroup.schema)
            .field("id", .string, .identifier(auto: false))
            .field("kind", .string, .required)
            .field("hospital_id", .string, .required)
            .field("ward_id", .string)
            .field("patient_id", .string)
            .field("encounter_id", .string)
            .field("name", .string, .required)
            .field("status", .string, .required)
            .field("previous_group_id", .string)
            .field("created_at", .datetime, .required)
            .field("archived_at", .datetime)
            .unique(on: "encounter_id")
            .create()
        try await database.schema(ChatMember.schema)
            .field("id", .string, .identifier(auto: false))
            .field("group_id", .string, .required)
            .field("staff_id", .string, .required)
            .field("reason", .string, .required)
            .field("added_at", .datetime, .required)
            .field("last_read_message_id", .string)
            .unique(on: "group_id", "staff_id")
            .create()
        try await database.schema(ChatMessage.schema)
            .field("id", .string, .identifier(auto: false))
            .field("group_id", .string, .required)
            .field("kind", .string, .required)
            .field("sender_id", .string)
            .field("sender_name", .string, .required)
            .field("text", .string, .required)
            .field("card", .string)
            .field("reply_to_id", .string)
            .field("source_event_id", .string)
            .field("created_at", .datetime, .required)
            .unique(on: "source_event_id")
            .create()
        try await database.schema(ChatReceipt.schema)
            .field("id", .string, .identifier(auto: false))
            .field("message_id", .string, .required)
            .field("group_id", .string, .required)
            .field("staff_id", .string, .required)
            .field("read_at", .datetime, .required)
            .unique(on: "message_id", "staff_id")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "chat_messages_group").on(ChatMessage.schema).column("group_id").column("id").run()
        try await sql.create(index: "chat_members_staff").on(ChatMember.schema).column("staff_id").run()
        try await sql.create(index: "chat_groups_patient").on(ChatGroup.schema).column("patient_id").run()
    }

    func revert(on database: any Database) async throws {
        for schema in [ChatReceipt.schema, ChatMessage.schema, ChatMember.schema, ChatGroup.schema] {
            try await database.schema(schema).delete()
        }
    }
}

/// The chat module's migrations, run after the store's.
public enum ChatMigrations {
    public static var all: [any Migration] { [CreateChat(), CreateChatBots(), CreateChatEdits(), CreateWardGroupRules(), CreateChatBotMembers()] }
}

struct CreateChatBots: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ChatMessage.schema).field("bot_id", .string).update()
        try await database.schema(ChatMessage.schema).field("updated_at", .datetime).update()
        try await database.schema(ChatBot.schema)
            .field("id", .string, .identifier(auto: false))
            .field("callback_url", .string)
            .field("signing_secret", .string, .required)
            .field("updated_at", .datetime, .required)
            .create()
        try await database.schema(ChatAction.schema)
            .field("id", .string, .identifier(auto: false))
            .field("message_id", .string, .required)
            .field("group_id", .string, .required)
            .field("action", .string, .required)
            .field("staff_id", .string, .required)
            .field("staff_name", .string, .required)
            .field("client_address", .string)
            .field("at", .datetime, .required)
            .unique(on: "message_id", "action", "staff_id")
            .create()
        try await database.schema(BotCallback.schema)
            .field("id", .string, .identifier(auto: false))
            .field("bot_id", .string, .required)
            .field("url", .string, .required)
            .field("body", .string, .required)
            .field("status", .string, .required)
            .field("attempts", .int, .required)
            .field("next_attempt_at", .datetime, .required)
            .field("last_error", .string)
            .field("created_at", .datetime, .required)
            .field("sent_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        for schema in [BotCallback.schema, ChatAction.schema, ChatBot.schema] { try await database.schema(schema).delete() }
        try await database.schema(ChatMessage.schema).deleteField("updated_at").update()
        try await database.schema(ChatMessage.schema).deleteField("bot_id").update()
    }
}

struct CreateChatEdits: AsyncMigration {
    func prepare(on database: any Database) async throws {
        for field in ["edited_at", "recalled_at"] {
            try await database.schema(ChatMessage.schema).field(.string(field), .datetime).update()
        }
        try await database.schema(ChatMessage.schema).field("mentions", .string).update()
        try await database.schema(ChatMessage.schema).field("attachment_id", .string).update()
        try await database.schema(ChatMessageEdit.schema)
            .field("id", .string, .identifier(auto: false))
            .field("message_id", .string, .required)
            .field("previous_text", .string, .required)
            .field("change", .string, .required)
            .field("at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(ChatMessageEdit.schema).delete()
        for field in ["attachment_id", "mentions", "recalled_at", "edited_at"] {
            try await database.schema(ChatMessage.schema).deleteField(.string(field)).update()
        }
    }
}

struct CreateChatBotMembers: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ChatBotMember.schema)
            .field("id", .string, .identifier(auto: false))
            .field("group_id", .string, .required)
            .field("bot_id", .string, .required)
            .field("added_by", .string, .required)
            .field("added_at", .datetime, .required)
            .unique(on: "group_id", "bot_id")
            .create()
        try await database.schema(WardGroupRule.schema).field("bots", .string, .required, .sql(.default(""))).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(WardGroupRule.schema).deleteField("bots").update()
        try await database.schema(ChatBotMember.schema).delete()
    }
}
