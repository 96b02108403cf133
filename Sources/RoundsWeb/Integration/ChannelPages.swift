import Fluent
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsIntegration
import RoundsStore
import Vapor

/// Channels and the mapping queue for IT: describe a sending system without code, try a message
/// against it, map what the waiting messages need and let them through.
struct ChannelPages {
    func register(_ routes: any RoutesBuilder) {
        routes.get("integration", "channels", use: list)
        routes.post("integration", "channels", use: create)
        routes.get("integration", "channels", ":id", use: edit)
        routes.post("integration", "channels", ":id", use: update)
        routes.post("integration", "channels", ":id", "test", use: test)
        routes.get("integration", "outbound-channels", use: outboundList)
        routes.post("integration", "outbound-channels", use: outboundSave)
        routes.get("integration", "outbound-channels", ":id", use: outboundEdit)
        routes.post("integration", "outbound-channels", ":id", use: outboundSave)
        routes.get("integration", "mapping", use: queue)
        routes.post("integration", "mapping", "ward", use: mapWard)
        routes.post("integration", "mapping", "staff", use: mapStaff)
        routes.post("integration", "mapping", "release", use: release)
    }

    struct Option: Encodable { var value: String; var label: String; var selected: Bool }
    struct ChannelRow: Encodable {
        var id: String; var name: String; var match: String; var hospital: String; var enabled: Bool; var version: Int
        var updated: String; var wardCodes: Int
    }
    struct ListData: Encodable { var channels: [ChannelRow]; var hospitals: [Option]; var canCreate: Bool; var outbound: Bool }

    struct Form: Content {
        var name: String
        var application: String?
        var facility: String?
        var hospitalId: String?
        var enabled: String?
        var wardComponent: Int?
        var bedComponents: String?
        var wardCodes: String?
        var attendingSource: String?
        var attendingRoleCodes: String?
        var nurseRoleCodes: String?
        var criticalFlags: String?
        var messageTypes: String?
        var unknownWard: String?
        var unknownStaff: String?
        var unknownPatient: String?
        var listenPort: String?
        var version: Int?

        static func list(_ text: String?) -> [String] {
            (text ?? "").split(whereSeparator: { $0 == "," || $0 == "，" || $0 == " " || $0 == "\n" || $0 == "、" })
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        }

        /// "5N=LUNG" (or "5N → LUNG", "5N LUNG") per line.
        static func codes(_ text: String?) throws -> [String: String] {
            let pairs = try Self.pairs(text, arrow: true, emptyValue: false) { "ward code line '\($0)': write it as SENDER=ROUNDS, e.g. 5N=LUNG" }
            return Dictionary(pairs, uniquingKeysWith: { _, last in last })
        }

        /// "LEFT=right" per line, in the order written (blank lines skipped); `arrow` reads "→" as
        /// "="; `emptyValue` allows "LEFT=" (a value to clear).
        static func pairs(_ text: String?, arrow: Bool, emptyValue: Bool, problem: (String) -> String) throws -> [(String, String)] {
            try (text ?? "").split(whereSeparator: \.isNewline).compactMap { line in
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { return nil }
                var normalised = trimmed.replacingOccurrences(of: "＝", with: "=")
                if arrow { normalised = normalised.replacingOccurrences(of: "→", with: "=") }
                let parts = normalised.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty, emptyValue || !parts[1].isEmpty else { throw RoundsError.validation(problem(trimmed)) }
                return (parts[0], parts[1])
            }
        }

