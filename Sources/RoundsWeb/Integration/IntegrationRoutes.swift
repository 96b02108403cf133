import Foundation
import RoundsCore
import RoundsHL7
import RoundsIntegration
import RoundsDirectory
import RoundsStore
import Vapor

/// `/api/v1/hl7`: the message store, HL7 over HTTP for systems without MLLP, and the
/// outbound queue.
struct IntegrationRoutes {
    let api: APIBuilder
    static let filterQuery = ["type", "status", "sender", "mrn", "direction", "from", "to", "limit", "before"]

    func register() {
        api.on(.GET, "hl7", "messages", summary: "Find stored HL7 messages (newest first)", tag: "hl7",
               returns: HL7MessageDTO.self, array: true, query: Self.filterQuery) { req in
            try await req.rounds.messages.search(Self.filter(req), context: req.context(), on: req.db).map(HL7MessageDTO.init)
        }
        api.on(.GET, "hl7", "messages", ":messageId", summary: "One message: raw text and the parsed tree with field names", tag: "hl7",
               returns: HL7MessageDetailDTO.self) { req in
            let record = try await req.rounds.messages.message(id: req.parameters.require("messageId"), context: req.context(), on: req.db)
            let tree = MessageStore.tree(of: record)
            return HL7MessageDetailDTO(message: HL7MessageDTO(record), text: tree.text, segments: tree.segments, parseError: tree.error)
        }
        api.on(.GET, "hl7", "messages", ":messageId", "raw", summary: "The message bytes exactly as received", tag: "hl7",
               contentType: "application/hl7-v2") { req in
            let record = try await req.rounds.messages.message(id: req.parameters.require("messageId"), context: req.context(), on: req.db)
            let response = Response(status: .ok, body: .init(data: record.raw))
            response.headers.replaceOrAdd(name: .contentType, value: "application/hl7-v2")
            response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"\(record.controlID ?? record.id ?? "message").hl7\"")
            return response
        }
        api.on(.POST, "hl7", "messages", ":messageId", "replay", summary: "Process a stored message again", tag: "hl7",
               returns: ReceiptDTO.self) { req in
            let receipt = try await req.rounds.messages.replay(id: req.parameters.require("messageId"), pipeline: req.rounds.hl7,
                                                               context: req.context(), on: req.db)
            return ReceiptDTO(receipt)
        }
        api.on(.GET, "hl7", "export", summary: "Export matching messages as one HL7 file", tag: "hl7", query: Self.filterQuery,
               contentType: "application/hl7-v2") { req in
            var filter = try Self.filter(req)
            filter.limit = min(filter.limit == 100 ? 5000 : filter.limit, 5000)
            let records = try await req.rounds.messages.search(filter, context: req.context(), on: req.db)
            let response = Response(status: .ok, body: .init(data: MessageStore.export(records.reversed())))
            response.headers.replaceOrAdd(name: .contentType, value: "application/hl7-v2")
            response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"rounds-messages.hl7\"")
            return response
        }
        api.on(.POST, "hl7", "inbound", summary: "Deliver one HL7 message over HTTP (body: the message); the answer is its ACK", tag: "hl7",
               contentType: "application/hl7-v2", rawBody: ["application/hl7-v2"], maxBody: "10mb") { req in
            let context = try req.context()
            guard context.principal.hasScope(.integration) || context.principal.canUseIntegration else {
                throw RoundsError.insufficientScope(.integration)
            }
            guard let body = req.body.data, body.readableBytes > 0 else { throw RoundsError.badRequest("the body must be an HL7 message") }
            guard let receipt = await req.rounds.hl7.receive(Array(buffer: body), peer: req.clientAddress,
                                                             submitter: HL7Submitter(context.principal), on: req.db) else {
                throw RoundsError(code: "storage_unavailable", status: 503, zh: "暂时无法保存消息，请重发", en: "The message could not be stored; resend it")
            }
            let status: HTTPStatus = switch receipt.outcome {
            case .accepted, .duplicate: .ok
            case .held: .accepted  // stored, applied when its patient is admitted (or IT releases it)
            case .error: .unprocessableEntity
            case .rejected: .badRequest
            }
            let response = Response(status: status, body: .init(data: Data(receipt.acknowledgement)))
            response.headers.replaceOrAdd(name: .contentType, value: "application/hl7-v2")
            return response
        }
        registerChannels()
        api.on(.GET, "hl7", "outbound", summary: "Messages queued for sending", tag: "hl7", returns: OutboundDTO.self, array: true) { req in
            try await req.rounds.messages.outbound(context: req.context(), on: req.db).map(OutboundDTO.init)
        }
        api.on(.POST, "hl7", "outbound", summary: "Queue a message for sending over MLLP (retried until acknowledged)", tag: "hl7",
               body: EnqueueOutboundBody.self, returns: OutboundDTO.self, status: 201) { req in
            let context = try req.context()
            try await req.rounds.messages.requireOutboundAccess(context, action: "hl7.outbound.enqueue", on: req.db)
            let body = try req.content.decode(EnqueueOutboundBody.self)
            guard (1...65535).contains(body.port), !body.host.isEmpty else { throw RoundsError.validation("host and port (1–65535) are required") }
            let allowed = req.rounds.configuration.allowedDestinations
            guard allowed.permits(host: body.host, port: body.port) else {
                try await req.rounds.audit.record("hl7.outbound.enqueue", entityType: "hl7_outbound", entityID: nil, outcome: .denied,
                                                  detail: "\(body.host):\(body.port) not allowed", context: context, on: req.db)
                throw RoundsError.validation("host: \(body.host):\(body.port) is not an allowed destination; the installation's allow-list "
                                             + "(--allow-destination, ROUNDS_ALLOWED_DESTINATIONS) names where messages may go: \(allowed)")
            }
            let message: HL7Message
            do { message = try HL7Message.parse(body.message) } catch let error as HL7Error {
                throw RoundsError.validation("message: \(error.description)")
            }
            let row = try await req.rounds.outbound.enqueue(message, host: body.host, port: body.port, on: req.db)
            try await req.rounds.audit.record("hl7.outbound.enqueue", entityType: "hl7_outbound", entityID: row.id,
                                              detail: "\(row.messageType) → \(body.host):\(body.port)", context: context, on: req.db)
            return try await OutboundDTO(row).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "hl7", "outbound", "route", summary: "Queue a message for every outbound channel that carries its type", tag: "hl7",
               body: RouteOutboundBody.self, returns: OutboundDTO.self, array: true, status: 201) { req in
            let context = try req.context()
            try await req.rounds.messages.requireOutboundAccess(context, action: "hl7.outbound.route", on: req.db)
            let body = try req.content.decode(RouteOutboundBody.self)
            let message: HL7Message
            do { message = try HL7Message.parse(body.message) } catch let error as HL7Error {
                throw RoundsError.validation("message: \(error.description)")
            }
            let rows = try await req.rounds.outbound.route(message, hospitalID: body.hospitalId, on: req.db)
            guard !rows.isEmpty else { throw RoundsError.validation("no enabled outbound channel carries \(message.messageType)^\(message.triggerEvent)") }
            try await req.rounds.audit.record("hl7.outbound.route", entityType: "hl7_outbound", entityID: rows.first?.id,
                                              detail: rows.map { "\($0.messageType) → \($0.host):\($0.port)" }.joined(separator: ", "),
                                              context: context, on: req.db)
            return try await rows.map(OutboundDTO.init).encodeResponse(status: .created, for: req)
        }
    }

    static func filter(_ req: Request) throws -> MessageStore.Filter {
        func text(_ key: String) -> String? {
            guard let v = req.query[String.self, at: key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let audit = try AuditFilterQuery.parse(req)  // same date and limit rules as the audit log
        return MessageStore.Filter(messageType: text("type"), status: text("status"), sender: text("sender"), mrn: text("mrn"),
                                   direction: text("direction"), from: audit.from, to: audit.to, limit: audit.limit, beforeID: text("before"))
    }

    /// Channels (one per sending system), trying a message against one, and the mapping queue.
    func registerChannels() {
        api.on(.GET, "hl7", "channels", summary: "The sending systems' channels", tag: "hl7", returns: ChannelDTO.self, array: true) { req in
            try await req.rounds.channels.list(context: req.context(), on: req.db).map(ChannelDTO.init)
        }
        api.on(.POST, "hl7", "channels", summary: "Describe a sending system (matched on MSH-3/MSH-4)", tag: "hl7",
               body: ChannelBody.self, returns: ChannelDTO.self, status: 201) { req in
            let body = try req.content.decode(ChannelBody.self)
            return try await ChannelDTO(try await req.rounds.channels.create(body.draft, context: req.context(), on: req.db))
                .encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "hl7", "channels", ":channelId", summary: "One channel", tag: "hl7", returns: ChannelDTO.self) { req in
            ChannelDTO(try await req.rounds.channels.channel(id: req.parameters.require("channelId"), context: req.context(), on: req.db))
        }
        api.on(.PUT, "hl7", "channels", ":channelId", summary: "Change a channel (a new version; a stale version is a 409)", tag: "hl7",
               body: ChannelBody.self, returns: ChannelDTO.self) { req in
            let body = try req.content.decode(ChannelBody.self)
            return ChannelDTO(try await req.rounds.channels.update(id: req.parameters.require("channelId"), body.draft,
                                                                 context: req.context(), on: req.db))
        }
        api.on(.GET, "hl7", "channels", ":channelId", "versions", summary: "Every saved version of a channel, newest first", tag: "hl7",
               returns: ChannelVersionDTO.self, array: true) { req in
            try await req.rounds.channels.versions(id: req.parameters.require("channelId"), context: req.context(), on: req.db)
                .map(ChannelVersionDTO.init)
        }
        api.on(.POST, "hl7", "channels", "test", summary: "What a message would do through a channel; nothing is written", tag: "hl7",
               body: ChannelTestBody.self, returns: DryRunDTO.self) { req in
            let body = try req.content.decode(ChannelTestBody.self)
            let context = try req.context()
            return DryRunDTO(try await Self.test(body, context: context, req: req))
        }
        api.on(.GET, "hl7", "outbound-channels", summary: "Destinations Rounds sends HL7 to, with their types, transforms and retry policy",
               tag: "hl7", returns: OutboundChannelDTO.self, array: true) { req in
            try await req.rounds.channels.outboundChannels(context: req.context(), on: req.db).map(OutboundChannelDTO.init)
        }
        api.on(.POST, "hl7", "outbound-channels", summary: "Add a destination (its host must be on the installation's allow-list)", tag: "hl7",
               body: OutboundChannelBody.self, returns: OutboundChannelDTO.self, status: 201) { req in
            let body = try req.content.decode(OutboundChannelBody.self)
            return try await OutboundChannelDTO(try await req.rounds.channels.saveOutbound(
                id: nil, body.draft, allowed: req.rounds.configuration.allowedDestinations, context: req.context(), on: req.db))
                .encodeResponse(status: .created, for: req)
        }
        api.on(.PUT, "hl7", "outbound-channels", ":channelId", summary: "Change a destination (a stale version is a 409)", tag: "hl7",
               body: OutboundChannelBody.self, returns: OutboundChannelDTO.self) { req in
            let body = try req.content.decode(OutboundChannelBody.self)
            return OutboundChannelDTO(try await req.rounds.channels.saveOutbound(
                id: req.parameters.require("channelId"), body.draft, allowed: req.rounds.configuration.allowedDestinations,
                context: req.context(), on: req.db))
        }
        api.on(.GET, "hl7", "mapping-queue", summary: "Held messages grouped by what they wait for (a ward code, a staff id, a patient)",
               tag: "hl7", returns: WaitingDTO.self, array: true) { req in
            try await req.rounds.channels.queue(context: req.context(), on: req.db).map(WaitingDTO.init)
        }
        api.on(.POST, "hl7", "mapping-queue", "map-ward", summary: "Map a sender's ward code to a ward, then apply what waited for it, in order",
               tag: "hl7", body: MapWardBody.self, returns: ReleaseDTO.self) { req in
            let body = try req.content.decode(MapWardBody.self)
            return ReleaseDTO(try await req.rounds.channels.mapWard(key: body.key, wardID: body.wardId, context: req.context(), on: req.db))
        }
        api.on(.POST, "hl7", "mapping-queue", "map-staff", summary: "Give a member of staff the HIS id the sender used, then apply what waited for it",
               tag: "hl7", body: MapStaffBody.self, returns: ReleaseDTO.self) { req in
            let body = try req.content.decode(MapStaffBody.self)
            return ReleaseDTO(try await req.rounds.channels.mapStaff(key: body.key, staffID: body.staffId, context: req.context(), on: req.db))
        }
        api.on(.POST, "hl7", "mapping-queue", "release", summary: "Apply a group's waiting messages again, in order", tag: "hl7",
               body: ReleaseBody.self, returns: ReleaseDTO.self) { req in
            let body = try req.content.decode(ReleaseBody.self)
            return ReleaseDTO(try await req.rounds.channels.release(key: body.key, context: req.context(), on: req.db))
        }
    }

    /// The message of a test: pasted text, or a stored message (read as the store reads it: audited, scoped).
    static func test(_ body: ChannelTestBody, context: RequestContext, req: Request) async throws -> InboundPipeline.DryRun {
        let bytes: [UInt8]
        if let id = body.messageId, !id.isEmpty {
            bytes = Array(try await req.rounds.messages.message(id: id, context: context, on: req.db).raw)
        } else if let text = body.message, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            // Pasted text: newlines as typed in a browser become HL7's segment separator.
            bytes = Array(text.replacingOccurrences(of: "\r\n", with: "\r").replacingOccurrences(of: "\n", with: "\r").utf8)
        } else {
            throw RoundsError.validation("give the message to try (its text or a stored message's id)")
        }
        guard bytes.count <= 10 * 1024 * 1024 else { throw RoundsError.validation("the message is larger than 10 MiB") }
        return try await req.rounds.channels.test(message: bytes, draft: body.channel?.draft, channelID: body.channelId,
                                                  context: context, on: req.db)
    }
}
