import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
import Testing
import Vapor

/// The inbound pipeline over the shared reference messages: stored, applied to the clinical
/// record, written to the outbox, acknowledged — and refused with a reason when it cannot be.
@Suite struct InboundPipelineTests {
    static func receive(_ app: Application, _ bytes: [UInt8], peer: String = "10.8.0.21") async throws -> Receipt {
        try #require(await app.rounds.hl7.receive(bytes, peer: peer, on: app.db))
    }

    static func receive(_ app: Application, fixture: String) async throws -> Receipt {
        try await receive(app, HL7Fixtures.bytes(fixture))
    }

    static func ack(_ receipt: Receipt) throws -> HL7Message {
        try HL7Message.parse(bytes: receipt.acknowledgement).0
    }

    static func events(_ kind: String, _ app: Application) async throws -> [OutboxEvent] {
        try await OutboxEvent.query(on: app.db).filter(\.$kind == kind).all()
    }

    @Test(arguments: Backend.all)
    func admissionCreatesPatientAndStayOnTheNamedBed(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let receipt = try await Self.receive(app, fixture: "adt_a01_utf8.hl7")
            #expect(receipt.outcome == .accepted)
            let ack = try Self.ack(receipt)
            #expect(ack["MSA-1"] == "AA")
            #expect(ack["MSA-2"] == "MSG00001")
            #expect(ack["MSH-9-1"] == "ACK")

            // Stored first, byte for byte.
            let record = try #require(try await HL7MessageRecord.find(receipt.messageID, on: app.db))
            #expect(Array(record.raw) == (try HL7Fixtures.bytes("adt_a01_utf8.hl7")))
            #expect(record.status == "accepted" && record.controlID == "MSG00001" && record.messageType == "ADT^A01")
            #expect(record.sender == "HIS@ARION" && record.peer == "10.8.0.21" && record.patientMRN == "MRN10001")

            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            #expect(patient.name == "王建国")
            #expect(patient.gender == .male)
            #expect(patient.birthDate == "1965-03-07")
            #expect(patient.allergies == "青霉素")
            #expect(record.patientID == patient.id)

            let stay = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).first())
            let lung = try await Demo.department("LUNG", app)
            let bed = try #require(try await Bed.find(stay.bedID, on: app.db))
            #expect(stay.wardID == lung.id && bed.label == "12" && stay.status == .active)
            #expect(stay.visitNumber == "V20261121001")
            #expect(stay.attendingID == (try await Demo.staff("li.ming", app)).id)
            #expect(stay.nurseID == (try await Demo.staff("zhang.li", app)).id)

            let admitted = try await Self.events("patient.admitted", app)
            #expect(admitted.count == 1)
            #expect(admitted.first?.sourceMessageID == record.id && admitted.first?.encounterID == stay.id)
            #expect(admitted.first?.payload.contains("\"bed\":\"12\"") == true)

            let audit = try await Demo.audit("patient.admit", app)
            #expect(audit.count == 1)
            #expect(audit.first?.actorName == "hl7:HIS@ARION" && audit.first?.clientAddress == "10.8.0.21" && audit.first?.patientID == patient.id)
        }
    }

    @Test(arguments: Backend.all)
    func transferOrderResultAndReportFollowTheAdmission(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            for name in ["adt_a01_utf8.hl7", "adt_a02_transfer.hl7", "orm_o01_change.hl7", "oru_r01_critical_k.hl7", "mdm_t02_pathology_pdf.hl7"] {
                let receipt = try await Self.receive(app, fixture: name)
                #expect(receipt.outcome == .accepted, "\(name): \(receipt.detail ?? "")")
            }
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())

            // A02: now in ICU bed 3 under 赵强; LUNG bed 12 is free again.
            let stay = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).first())
            #expect(stay.wardID == (try await Demo.department("ICU", app)).id)
            #expect(try await Bed.find(stay.bedID, on: app.db)?.label == "3")
            #expect(stay.attendingID == (try await Demo.staff("zhao.qiang", app)).id)
            let transfer = try #require(try await Self.events("patient.transferred", app).first)
            #expect(transfer.payload.contains("\"fromWardCode\":\"LUNG\""))

            // ORM XO: the order with its new dose and the note, unescaped.
            let order = try #require(try await ClinicalOrder.query(on: app.db).filter(\.$placerNumber == "ORD7788").first())
            #expect(order.description == "顺铂" && order.status == "active")
            let details = try JSONDecoder().decode([String: String].self, from: Data(order.details.utf8))
            #expect(details["dose"] == "75" && details["unit"] == "mg/m2" && details["frequency"] == "Q8H")
            #expect(details["note"] == "Dose reduced from 80 to 75 mg/m2 & hydration 2L")
            #expect(try await Self.events("order.changed", app).count == 1)

            // ORU: K 6.9 HH is critical, Na 138 is not.
            let potassium = try #require(try await Observation.query(on: app.db).filter(\.$code == "2823-3").first())
            #expect(potassium.value == "6.9" && potassium.unit == "mmol/L" && potassium.abnormalFlag == "HH" && potassium.isCritical)
            let sodium = try #require(try await Observation.query(on: app.db).filter(\.$code == "2951-2").first())
            #expect(!sodium.isCritical)
            let critical = try await Self.events("observation.critical", app)
            #expect(critical.count == 1)
            #expect(critical.first?.payload.contains("\"value\":\"6.9\"") == true)

            // MDM: report text (both repetitions) and the PDF kept as an attachment.
            let report = try #require(try await ClinicalReport.query(on: app.db).filter(\.$documentNumber == "DOC3344").first())
            #expect(report.text.contains("EGFR 19 外显子缺失突变阳性") && report.text.contains("Right upper lobe biopsy"))
            let pdf = try #require(try await Attachment.find(report.attachmentID, on: app.db))
            #expect(pdf.contentType == "application/pdf")
            #expect(pdf.data.starts(with: Data("%PDF".utf8)))
            #expect(try await Self.events("report.received", app).count == 1)
        }
    }

    @Test(arguments: Backend.all)
    func aDuplicateControlIDIsAcknowledgedButNotProcessedTwice(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, fixture: "adt_a01_utf8.hl7")
            let first = try await Self.receive(app, fixture: "oru_r01_critical_k.hl7")
            let second = try await Self.receive(app, fixture: "oru_r01_critical_k.hl7")
            #expect(first.outcome == .accepted)
            #expect(second.outcome == .duplicate)
            #expect(try Self.ack(second)["MSA-1"] == "AA")
            #expect(second.messageID == first.messageID)
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MSG00004").count() == 1)
            #expect(try await HL7MessageRecord.find(first.messageID, on: app.db)?.duplicateCount == 1)
            #expect(try await Observation.query(on: app.db).filter(\.$code == "2823-3").count() == 1)
            #expect(try await Self.events("observation.critical", app).count == 1)

            // The same control id from another sender is a different message.
            var other = try HL7Message.parse(bytes: HL7Fixtures.bytes("oru_r01_critical_k.hl7")).0
            try other.set("MSH-3", "LIS2")
            let third = try await Self.receive(app, Array(other.encode().utf8))
            #expect(third.outcome == .accepted)
        }
    }

    @Test(arguments: Backend.all)
    func concurrentCopiesOfOneMessageAreStoredOnce(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let bytes = try HL7Fixtures.bytes("adt_a01_utf8.hl7")
            let outcomes = try await withThrowingTaskGroup(of: Receipt.Outcome.self) { group in
                for _ in 0..<6 { group.addTask { try await Self.receive(app, bytes).outcome } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .accepted }.count == 1)
            #expect(outcomes.filter { $0 == .duplicate }.count == 5)
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MSG00001").count() == 1)
            #expect(try await Encounter.query(on: app.db).filter(\.$visitNumber == "V20261121001").count() == 1)
        }
    }

    @Test(arguments: Backend.all)
    func aMessageThatCannotBeAppliedIsStoredAsErrorAndChangesNothing(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patientsBefore = try await Patient.query(on: app.db).count()
            var message = try HL7Message.parse(bytes: HL7Fixtures.bytes("adt_a01_utf8.hl7")).0
            try message.set("PV1-3-1", "NOWARD")
            // Another patient, so that the later messages below do not wait behind this one.
            try message.set("PID-3(1)-1", "MRN19999")
            try message.set("MSH-10", "MSG00001W")
            let receipt = try await Self.receive(app, Array(message.encode().utf8))
            // An unknown ward code waits in the mapping queue (the default for a sender no channel describes).
            #expect(receipt.outcome == .held)
            let ack = try Self.ack(receipt)
            #expect(ack["MSA-1"] == "AE")
            #expect(ack["MSA-2"] == "MSG00001W")
            #expect(ack["ERR-3-1"] == "103")
            #expect(ack["ERR-8"]?.contains("unknown ward code 'NOWARD'") == true)
            let record = try #require(try await HL7MessageRecord.find(receipt.messageID, on: app.db))
            #expect(record.status == "held" && record.error?.contains("NOWARD") == true && record.ackCode == "AE")
            #expect(record.waitingFor?.hasPrefix("ward|HIS@ARION|") == true && record.waitingFor?.hasSuffix("|NOWARD") == true)
            // The transaction rolled back: no half-admitted patient, no event.
            #expect(try await Patient.query(on: app.db).count() == patientsBefore)
            #expect(try await OutboxEvent.query(on: app.db).count() == 0)

            // A discontinue for an order nobody placed (for a patient who is known).
            #expect(try await Self.receive(app, fixture: "adt_a01_utf8.hl7").outcome == .accepted)
            var dc = try HL7Message.parse(bytes: HL7Fixtures.bytes("orm_o01_change.hl7")).0
            try dc.set("ORC-1", "DC")
            let refused = try await Self.receive(app, Array(dc.encode().utf8))
            #expect(refused.outcome == .error)
            #expect(try Self.ack(refused)["ERR-8"]?.contains("ORD7788 is not known") == true)

            // A result without the patient identifier.
            var noPID = try HL7Message.parse(bytes: HL7Fixtures.bytes("oru_r01_critical_k.hl7")).0
            try noPID.set("PID-3", "")
            let missing = try await Self.receive(app, Array(noPID.encode().utf8))
            #expect(missing.outcome == .error)
            #expect(try Self.ack(missing)["ERR-3-1"] == "101")
        }
    }

    @Test(arguments: Backend.all)
    func unreadableAndUnsupportedMessagesAreRejectedWithAReason(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let cases: [(String, [UInt8], String)] = [
                ("no MSH", Array("PID|1||MRN1\r".utf8), "MSH"),
                ("junk", [0x00, 0xFF, 0xFE, 0x13, 0x37], "MSH"),
                ("bad delimiters", Array("MSH|||||\r".utf8), "encoding characters"),
                ("no control id", Array("MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121||ADT^A01||P|2.5\rPID|1||X\r".utf8), "MSH-10"),
                ("unsupported type", Array("MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121||QRY^A19|Q1|P|2.5\r".utf8), "not supported"),
                ("unsupported trigger", Array("MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121||ADT^A99|Q2|P|2.5\rPID|1||X^^^^MR||A^B\r".utf8), "A99"),
            ]
            for (label, bytes, reason) in cases {
                let receipt = try await Self.receive(app, bytes)
                #expect(receipt.outcome == .rejected, "\(label)")
                let ack = try Self.ack(receipt)
                #expect(ack["MSA-1"] == "AR", "\(label)")
                #expect(ack["ERR-8"]?.contains(reason) == true, "\(label): \(ack["ERR-8"] ?? "-")")
                let record = try #require(try await HL7MessageRecord.find(receipt.messageID, on: app.db), "\(label)")
                #expect(record.status == "rejected" && Array(record.raw) == bytes, "\(label)")
            }
            #expect(try await OutboxEvent.query(on: app.db).count() == 0)
        }
    }

    /// Random bytes and mutated reference messages: every one is answered with a readable ACK
    /// and stored once; nothing crashes.
    @Test func fuzzedInputIsAlwaysAnsweredAndStored() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            var random = SeededGenerator(seed: 0xC0FFEE)
            let samples = try HL7Fixtures.names.map { try HL7Fixtures.bytes($0) }
            var sent = 0
            for round in 0..<240 {
                var bytes: [UInt8]
                if round % 3 == 0 {
                    bytes = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                } else {
                    bytes = samples.randomElement(using: &random)!
                    for _ in 0..<Int.random(in: 1...8, using: &random) where !bytes.isEmpty {
                        let at = Int.random(in: 0..<bytes.count, using: &random)
                        switch Int.random(in: 0...3, using: &random) {
                        case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                        case 1: bytes.remove(at: at)
                        case 2: bytes.insert([0x7C, 0x5E, 0x0D, 0x5C, 0x26, 0x7E].randomElement(using: &random)!, at: at)
                        default: bytes = Array(bytes[..<at])
                        }
                    }
                }
                let receipt = try #require(await app.rounds.hl7.receive(bytes, peer: "fuzz", on: app.db))
                let ack = try HL7Message.parse(bytes: receipt.acknowledgement).0
                #expect(["AA", "AE", "AR"].contains(ack["MSA-1"] ?? ""), "round \(round)")
                if receipt.outcome != .duplicate { sent += 1 }
            }
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$peer == "fuzz").count() == sent)
        }
    }

    @Test(arguments: Backend.all)
    func cancelsAndMergeUndoWhatTheHISUndid(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, fixture: "adt_a01_utf8.hl7")
            func adt(_ trigger: String, _ id: String, extra: [String] = []) -> [UInt8] {
                Array((["MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261122090000||ADT^\(trigger)|\(id)|P|2.5",
                        "EVN|\(trigger)|20261122090000", "PID|1||MRN10001^^^ARION^MR||王^建国||19650307|M",
                        "PV1|1|I|LUNG^12^1^ARION||||D001^李^明"] + extra).joined(separator: "\r").utf8)
            }
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            func stay() async throws -> Encounter { try #require(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).first()) }

            #expect(try await Self.receive(app, adt("A03", "C1")).outcome == .accepted)
            #expect(try await stay().status == .discharged)
            #expect(try await Self.receive(app, adt("A13", "C2")).outcome == .accepted)
            #expect(try await stay().status == .active)
            #expect(try await Self.receive(app, adt("A11", "C3")).outcome == .accepted)
            #expect(try await stay().status == .cancelled)
            #expect(try await Self.receive(app, adt("A11", "C4")).outcome == .error)  // nothing left to cancel

            // A40: MRN20001 (a demo patient) merged into MRN10001.
            let prior = try await Demo.patient(onWard: "LUNG", app)
            let merge = adt("A40", "C5", extra: ["MRG|\(prior.mrn)^^^ARION^MR"])
            #expect(try await Self.receive(app, merge).outcome == .accepted)
            #expect(try await Patient.find(prior.id, on: app.db)?.mergedInto == patient.id)
            #expect(try await Self.events("patient.merged", app).count == 1)
        }
    }

    @Test func criticalValueRulesCatchUnflaggedResults() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            _ = try await Self.receive(app, fixture: "adt_a01_utf8.hl7")
            // Hb 45 g/L without an abnormal flag: the seeded rule (Hb < 50) makes it critical.
            let text = ["MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121160000||ORU^R01|R77|P|2.5.1",
                        "PID|1||MRN10001^^^ARION^MR||王^建国", "OBR|1|ORD1^HIS|||||20261121155000",
                        "OBX|1|NM|718-7^Hemoglobin^LN||45|g/L|115-150||||F"].joined(separator: "\r")
            #expect(try await Self.receive(app, Array(text.utf8)).outcome == .accepted)
            let hb = try #require(try await Observation.query(on: app.db).filter(\.$code == "718-7").first())
            #expect(hb.isCritical)
            let critical = try await Self.events("observation.critical", app)
            #expect(critical.count == 1)
        }
    }

    @Test func theSimulatorFeedIsAcceptedInFull() async throws {
        try await TestApp.with(.sqlite) { app, clock in
            var simulator = FeedSimulator(seed: 42, runTag: "T")
            var kinds: Set<String> = []
            for _ in 0..<400 {
                let text = simulator.next(at: clock.now())
                clock.advance(by: 30)
                let receipt = try await Self.receive(app, Array(text.utf8))
                let message = try HL7Message.parse(text)
                kinds.insert("\(message.messageType)^\(message.triggerEvent)")
                #expect(receipt.outcome == .accepted, "\(message.controlID): \(receipt.detail ?? "")")
            }
            #expect(kinds.isSuperset(of: ["ADT^A01", "ADT^A02", "ADT^A03", "ORM^O01", "ORU^R01", "MDM^T02"]))
            #expect(try await Self.events("observation.critical", app).count > 0)
        }
    }

    @Test(arguments: Backend.all)
    func pharmacyAndGeneralOrdersAreMappedToo(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, fixture: "adt_a01_utf8.hl7")
            let rde = ["MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121170000||RDE^O11^RDE_O11|RX1|P|2.5",
                       "PID|1||MRN10001^^^ARION^MR||王^建国", "PV1|1|I|LUNG^12^1^ARION||||D001^李^明",
                       "ORC|NW|RX7001^HIS|||||||20261121165500|N007^张^丽||D001^李^明",
                       "RXE|^Q12H|ENOX^依诺肝素^LOCAL|40||mg"].joined(separator: "\r")
            #expect(try await Self.receive(app, Array(rde.utf8)).outcome == .accepted)
            let rx = try #require(try await ClinicalOrder.query(on: app.db).filter(\.$placerNumber == "RX7001").first())
            #expect(rx.description == "依诺肝素" && rx.status == "active" && rx.orderedBy == "李明")
            #expect(rx.details.contains("\"frequency\":\"Q12H\""))

            let omg = ["MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121171000||OMG^O19^OMG_O19|CT1|P|2.5",
                       "PID|1||MRN10001^^^ARION^MR||王^建国", "PV1|1|I|LUNG^12^1^ARION",
                       "ORC|NW|IMG3001^HIS", "OBR|1|IMG3001^HIS||CTCHEST^胸部CT平扫^LOCAL|S",
                       "NTE|1||请评估肺部病灶"].joined(separator: "\r")
            #expect(try await Self.receive(app, Array(omg.utf8)).outcome == .accepted)
            let ct = try #require(try await ClinicalOrder.query(on: app.db).filter(\.$placerNumber == "IMG3001").first())
            #expect(ct.description == "胸部CT平扫" && ct.details.contains("请评估肺部病灶"))

            // Discontinue the injection: status and the change are recorded.
            let dc = rde.replacingOccurrences(of: "ORC|NW", with: "ORC|DC").replacingOccurrences(of: "|RX1|", with: "|RX2|")
            #expect(try await Self.receive(app, Array(dc.utf8)).outcome == .accepted)
            #expect(try await ClinicalOrder.find(rx.id, on: app.db)?.status == "discontinued")
            let event = try #require(try await Self.events("order.discontinued", app).first)
            #expect(event.payload.contains("\"status\":[\"active\",\"discontinued\"]"))
        }
    }
}
