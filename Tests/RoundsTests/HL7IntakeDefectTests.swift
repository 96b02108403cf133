import FluentKit
import Foundation
import NIOCore
import NIOEmbedded
import RoundsCore
import RoundsHL7
@testable import RoundsAlerts
@testable import RoundsChat
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor

/// Defects found by sending messages shaped like other hospitals' systems send them: each test
/// failed before its fix (the engine lost, blanked or silently invented something).
@Suite struct HL7IntakeDefectTests {
    static func receive(_ app: Application, _ bytes: [UInt8]) async throws -> Receipt {
        try #require(await app.rounds.hl7.receive(bytes, peer: "10.8.0.31", on: app.db))
    }

    static func receive(_ app: Application, _ segments: [String]) async throws -> Receipt {
        try await receive(app, Array(segments.joined(separator: "\r").utf8))
    }

    static func ack(_ receipt: Receipt) throws -> HL7Message { try HL7Message.parse(bytes: receipt.acknowledgement).0 }

    static func message(_ fixture: String, _ edit: (inout HL7Message) throws -> Void) throws -> [UInt8] {
        var message = try HL7Message.parse(bytes: HL7Fixtures.bytes(fixture)).0
        try edit(&message)
        return Array(message.encode().utf8)
    }

    // MARK: A control id reused for different content

