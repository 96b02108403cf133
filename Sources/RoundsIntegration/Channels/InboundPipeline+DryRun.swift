import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

extension InboundPipeline {
    /// What a message would do, found by doing it in a transaction that is then rolled back.
    public struct DryRun: Sendable, Codable {
        /// accepted | held | error | rejected: what the sender would be answered.
        public var outcome: String
        public var reason: String?
        public var messageType: String
        public var channel: String?
        public var hospitalID: String?
        public var patientMRN: String?
        public var patientName: String?
        /// Whether the patient is known already (false: the message would create them).
        public var patientKnown: Bool?
        /// What the message would wait for in the mapping queue.
        public var waitingFor: String?
        public var events: [Event]

        public struct Event: Sendable, Codable {
            public var kind: String
            public var summary: String
            public var critical: Bool
            public init(kind: String, summary: String, critical: Bool) { self.kind = kind; self.summary = summary; self.critical = critical }
        }

        public init(outcome: String, reason: String? = nil, messageType: String, channel: String? = nil, hospitalID: String? = nil,
                    patientMRN: String? = nil, patientName: String? = nil, patientKnown: Bool? = nil, waitingFor: String? = nil,
                    events: [Event]) {
            self.outcome = outcome; self.reason = reason; self.messageType = messageType; self.channel = channel
            self.hospitalID = hospitalID; self.patientMRN = patientMRN; self.patientName = patientName
            self.patientKnown = patientKnown; self.waitingFor = waitingFor; self.events = events
        }
    }

    private struct RolledBack: Error { var run: DryRun }

    /// `channel` overrides the one the sender would match (a draft being edited); nil: as it would arrive.
    public func dryRun(_ bytes: [UInt8], channel override: ResolvedChannel?, on db: any Database) async -> DryRun {
        let parsed: HL7Message
        do { parsed = try HL7Message.parse(bytes: bytes).0 } catch {
            return DryRun(outcome: Receipt.Outcome.rejected.rawValue, reason: (error as? HL7Error)?.description ?? "unreadable message",
                          messageType: "", events: [])
        }
        let messageType = [parsed.messageType, parsed.triggerEvent].filter { !$0.isEmpty }.joined(separator: "^")
        var run = DryRun(outcome: Receipt.Outcome.accepted.rawValue, messageType: messageType, events: [])
        do {
            let channel: ResolvedChannel
            if let override { channel = override } else { channel = try await channels.channel(for: parsed, on: db) }
            run.channel = channel.id == nil ? nil : channel.name
            guard channel.settings.allows(type: parsed.messageType, trigger: parsed.triggerEvent) else {
                run.outcome = Receipt.Outcome.rejected.rawValue
                run.reason = "message type \(messageType) is not allowed on channel '\(channel.name)'"
                return run
            }
            let rules = try await CriticalValueRule.query(on: db).all()
            let now = clock.now()
            let knownBefore = try await knownPatients(parsed, on: db)
            let start = run
            try await SQLiteWriteGate.serialised(db, writer: "hl7-dry-run") {
                try await db.transaction { tx in
                    var ctx = MappingContext(db: tx, message: parsed, messageID: "dry-run", now: now, ids: ids, audit: audit, rules: rules,
                                             actor: "hl7:dry-run", submitter: nil, peer: nil)
                    ctx.channel = channel
                    var run = start
                    do {
                        try await Self.map(&ctx)
                    } catch let held as HeldForReview {
                        run.outcome = Receipt.Outcome.held.rawValue
                        run.reason = held.text
                        run.waitingFor = held.key
                    }
                    run.hospitalID = ctx.hospitalID
                    run.patientMRN = ctx.patientMRN
                    if let id = ctx.patientID { run.patientName = try await Patient.find(id, on: tx)?.name }
                    run.patientKnown = ctx.patientMRN.map { knownBefore.contains($0) }
                    run.events = ctx.events.map(Self.describe)
                    throw RolledBack(run: run)
                }
            }
        } catch let rolledBack as RolledBack {
            return rolledBack.run
        } catch let error as MappingError {
            run.outcome = Receipt.Outcome.error.rawValue
            run.reason = error.text
        } catch let error as UnsupportedMessage {
            run.outcome = Receipt.Outcome.rejected.rawValue
            run.reason = error.text
        } catch {
            run.outcome = Receipt.Outcome.error.rawValue
            run.reason = "internal error while applying the message (\(type(of: error)))"
        }
        return run
    }

    /// The MRNs of the message that name a patient Rounds has, read before the dry run writes.
    private func knownPatients(_ message: HL7Message, on db: any Database) async throws -> Set<String> {
        var mrns: [String] = []
        var repetition = 1
        while let id = message["PID-3(\(repetition))-1"], repetition < 20 {
            if !id.isEmpty { mrns.append(id) }
            repetition += 1
        }
        guard !mrns.isEmpty else { return [] }
        return Set(try await Patient.query(on: db).filter(\.$mrn ~~ mrns).all().map(\.mrn))
    }

    /// One line per event, in the words IT reads on the test page.
    static func describe(_ event: PendingEvent) -> DryRun.Event {
        let data = Data(event.payload.utf8)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var summary = ""
        var critical = event.kind == .observationCritical
        switch event.kind {
        case .patientAdmitted, .patientTransferred, .patientDischarged, .patientUpdated, .admissionCancelled, .transferCancelled, .dischargeCancelled:
            if let p = try? decoder.decode(ClinicalEvent.PatientMoved.self, from: data) {
                summary = "\(p.name) \(p.mrn) → " + [p.wardCode, p.bed].compactMap { $0 }.joined(separator: " ")
            }
        case .orderCreated, .orderChanged, .orderCancelled, .orderDiscontinued:
            if let o = try? decoder.decode(ClinicalEvent.OrderChanged.self, from: data) {
                summary = "\(o.placerNumber) \(o.description) (\(o.status))"
            }
        case .observationResult:
            if let r = try? decoder.decode(ClinicalEvent.ResultsReported.self, from: data) {
                summary = r.observations.map { "\($0.name) \($0.shownValue) \($0.unit ?? "")".trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
                critical = r.observations.contains(where: \.critical)
            }
        case .observationCritical:
            if let o = try? decoder.decode(ClinicalEvent.ObservationResult.self, from: data) {
                summary = "\(o.name) \(o.shownValue) \(o.unit ?? "") — \(o.criticalReason ?? "")"
            }
        case .reportReceived:
            if let r = try? decoder.decode(ClinicalEvent.ReportReceived.self, from: data) {
                summary = "\(r.title) \(r.documentNumber)" + (r.allAttachmentIDs.isEmpty ? "" : " · \(r.allAttachmentIDs.count) PDF")
            }
        default:
            summary = String(event.payload.prefix(200))
        }
        return DryRun.Event(kind: event.kind.rawValue, summary: summary, critical: critical)
    }
}