        func draft() throws -> ChannelService.Draft {
            var s = ChannelSettings()
            if let v = wardComponent { s.wardComponent = v }
            let beds = Self.list(bedComponents)
            if !beds.isEmpty {
                s.bedComponents = try beds.map { guard let n = Int($0) else { throw RoundsError.validation("bed components are numbers, e.g. 2, 3") }; return n }
            }
            s.wardCodes = try Self.codes(wardCodes)
            if let v = attendingSource { s.attendingSource = ChannelSettings.AttendingSource(rawValue: v) ?? s.attendingSource }
            if attendingRoleCodes != nil { s.attendingRoleCodes = Self.list(attendingRoleCodes) }
            if nurseRoleCodes != nil { s.nurseRoleCodes = Self.list(nurseRoleCodes) }
            if criticalFlags != nil { s.criticalFlags = Self.list(criticalFlags) }
            s.messageTypes = Self.list(messageTypes)
            if let v = unknownWard { s.unknownWard = ChannelSettings.Unknown(rawValue: v) ?? s.unknownWard }
            if let v = unknownStaff { s.unknownStaff = ChannelSettings.Unknown(rawValue: v) ?? s.unknownStaff }
            if let v = unknownPatient { s.unknownPatient = ChannelSettings.Unknown(rawValue: v) ?? s.unknownPatient }
            // Empty: the channel has no port of its own; not a number: refused by the settings' check.
            if let text = listenPort?.trimmingCharacters(in: .whitespaces) { s.listenPort = text.isEmpty ? nil : (Int(text) ?? 0) }
            return .init(name: name, application: application ?? "", facility: facility ?? "",
                         hospitalID: (hospitalId ?? "").isEmpty ? nil : hospitalId, enabled: enabled != nil, settings: s, version: version)
        }
    }

    func hospitals(_ req: Request, selected: String?) async throws -> [Option] {
        let t = req.rounds.catalogue.table(req.locale)
        let scope = try req.context().principal.integrationHospitalIDs
        var options = try await Hospital.query(on: req.db).sort(\.$code).all()
            .filter { scope?.contains($0.id!) ?? true }
            .map { Option(value: $0.id!, label: $0.name, selected: $0.id == selected) }
        if scope == nil { options.insert(Option(value: "", label: t["channel_hospital_by_facility"] ?? "", selected: selected == nil), at: 0) }
        return options
    }