    @Test(arguments: Backend.all)
    func aControlIDReusedForADifferentMessageIsStoredAppliedAndFlagged(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7"))
            let first = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            #expect(first.outcome == .accepted)

            // The same sender and MSH-10, another potassium value: a message in its own right.
            let changed = try Self.message("oru_r01_critical_k.hl7") { try $0.set("OBX(1)-5", "7.2") }
            let second = try await Self.receive(app, changed)
            #expect(second.outcome == .accepted)
            #expect(second.messageID != first.messageID)
            let ack = try Self.ack(second)
            #expect(ack["MSA-1"] == "AA" && ack["MSA-2"] == "MSG00004")
            #expect(ack["MSA-3"]?.contains("control id used before") == true)
            let stored = try #require(try await HL7MessageRecord.find(second.messageID, on: app.db))
            #expect(Array(stored.raw) == changed && stored.status == "accepted")
            #expect(stored.notice?.contains(first.messageID!) == true)
            let values = try await Observation.query(on: app.db).filter(\.$code == "2823-3").all().map(\.value).sorted()
            #expect(values == ["6.9", "7.2"])

            // An extra segment is different content too.
            let extra = try await Self.receive(app, Array((String(decoding: try HL7Fixtures.bytes("oru_r01_critical_k.hl7"), as: UTF8.self)
                + "\rNTE|2||repeat sample requested").utf8))
            #expect(extra.outcome == .accepted && extra.messageID != second.messageID)

            // Byte-identical resends (a trailing CR added or not) are duplicates of the one they repeat.
            let again = try await Self.receive(app, changed + [0x0D])
            #expect(again.outcome == .duplicate && again.messageID == second.messageID)
            let firstAgain = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            #expect(firstAgain.outcome == .duplicate && firstAgain.messageID == first.messageID)
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MSG00004").count() == 3)
            #expect(try await HL7MessageRecord.find(second.messageID, on: app.db)?.duplicateCount == 1)

            // IT finds the flagged message in the store.
            let it = Client(app)
            try await it.login("hu.bin")
            let page = try await it.page("/integration")
            #expect(page.body.string.contains("MSG00004") && page.body.string.contains("需核查"))
        }
    }

    /// Two copies of the reusing message at once are still stored once.
    @Test(arguments: Backend.all)
    func concurrentCopiesOfAReusingMessageAreStoredOnce(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7"))
            _ = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            let changed = try Self.message("oru_r01_critical_k.hl7") { try $0.set("OBX(2)-5", "140") }
            let outcomes = try await withThrowingTaskGroup(of: Receipt.Outcome.self) { group in
                for _ in 0..<4 { group.addTask { try await Self.receive(app, changed).outcome } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .accepted }.count == 1 && outcomes.filter { $0 == .duplicate }.count == 3)
            #expect(try await Observation.query(on: app.db).filter(\.$value == "140").count() == 1)
        }
    }

    // MARK: MSA-2 when the message cannot be parsed

    @Test(arguments: Backend.all)
    func theRefusalOfAnUnparseableMessageEchoesItsControlID(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            // MSH-2 with a repeated delimiter: not parseable, but MSH-10 is right there.
            let bad = Array("MSH|^^\\&|LIS|ARION|ROUNDS|ARION|20261121||ORU^R01|LAB-77|P|2.5\rPID|1||MRN10001\r".utf8)
            #expect(throws: (any Error).self) { try HL7Message.parse(bytes: bad) }
            let receipt = try await Self.receive(app, bad)
            #expect(receipt.outcome == .rejected)
            let ack = try Self.ack(receipt)
            #expect(ack["MSA-1"] == "AR" && ack["MSA-2"] == "LAB-77")
            #expect(ack["MSH-5"] == "LIS" && ack["MSH-6"] == "ARION")
            let record = try #require(try await HL7MessageRecord.find(receipt.messageID, on: app.db))
            #expect(record.controlID == "LAB-77" && record.sender == "LIS@ARION" && record.messageType == "ORU^R01" && Array(record.raw) == bad)

            // An over-limit frame: the reader keeps its first bytes, the refusal names it.
            let big = Array("MSH|^~\\&|PACS|ARION|ROUNDS|ARION|20261121||MDM^T02|BIG-9|P|2.5\rOBX|1|ED|PDF||^application^pdf^Base64^".utf8)
                + [UInt8](repeating: 0x41, count: 6000) + [0x0D]
            let whole: [[UInt8]] = [MLLP.frame(big)]
            let inPieces: [[UInt8]] = [[0x0B] + Array(big.prefix(3000)), Array(big.dropFirst(3000)) + [0x1C, 0x0D]]
            for chunks in [whole, inPieces] {
                let frames = try MLLPFramingTests.frames(chunks, maximumSize: 2048)
                guard case .tooLarge(let size, let head) = try #require(frames.first) else {
                    Issue.record("expected tooLarge, got \(frames)"); continue
                }
                #expect(size >= big.count && head.starts(with: Array("MSH|".utf8)))
                let answer = await app.rounds.hl7.tooLarge(size: size, limit: 2048, head: head, peer: "10.8.0.31", on: app.db)
                let refusal = try HL7Message.parse(bytes: answer).0
                #expect(refusal["MSA-1"] == "AR" && refusal["MSA-2"] == "BIG-9")
                #expect(refusal["ERR-8"]?.contains("larger than the 2048-byte limit") == true)
            }
            let kept = try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "BIG-9").all()
            #expect(kept.count == 2 && kept.allSatisfy { $0.raw.isEmpty && $0.sender == "PACS@ARION" && $0.status == "rejected" })

            // Nothing readable at all: MSA-2 stays empty rather than guessed.
            let junk = try await Self.receive(app, Array("hello".utf8))
            #expect(try Self.ack(junk)["MSA-2"] == nil)
        }
    }

    @Test func theHeaderPeekReadsOnlyWhatIsThere() {
        #expect(HL7HeaderPeek(Array("MSH|bad|A|B|C|D|E||ADT^A01|X1|P|2.5".utf8))?.controlID == "X1")
        #expect(HL7HeaderPeek(Array("\u{FEFF}\r\nMSH#*~\\&#A#B#C#D#E##ORU*R01#X2#P".utf8))?.triggerEvent == "R01")
        #expect(HL7HeaderPeek(Array("MSH|^~\\&|A".utf8))?.controlID == "")
        #expect(HL7HeaderPeek(Array("PID|1".utf8)) == nil)
        #expect(HL7HeaderPeek(Array("MSHA|".utf8)) == nil)
        // Control characters never reach the ACK.
        #expect(HL7HeaderPeek([UInt8]("MSH|^~\\&|A|B|C|D|E||ADT|X".utf8) + [0x07, 0x33])?.controlID == "X3")
    }

    // MARK: Orders and results for a patient Rounds does not know

    @Test(arguments: Backend.all)
    func resultsAndOrdersForAnUnknownPatientAreHeldAndAppliedOnAdmission(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patientsBefore = try await Patient.query(on: app.db).count()
            let order = try await Self.receive(app, HL7Fixtures.bytes("orm_o01_change.hl7"))
            let result = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            for receipt in [order, result] {
                #expect(receipt.outcome == .held)
                let ack = try Self.ack(receipt)
                #expect(ack["MSA-1"] == "AE" && ack["ERR-3-1"] == "204")
                #expect(ack["ERR-8"]?.contains("no patient with MRN MRN10001") == true)
            }
            try await app.rounds.dispatchOutbox(on: app.db)
            // Nothing invented: no patient without a stay, no result, no alert.
            #expect(try await Patient.query(on: app.db).count() == patientsBefore)
            #expect(try await Observation.query(on: app.db).count() == 0)
            #expect(try await CriticalAlert.query(on: app.db).count() == 0)
            let held = try await HL7MessageRecord.query(on: app.db).filter(\.$status == "held").all()
            #expect(held.count == 2 && held.allSatisfy { $0.patientMRN == "MRN10001" && $0.hospitalID != nil })

            // A resend of a held message is still held (AE), not an AA the LIS would take as applied.
            let resend = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            #expect(resend.outcome == .duplicate && resend.messageID == result.messageID)
            #expect(try Self.ack(resend)["MSA-1"] == "AE")

            // IT sees them waiting.
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.get("/api/v1/hl7/messages?status=held").decode([HL7MessageDTO].self).count == 2)

            // The admission arrives: the held messages are applied, in the order they came.
            #expect(try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7")).outcome == .accepted)
            try await app.rounds.dispatchOutbox(on: app.db)
            let releases = try await HL7MessageRecord.query(on: app.db).filter(\.$replayOf != nil).sort(\.$id).all()
            #expect(releases.map(\.replayOf) == [order.messageID, result.messageID])
            #expect(releases.allSatisfy { $0.status == "accepted" && $0.peer?.contains("ADT^A01") == true })
            #expect(try await ClinicalOrder.query(on: app.db).filter(\.$placerNumber == "ORD7788").count() == 1)
            #expect(try await Observation.query(on: app.db).filter(\.$code == "2823-3").first()?.value == "6.9")
            #expect(try await CriticalAlert.query(on: app.db).count() == 1)
            let statuses = try await [order, result].asyncMap { try await HL7MessageRecord.find($0.messageID, on: app.db)?.status }
            #expect(statuses == ["released", "released"])

            // A release that still cannot apply stays held, its replay kept with the reason.
            let dc = try Self.message("orm_o01_change.hl7") {
                try $0.set("ORC-1", "DC"); try $0.set("ORC-2-1", "ORD0000"); try $0.set("MSH-10", "DC-1")
                try $0.set("PID-3-1", "MRN10002")
            }
            let waiting = try await Self.receive(app, dc)
            #expect(waiting.outcome == .held)
            let admit = try Self.message("adt_a01_utf8.hl7") {
                try $0.set("PID-3(1)-1", "MRN10002"); try $0.set("MSH-10", "ADM-2"); try $0.set("PV1-19", "V2"); try $0.set("PV1-3-3", "2")
            }
            #expect(try await Self.receive(app, admit).outcome == .accepted)
            #expect(try await HL7MessageRecord.find(waiting.messageID, on: app.db)?.status == "held")
            let failed = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$replayOf == waiting.messageID).first())
            #expect(failed.status == "error" && failed.error?.contains("ORD0000 is not known") == true)

            // Released: a late resend is an ordinary duplicate now.
            let late = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            #expect(try late.outcome == .duplicate && Self.ack(late)["MSA-1"] == "AA")
            #expect(try await Observation.query(on: app.db).filter(\.$code == "2823-3").count() == 1)

            // Over HTTP a held message is 202: stored, not applied.
            let lis = Client(app)
            try await lis.login("admin")
            let other = try Self.message("oru_r01_critical_k.hl7") { try $0.set("PID-3-1", "MRN99999"); try $0.set("MSH-10", "H-1") }
            let http = try await lis.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2", "X-CSRF-Token": lis.csrf ?? ""],
                                             body: ByteBuffer(bytes: other))
            #expect(http.status == .accepted)
            #expect(try HL7Message.parse(bytes: Array(buffer: http.body)).0["MSA-1"] == "AE")
        }
    }

    // MARK: What the mapping used to drop

    @Test(arguments: Backend.all)
    func commentsCodedTextAndEveryEmbeddedDocumentAreKeptAndShown(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7"))
            let culture = try await Self.receive(app, [
                "MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121160000||ORU^R01^ORU_R01|MIC-1|P|2.5.1",
                "PID|1||MRN10001^^^ARION^MR||王^建国", "PV1|1|I|LUNG^12^1^ARION||||D001^李^明",
                "OBR|1|ORD9101^HIS|MIC5501^LIS|600-7^Blood culture^LN|||20261121150000",
                "NTE|1||标本采集于右臂",
                "OBX|1|CWE|600-7^Blood culture^LN||POS^阳性^L||||||F",
                "NTE|1||SEE COMMENTS: 革兰阳性球菌，疑似金黄色葡萄球菌~请结合临床",
                "OBX|2|ST|18907-6^Gram stain^LN||SEE COMMENTS||||||F",
                "NTE|2||成簇排列",
            ])
            #expect(culture.outcome == .accepted)
            let positive = try #require(try await Observation.query(on: app.db).filter(\.$code == "600-7").first())
            #expect(positive.value == "POS" && positive.valueText == "阳性")
            #expect(positive.comment == "标本采集于右臂\nSEE COMMENTS: 革兰阳性球菌，疑似金黄色葡萄球菌\n请结合临床")
            let gram = try #require(try await Observation.query(on: app.db).filter(\.$code == "18907-6").first())
            #expect(gram.comment == "标本采集于右臂\n成簇排列")
            // The reference ORU's NTE follows its sodium result.
            _ = try await Self.receive(app, HL7Fixtures.bytes("oru_r01_critical_k.hl7"))
            #expect(try await Observation.query(on: app.db).filter(\.$code == "2951-2").first()?.comment?.contains("closed-loop") == true)

            // A report with two PDFs and a comment keeps both.
            let mdm = String(decoding: try HL7Fixtures.bytes("mdm_t02_pathology_pdf.hl7"), as: UTF8.self)
                .split(separator: "\r").map(String.init)
            let pdf = try #require(mdm.first { $0.hasPrefix("OBX|2|ED") })
            let two = mdm.map { $0.replacingOccurrences(of: "MSG00005", with: "MSG00005B") }
                + [pdf.replacingOccurrences(of: "OBX|2|", with: "OBX|3|"), "NTE|1||冰冻切片与石蜡切片结果一致"]
            let report = try await Self.receive(app, two)
            #expect(report.outcome == .accepted)
            let stored = try #require(try await ClinicalReport.query(on: app.db).filter(\.$sourceMessageID == report.messageID!).first())
            #expect(stored.attachmentIDs.count == 2 && stored.attachmentID == stored.attachmentIDs.first)
            #expect(stored.comment == "冰冻切片与石蜡切片结果一致")
            let files = try await Attachment.query(on: app.db).filter(\.$sourceMessageID == report.messageID!).all()
            #expect(Set(files.compactMap(\.id)) == Set(stored.attachmentIDs) && files.allSatisfy { $0.contentType == "application/pdf" })
            #expect(Set(files.map(\.filename)).count == 2)
            let event = try #require(try await OutboxEvent.query(on: app.db).filter(\.$kind == "report.received")
                .filter(\.$sourceMessageID == report.messageID!).first())
            let payload = try JSONDecoder().decode(ClinicalEvent.ReportReceived.self, from: Data(event.payload.utf8))
            #expect(payload.allAttachmentIDs == stored.attachmentIDs && payload.comment == stored.comment)

            // The chart shows them all, and the group's card has a button per document.
            let doctor = Client(app)
            try await doctor.login("li.ming")
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            let html = try await doctor.page("/patients/\(patient.id!)").body.string
            #expect(html.contains("阳性（POS）"))
            #expect(html.contains("革兰阳性球菌") && html.contains("冰冻切片与石蜡切片结果一致"))
            for id in stored.attachmentIDs { #expect(html.contains("/attachments/\(id)")) }
            let card = ChatService.reportCard(payload, patientID: patient.id)
            #expect(card.buttons.filter { $0.url?.hasPrefix("/attachments/") == true }.count == 2)
        }
    }

    /// A coded critical result is raised by its words, and read back by them.
    @Test func aCodedCriticalResultIsReadBackByItsText() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            _ = try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7"))
            let receipt = try await Self.receive(app, [
                "MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121160000||ORU^R01|MIC-2|P|2.5.1",
                "PID|1||MRN10001^^^ARION^MR||王^建国", "PV1|1|I|LUNG^12^1^ARION||||D001^李^明",
                "OBR|1|ORD9102^HIS|MIC5502^LIS|600-7^Blood culture^LN",
                "OBX|1|CWE|600-7^Blood culture^LN||POS^阳性^L|||AA|||F",
            ])
            #expect(receipt.outcome == .accepted)
            try await app.rounds.dispatchOutbox(on: app.db)
            let alert = try #require(try await CriticalAlert.query(on: app.db).first())
            #expect(alert.value == "阳性")
        }
    }

    // MARK: OML^O21

    @Test(arguments: Backend.all)
    func theVersion251LaboratoryOrderIsMappedLikeORM(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            _ = try await Self.receive(app, HL7Fixtures.bytes("adt_a01_utf8.hl7"))
            let oml = try await Self.receive(app, [
                "MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121170000||OML^O21^OML_O21|OML-1|P|2.5.1",
                "PID|1||MRN10001^^^ARION^MR||王^建国", "PV1|1|I|LUNG^12^1^ARION||||D001^李^明",
                "ORC|NW|LAB8001^HIS|||||||20261121165500|N007^张^丽||D001^李^明",
                "TQ1|1||||||||S",
                "OBR|1|LAB8001^HIS||2823-3^血钾^LN|S",
                "SPM|1|||BLD^全血",
                "NTE|1||空腹采血",
            ])
            #expect(oml.outcome == .accepted, "\(oml.detail ?? "")")
            let order = try #require(try await ClinicalOrder.query(on: app.db).filter(\.$placerNumber == "LAB8001").first())
            #expect(order.description == "血钾" && order.status == "active" && order.details.contains("空腹采血"))
            #expect(try await OutboxEvent.query(on: app.db).filter(\.$kind == "order.created").count() == 1)
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