    @Sendable func list(req: Request) async throws -> Response {
        let context = try req.context()
        let channels = try await req.rounds.channels.list(context: context, on: req.db)
        let names = Dictionary(uniqueKeysWithValues: try await Hospital.query(on: req.db).all().map { ($0.id!, $0.name) })
        let t = req.rounds.catalogue.table(req.locale)
        let rows = channels.map { c in
            ChannelRow(id: c.id!, name: c.name, match: [c.application.isEmpty ? "*" : c.application, c.facility.isEmpty ? "*" : c.facility].joined(separator: "@"),
                       hospital: c.hospitalID.flatMap { names[$0] } ?? (t["channel_hospital_by_facility"] ?? ""), enabled: c.enabled,
                       version: c.version, updated: Formatting.dateTime(c.updatedAt), wardCodes: c.settings.wardCodes.count)
        }
        return try await req.page("integration_channels", title: "channels_title",
                                  data: ListData(channels: rows, hospitals: try await hospitals(req, selected: nil), canCreate: context.principal.canUseIntegration,
                                                 outbound: context.principal.managesOutboundHL7),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func create(req: Request) async throws -> Response {
        do {
            let form = try req.content.decode(Form.self)
            var draft = try form.draft()
            draft.enabled = true
            let channel = try await req.rounds.channels.create(draft, context: req.context(), on: req.db)
            return req.redirect(to: "/integration/channels/\(channel.id!)?ok=" + Self.encode(req.rounds.catalogue.table(req.locale)["channel_saved"] ?? "saved"))
        } catch let error as RoundsError {
            return req.redirect(to: "/integration/channels?error=" + Self.encode(Self.text(error, req)))
        }
    }

    struct EditData: Encodable {
        var id: String; var name: String; var application: String; var facility: String; var enabled: Bool; var version: Int
        var hospitals: [Option]; var wardComponents: [Option]; var bedComponents: String; var wardCodes: String
        var attendingSources: [Option]; var attendingRoleCodes: String; var nurseRoleCodes: String; var criticalFlags: String
        var messageTypes: String; var unknownWard: [Option]; var unknownStaff: [Option]; var unknownPatient: [Option]
        var listenPort: String
        var versions: [VersionRow]; var sample: String; var result: TestResult?
    }
    struct VersionRow: Encodable { var version: Int; var savedAt: String; var savedBy: String }
    struct TestResult: Encodable {
        var outcome: String; var outcomeCode: String; var reason: String?; var messageType: String; var patient: String
        var events: [EventRow]; var waitingFor: String?
    }
    struct EventRow: Encodable { var kind: String; var summary: String; var critical: Bool }

    func editData(_ req: Request, channel: HL7Channel, sample: String = "", result: InboundPipeline.DryRun? = nil) async throws -> EditData {
        let t = req.rounds.catalogue.table(req.locale)
        let s = channel.settings
        func unknown(_ current: ChannelSettings.Unknown, allowCreate: Bool = true) -> [Option] {
            ChannelSettings.Unknown.allCases.filter { allowCreate || $0 != .create }
                .map { Option(value: $0.rawValue, label: t["channel_unknown_\($0.rawValue)"] ?? $0.rawValue, selected: $0 == current) }
        }
        let versions = try await req.rounds.channels.versions(id: channel.id!, context: req.context(), on: req.db)
        return EditData(
            id: channel.id!, name: channel.name, application: channel.application, facility: channel.facility, enabled: channel.enabled,
            version: channel.version, hospitals: try await hospitals(req, selected: channel.hospitalID),
            wardComponents: (1...9).map { Option(value: "\($0)", label: "PL-\($0)" + (t["channel_pl_\($0)"].map { "（\($0)）" } ?? ""), selected: $0 == s.wardComponent) },
            bedComponents: s.bedComponents.map(String.init).joined(separator: ", "),
            wardCodes: s.wardCodes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"),
            attendingSources: ChannelSettings.AttendingSource.allCases.map {
                Option(value: $0.rawValue, label: t["channel_attending_\($0 == .pv1 ? "pv1" : "rol")"] ?? $0.rawValue, selected: $0 == s.attendingSource)
            },
            attendingRoleCodes: s.attendingRoleCodes.joined(separator: ", "), nurseRoleCodes: s.nurseRoleCodes.joined(separator: ", "),
            criticalFlags: s.criticalFlags.joined(separator: ", "), messageTypes: s.messageTypes.joined(separator: ", "),
            unknownWard: unknown(s.unknownWard, allowCreate: false), unknownStaff: unknown(s.unknownStaff), unknownPatient: unknown(s.unknownPatient),
            listenPort: s.listenPort.map(String.init) ?? "",
            versions: versions.map { VersionRow(version: $0.version, savedAt: Formatting.dateTime($0.savedAt), savedBy: $0.savedBy ?? "") },
            sample: sample,
            result: result.map { r in
                TestResult(outcome: t["channel_test_\(r.outcome)"] ?? r.outcome, outcomeCode: r.outcome, reason: r.reason, messageType: r.messageType,
                           patient: [r.patientName, r.patientMRN].compactMap { $0 }.joined(separator: " · ")
                               + (r.patientKnown == false ? "（\(t["channel_test_new_patient"] ?? "")）" : ""),
                           events: r.events.map { EventRow(kind: t["event_\($0.kind)"] ?? $0.kind, summary: $0.summary, critical: $0.critical) },
                           waitingFor: r.waitingFor.map { Self.describe(key: $0, t) })
            })
    }

    @Sendable func edit(req: Request) async throws -> Response {
        let channel = try await req.rounds.channels.channel(id: req.parameters.require("id"), context: req.context(), on: req.db)
        return try await req.page("integration_channel", title: "channel_title", data: try await editData(req, channel: channel),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func update(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        do {
            let form = try req.content.decode(Form.self)
            _ = try await req.rounds.channels.update(id: id, try form.draft(), context: req.context(), on: req.db)
            return req.redirect(to: "/integration/channels/\(id)?ok=" + Self.encode(req.rounds.catalogue.table(req.locale)["channel_saved"] ?? "saved"))
        } catch let error as RoundsError {
            return req.redirect(to: "/integration/channels/\(id)?error=" + Self.encode(Self.text(error, req)))
        }
    }

    /// Tries the pasted message against the form as it stands (saved or not): the page comes back
    /// with what it would do, and nothing written.
    @Sendable func test(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        let context = try req.context()
        let channel = try await req.rounds.channels.channel(id: id, context: context, on: req.db)
        struct TestForm: Content { var message: String? }
        let sample = (try? req.content.decode(TestForm.self))?.message ?? ""
        do {
            let form = try req.content.decode(Form.self)
            let result = try await IntegrationRoutes.test(ChannelTestBody(message: sample, messageId: nil, channelId: id,
                                                                          channel: ChannelBody(name: form.name, application: form.application ?? "",
                                                                                               facility: form.facility ?? "", hospitalId: form.hospitalId,
                                                                                               enabled: form.enabled != nil,
                                                                                               settings: try form.draft().settings, version: nil)),
                                                          context: context, req: req)
            return try await req.page("integration_channel", title: "channel_title", data: try await editData(req, channel: channel, sample: sample, result: result))
        } catch let error as RoundsError {
            return try await req.page("integration_channel", title: "channel_title", data: try await editData(req, channel: channel, sample: sample),
                                      error: Self.text(error, req))
        }
    }

    // MARK: Outbound channels

    struct OutboundRow: Encodable {
        var id: String; var name: String; var destination: String; var types: String; var transforms: String; var policy: String
        var enabled: Bool; var version: Int
    }
    struct OutboundForm: Encodable {
        var id: String?; var name: String; var host: String; var port: String; var hospitals: [Option]; var enabled: Bool
        var messageTypes: String; var transforms: String; var maximumAttempts: Int; var backoffSeconds: Int; var maximumBackoffSeconds: Int
        var version: Int?
    }
    struct OutboundData: Encodable { var channels: [OutboundRow]; var form: OutboundForm }

    struct OutboundFormBody: Content {
        var name: String; var host: String; var port: Int?; var hospitalId: String?; var enabled: String?
        var messageTypes: String?; var transforms: String?; var maximumAttempts: Int?; var backoffSeconds: Int?
        var maximumBackoffSeconds: Int?; var version: Int?

        func draft() throws -> ChannelService.OutboundDraft {
            var s = OutboundSettings()
            s.messageTypes = Form.list(messageTypes)
            // "MSH-5=HIS" per line, in the order written; "MSH-8=" clears the field.
            s.transforms = try Form.pairs(transforms, arrow: false, emptyValue: true) { "field change '\($0)': write it as FIELD=value, e.g. MSH-5=HIS" }
                .map { .init(path: $0.0, value: $0.1) }
            if let v = maximumAttempts { s.maximumAttempts = v }
            if let v = backoffSeconds { s.backoffSeconds = v }
            if let v = maximumBackoffSeconds { s.maximumBackoffSeconds = v }
            return .init(name: name, host: host, port: port ?? 0, hospitalID: (hospitalId ?? "").isEmpty ? nil : hospitalId,
                         enabled: enabled != nil, settings: s, version: version)
        }
    }

    func outboundData(_ req: Request, editing: HL7OutboundChannel?) async throws -> OutboundData {
        let t = req.rounds.catalogue.table(req.locale)
        let channels = try await req.rounds.channels.outboundChannels(context: req.context(), on: req.db)
        let rows = channels.map { c in
            OutboundRow(id: c.id!, name: c.name, destination: "\(c.host):\(c.port)",
                        types: c.settings.messageTypes.isEmpty ? (t["outbound_all_types"] ?? "") : c.settings.messageTypes.joined(separator: ", "),
                        transforms: c.settings.transforms.map { "\($0.path)=\($0.value)" }.joined(separator: "；"),
                        policy: (t["outbound_policy"] ?? "%1$d/%2$d/%3$d").replacingOccurrences(of: "%1$d", with: "\(c.settings.maximumAttempts)")
                            .replacingOccurrences(of: "%2$d", with: "\(c.settings.backoffSeconds)")
                            .replacingOccurrences(of: "%3$d", with: "\(c.settings.maximumBackoffSeconds)"),
                        enabled: c.enabled, version: c.version)
        }
        let s = editing?.settings ?? OutboundSettings()
        var hospitalOptions = try await Hospital.query(on: req.db).sort(\.$code).all().map { Option(value: $0.id!, label: $0.name, selected: $0.id == editing?.hospitalID) }
        hospitalOptions.insert(Option(value: "", label: t["outbound_any_hospital"] ?? "", selected: editing?.hospitalID == nil), at: 0)
        return OutboundData(channels: rows, form: OutboundForm(
            id: editing?.id, name: editing?.name ?? "", host: editing?.host ?? "", port: editing.map { "\($0.port)" } ?? "2575",
            hospitals: hospitalOptions, enabled: editing?.enabled ?? true, messageTypes: s.messageTypes.joined(separator: ", "),
            transforms: s.transforms.map { "\($0.path)=\($0.value)" }.joined(separator: "\n"), maximumAttempts: s.maximumAttempts,
            backoffSeconds: s.backoffSeconds, maximumBackoffSeconds: s.maximumBackoffSeconds, version: editing?.version))
    }

    @Sendable func outboundList(req: Request) async throws -> Response {
        try await req.page("integration_outbound", title: "outbound_channels_title", data: try await outboundData(req, editing: nil),
                           flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func outboundEdit(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        let channels = try await req.rounds.channels.outboundChannels(context: req.context(), on: req.db)
        guard let channel = channels.first(where: { $0.id == id }) else { throw RoundsError.notFound("outbound channel", id: id) }
        return try await req.page("integration_outbound", title: "outbound_channels_title", data: try await outboundData(req, editing: channel),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func outboundSave(req: Request) async throws -> Response {
        let id = req.parameters.get("id")
        let back = id.map { "/integration/outbound-channels/\($0)" } ?? "/integration/outbound-channels"
        do {
            let form = try req.content.decode(OutboundFormBody.self)
            var draft = try form.draft()
            if id == nil { draft.enabled = true }
            let saved = try await req.rounds.channels.saveOutbound(id: id, draft, allowed: req.rounds.configuration.allowedDestinations,
                                                                   context: req.context(), on: req.db)
            return req.redirect(to: "/integration/outbound-channels/\(saved.id!)?ok=" + Self.encode(req.rounds.catalogue.table(req.locale)["channel_saved"] ?? "saved"))
        } catch let error as RoundsError {
            return req.redirect(to: back + "?error=" + Self.encode(Self.text(error, req)))
        }
    }

    // MARK: The mapping queue

    struct GroupRow: Encodable {
        var key: String; var kind: String; var title: String; var sender: String; var hospital: String; var count: Int
        var oldest: String; var wards: [Option]; var staff: [Option]
    }
    struct QueueData: Encodable { var groups: [GroupRow] }

    static func describe(key: String, _ t: [String: String]) -> String {
        let p = ChannelService.parse(key: key)
        return (t["mapping_kind_\(p.kind)"] ?? p.kind) + " " + p.code
    }

    @Sendable func queue(req: Request) async throws -> Response {
        let context = try req.context()
        let groups = try await req.rounds.channels.queue(context: context, on: req.db)
        let t = req.rounds.catalogue.table(req.locale)
        let hospitals = Dictionary(uniqueKeysWithValues: try await Hospital.query(on: req.db).all().map { ($0.id!, $0.name) })
        let wards = try await Department.query(on: req.db).filter(\.$kind == .ward).sort(\.$code).all()
        // Staff without a HIS id yet, per hospital, for the staff-id groups.
        var staffByHospital: [String: [Option]] = [:]
        if groups.contains(where: { $0.kind == "staff" }) {
            let roles = try await StaffRole.query(on: req.db).all()
            let people = Dictionary(uniqueKeysWithValues: try await Staff.query(on: req.db).filter(\.$isActive == true).all().map { ($0.id!, $0) })
            for (hospital, rows) in Dictionary(grouping: roles, by: \.hospitalID) {
                let ids = Set(rows.map(\.staffID))
                staffByHospital[hospital] = ids.compactMap { people[$0] }.filter { ($0.hl7ID ?? "").isEmpty }
                    .sorted { $0.displayName < $1.displayName }.prefix(500)
                    .map { Option(value: $0.id!, label: "\($0.displayName)（\($0.username)）", selected: false) }
            }
        }
        let rows = groups.map { g in
            GroupRow(key: g.key, kind: g.kind, title: Self.describe(key: g.key, t), sender: g.sender,
                     hospital: g.hospitalID.flatMap { hospitals[$0] } ?? "", count: g.count, oldest: Formatting.dateTime(g.oldest),
                     wards: g.kind == "ward" ? wards.filter { $0.hospitalID == g.hospitalID }.map { Option(value: $0.id!, label: "\($0.name)（\($0.code)）", selected: false) } : [],
                     staff: g.kind == "staff" ? g.hospitalID.flatMap { staffByHospital[$0] } ?? [] : [])
        }
        return try await req.page("integration_mapping", title: "mapping_title", data: QueueData(groups: rows),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    struct QueueForm: Content { var key: String; var wardId: String?; var staffId: String? }

    @Sendable func mapWard(req: Request) async throws -> Response {
        try await queueAction(req) { form in
            guard let ward = form.wardId else { throw Abort(.badRequest, reason: "wardId is required") }
            return try await req.rounds.channels.mapWard(key: form.key, wardID: ward, context: req.context(), on: req.db)
        }
    }

    @Sendable func mapStaff(req: Request) async throws -> Response {
        try await queueAction(req) { form in
            guard let staff = form.staffId else { throw Abort(.badRequest, reason: "staffId is required") }
            return try await req.rounds.channels.mapStaff(key: form.key, staffID: staff, context: req.context(), on: req.db)
        }
    }

    @Sendable func release(req: Request) async throws -> Response {
        try await queueAction(req) { form in try await req.rounds.channels.release(key: form.key, context: req.context(), on: req.db) }
    }

    /// A queue form's answer: back to the queue with what was applied, or with the reason.
    func queueAction(_ req: Request, _ act: (QueueForm) async throws -> [Receipt]) async throws -> Response {
        do {
            let receipts = try await act(try req.content.decode(QueueForm.self))
            return req.redirect(to: "/integration/mapping?ok=" + Self.encode(Self.summary(receipts, req)))
        } catch let error as RoundsError {
            return req.redirect(to: "/integration/mapping?error=" + Self.encode(Self.text(error, req)))
        }
    }

    static func summary(_ receipts: [Receipt], _ req: Request) -> String {
        let t = req.rounds.catalogue.table(req.locale)
        let applied = receipts.filter { $0.outcome == .accepted }.count
        let waiting = receipts.filter { $0.outcome == .held }.count
        return (t["mapping_done"] ?? "%1$d of %2$d applied; %3$d still waiting")
            .replacingOccurrences(of: "%1$d", with: "\(applied)").replacingOccurrences(of: "%2$d", with: "\(receipts.count)")
            .replacingOccurrences(of: "%3$d", with: "\(waiting)")
    }

    static func text(_ error: RoundsError, _ req: Request) -> String {
        error.message(locale: req.locale) + (error.detail.map { ": \($0)" } ?? "")
    }

    static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
}
