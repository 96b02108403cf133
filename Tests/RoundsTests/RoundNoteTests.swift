import FluentKit
import Foundation
import NIOCore
import RoundsCore
import RoundsHL7
@testable import RoundsChat
@testable import RoundsDirectory
@testable import RoundsIntegration
@testable import RoundsRoundNotes
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// Ward-round notes on SQLite and PostgreSQL: a recording transcribed by the hospital's
/// recogniser and sectioned by its model, both local fakes that speak the OpenAI-style
/// protocols (and fail in every way: the doctor can always type); typed notes sectioned by the
/// rules; saving with a stale revision; signing and correcting as versions; MDM^T02/T10 to the
/// HIS with its answer shown; the card in the group; permissions both ways; recordings deleted
/// when their time is up.
@Suite struct RoundNoteTests {
    static let audio = Data((0..<4000).map { UInt8($0 % 251) })

    static func settings(_ app: Application, _ admin: Client, _ hospitalID: String, _ change: RoundNoteService.SettingsChange) async throws -> RoundNoteService.Settings {
        let response = try await admin.json(.PUT, "/api/v1/hospitals/\(hospitalID)/round-note-settings", change)
        #expect(response.status == .ok, "\(response.body.string)")
        return try response.decode(RoundNoteService.Settings.self)
    }

    static func record(_ doctor: Client, _ patientID: String, key: String, type: String = "audio/webm") async throws -> TestingHTTPResponse {
        try await doctor.request(.POST, "/api/v1/patients/\(patientID)/round-notes/recording?idempotencyKey=\(key)",
                                 headers: ["Content-Type": type, "X-CSRF-Token": doctor.csrf ?? ""], body: ByteBuffer(bytes: Array(audio)))
    }

    /// An outbound channel to the HIS that carries clinical documents (MDM).
    static func hisDocumentChannel(_ app: Application, port: Int, at now: Date) async throws {
        let channel = HL7OutboundChannel()
        channel.id = "his-docs"; channel.name = "HIS 病历文书"; channel.host = "127.0.0.1"; channel.port = port; channel.enabled = true
        var routing = OutboundSettings(); routing.messageTypes = ["MDM"]
        channel.settingsJSON = String(decoding: try JSONEncoder().encode(routing), as: UTF8.self)
        channel.version = 1; channel.updatedAt = now
        try await channel.create(on: app.db)
    }

    @Test(arguments: Backend.all)
    func aDictationIsTranscribedSectionedAndTheDoctorCanAlwaysType(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let fake = try await FakeSpeechServer.start()
            defer { Task { await fake.stop() } }
            let hospital = try await Demo.hospital("HK01", app)
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let it = Client(app), doctor = Client(app)
            try await it.login("admin")
            try await doctor.login("li.ming")

            // No recogniser configured: the draft is made, empty, with the reason.
            let unconfigured = try await Self.record(doctor, patient.id!, key: "rec-0")
            #expect(unconfigured.status == .created)
            #expect(try unconfigured.decode(RoundNoteDTO.self).transcriptionError?.contains("no speech recogniser") == true)

            // The keys are stored, never shown; a bad address is refused.
            let saved = try await Self.settings(app, it, hospital.id!, .init(asrURL: fake.base, asrModel: "whisper-small", asrKey: "asr-secret",
                                                                              vocabulary: ["头孢曲松", "莫西沙星"]))
            #expect(saved.hasASRKey && !saved.hasLLMKey && saved.asrURL == fake.base)
            let settingsBody = try await it.get("/api/v1/hospitals/\(hospital.id!)/round-note-settings").body.string
            #expect(!settingsBody.contains("asr-secret"))
            #expect(try await it.json(.PUT, "/api/v1/hospitals/\(hospital.id!)/round-note-settings",
                                      RoundNoteService.SettingsChange(asrURL: "ftp://x")).status == .unprocessableEntity)
            #expect(try await doctor.json(.PUT, "/api/v1/hospitals/\(hospital.id!)/round-note-settings",
                                          RoundNoteService.SettingsChange(asrURL: fake.base)).status == .forbidden)
            // IT runs the organisation, not where patient audio goes; a key in the address is refused.
            let itStaff = Client(app)
            try await itStaff.login("hu.bin")
            #expect(try await itStaff.json(.PUT, "/api/v1/hospitals/\(hospital.id!)/round-note-settings",
                                           RoundNoteService.SettingsChange(asrURL: "http://elsewhere.example")).status == .forbidden)
            #expect(try await it.json(.PUT, "/api/v1/hospitals/\(hospital.id!)/round-note-settings",
                                      RoundNoteService.SettingsChange(asrURL: "http://u:secret@asr.local")).status == .unprocessableEntity)
            #expect(try await it.json(.PUT, "/api/v1/hospitals/\(hospital.id!)/round-note-settings",
                                      RoundNoteService.SettingsChange(llmURL: "http://llm.local/v1?api-key=secret")).status == .unprocessableEntity)

            // The recogniser hears it; the rules section it (no model yet).
            let heard = try await Self.record(doctor, patient.id!, key: "rec-1")
            #expect(heard.status == .created, "\(heard.body.string)")
            let note = try heard.decode(RoundNoteDTO.self)
            #expect(note.source == "voice" && note.structuredBy == "rules" && note.status == "draft")
            #expect(note.sections.examination == "体温36.8℃。" && note.sections.diagnosis == "社区获得性肺炎。" && note.sections.plan == "继续头孢曲松。")
            #expect(note.findings.map(\.name) == ["体温"])
            let sent = try #require(fake.transcriptions.last)
            #expect(sent.model == "whisper-small" && sent.language == "zh" && sent.fileSize == Self.audio.count)
            #expect(sent.prompt.contains("头孢曲松") && sent.authorization == "Bearer asr-secret")
            // A resend of the same recording (its answer was lost) is the same note.
            let again = try await Self.record(doctor, patient.id!, key: "rec-1")
            #expect(try again.decode(RoundNoteDTO.self).id == note.id)
            #expect(fake.transcriptions.count == 1)

            // The recogniser failing in every way: a draft with the reason, never a lost note.
            for (i, mode) in [FakeSpeechServer.Mode.status(.internalServerError), .garbage("<html>oops</html>"), .ok("   "), .slow(seconds: 8)].enumerated() {
                if case .slow = mode { _ = try await Self.settings(app, it, hospital.id!, .init(timeoutSeconds: 5)) }
                fake.answerTranscriptions(mode)
                let failed = try await Self.record(doctor, patient.id!, key: "rec-fail-\(i)")
                #expect(failed.status == .created)
                let draft = try failed.decode(RoundNoteDTO.self)
                #expect(draft.transcriptionError != nil && draft.transcript == nil && draft.status == "draft", "\(mode)")
            }
            let reasons = try await RoundNote.query(on: app.db).all().compactMap(\.transcriptionError)
            #expect(reasons.contains("the speech recogniser answered HTTP 500") && reasons.contains("the speech recogniser's answer has no text")
                    && reasons.contains("the speech recogniser heard nothing") && reasons.contains("the speech recogniser did not answer in time"))
            // Not a recording, or too large: refused, nothing stored.
            #expect(try await Self.record(doctor, patient.id!, key: "rec-x", type: "text/html").status == .unprocessableEntity)
            #expect(try await doctor.request(.POST, "/api/v1/patients/\(patient.id!)/round-notes/recording?idempotencyKey=rec-e",
                                             headers: ["Content-Type": "audio/webm", "X-CSRF-Token": doctor.csrf ?? ""]).status == .unprocessableEntity)

            // With the hospital's model: its sections (checked here); garbage or a timeout → the rules, with the reason.
            fake.answerTranscriptions(.ok("患者今日咳嗽减轻。查体体温三十六度八。诊断社区获得性肺炎。计划继续头孢曲松。"))
            _ = try await Self.settings(app, it, hospital.id!, .init(llmURL: fake.base + "/v1", llmModel: "qwen2.5-7b"))
            let typed = try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/round-notes",
                                              NewRoundNoteBody(idempotencyKey: "typed-1", encounterId: nil, transcript: "患者今日咳嗽减轻。诊断社区获得性肺炎。"))
            let modelled = try typed.decode(RoundNoteDTO.self)
            #expect(modelled.structuredBy == "model" && modelled.sections.complaint == "咳嗽减轻" && modelled.source == "typed")
            let request = try #require(fake.completions.last)
            #expect(request["model"] as? String == "qwen2.5-7b")
            #expect(((request["response_format"] as? [String: Any])?["json_schema"] as? [String: Any])?["strict"] as? Bool == true)
            let answers: [FakeSpeechServer.Mode] = [
                .garbage("not json"), .ok(#"{"complaint":"x"}"#), .ok(#"{"complaint":1,"examination":"","investigations":"","diagnosis":"","plan":""}"#),
                .status(.serviceUnavailable), .slow(seconds: 8),
            ]
            for (i, mode) in answers.enumerated() {
                fake.answerCompletions(mode)
                let fallback = try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/round-notes",
                                                     NewRoundNoteBody(idempotencyKey: "typed-f\(i)", encounterId: nil, transcript: "诊断肺炎。计划继续抗感染。"))
                let n = try fallback.decode(RoundNoteDTO.self)
                #expect(n.structuredBy == "rules" && n.structureNote != nil && n.sections.diagnosis == "肺炎。" && n.sections.plan == "继续抗感染。", "\(mode)")
            }
            #expect(try await Demo.audit("round_note.create", app).count >= 12)
        }
    }

    @Test(arguments: Backend.all)
    func signingMakesVersionsTheHISGetsMDMAndTheGroupACard(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            _ = try await app.rounds.chat.openGroupsForActiveStays(on: app.db)
            let his = try await FakeHL7Peer.start(answering: ["AA", "AA"])
            try await Self.hisDocumentChannel(app, port: his.port, at: clock.now())
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let doctor = Client(app), nurse = Client(app), other = Client(app), headNurse = Client(app)
            try await doctor.login("li.ming")
            try await nurse.login("wang.fang")
            try await other.login("zhou.ting")
            try await headNurse.login("zhang.li")

            // Only the ward's doctors write; its nurses read; a nurse of another ward neither (audited).
            let body = NewRoundNoteBody(idempotencyKey: "n-1", encounterId: nil,
                                        transcript: "患者诉咳嗽减轻，查体体温三十七度，诊断肺癌术后，计划明日拔除引流管")
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/round-notes", body).status == .forbidden)
            let made = try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/round-notes", body)
            #expect(made.status == .created)
            let note = try made.decode(RoundNoteDTO.self)
            #expect(try await nurse.get("/api/v1/round-notes/\(note.id)").status == .ok)
            #expect(try await other.get("/api/v1/round-notes/\(note.id)").status == .forbidden)
            #expect(try await other.get("/api/v1/patients/\(patient.id!)/round-notes").status == .forbidden)
            #expect(try await Demo.audit("round_note.read", app).contains { $0.outcome == "denied" && $0.actorName == "周婷" })

            // Nothing leaves Rounds unsigned.
            #expect(try await app.rounds.dispatchOutbox(on: app.db) >= 0)
            #expect(try await OutboundMessage.query(on: app.db).count() == 0)

            // A save from a stale revision is refused, the newer text kept.
            var edited = note.sections
            edited.plan = "明日拔除引流管，复查胸片。"
            let first = try await doctor.json(.PUT, "/api/v1/round-notes/\(note.id)", SaveRoundNoteBody(sections: edited, revision: note.revision))
            #expect(first.status == .ok)
            var stale = note.sections
            stale.plan = "旧的"
            let conflict = try await doctor.json(.PUT, "/api/v1/round-notes/\(note.id)", SaveRoundNoteBody(sections: stale, revision: note.revision))
            #expect(conflict.status == .conflict)
            let current = try first.decode(RoundNoteDTO.self)
            #expect(current.sections.plan == "明日拔除引流管，复查胸片。")
            // A refused save is audited (and the refusal kept).
            #expect(try await nurse.json(.PUT, "/api/v1/round-notes/\(note.id)", SaveRoundNoteBody(sections: stale, revision: current.revision)).status == .forbidden)
            #expect(try await Demo.audit("round_note.update", app).contains { $0.outcome == "denied" && $0.actorName == "王芳" })
            // An empty note, or a nurse, cannot sign.
            #expect(try await nurse.json(.POST, "/api/v1/round-notes/\(note.id)/sign", SaveRoundNoteBody(sections: nil, revision: current.revision)).status == .forbidden)
            #expect(try await doctor.json(.POST, "/api/v1/round-notes/\(note.id)/sign",
                                          SaveRoundNoteBody(sections: NoteSections(), revision: current.revision)).status == .unprocessableEntity)

            // Signed: version 1, MDM^T02 to the HIS, a card in the group.
            let signed = try await doctor.json(.POST, "/api/v1/round-notes/\(note.id)/sign", SaveRoundNoteBody(sections: nil, revision: current.revision))
            #expect(signed.status == .ok, "\(signed.body.string)")
            let v1 = try signed.decode(RoundNoteDTO.self)
            #expect(v1.status == "signed" && v1.signedVersion == 1 && v1.versions?.count == 1)
            #expect(try await doctor.json(.POST, "/api/v1/round-notes/\(note.id)/sign", SaveRoundNoteBody(sections: nil, revision: v1.revision)).status == .conflict)
            _ = try await app.rounds.dispatchOutbox(on: app.db)
            _ = try await app.rounds.outbound.runOnce(on: app.db)
            let outbound = try await OutboundMessage.query(on: app.db).sort(\.$createdAt).all()
            #expect(outbound.count == 1 && his.received == [v1.versions?.first?.controlId ?? ""])
            let mdm = try HL7Message.parse(bytes: Array(try #require(outbound.first).raw)).0
            #expect(mdm.messageType == "MDM" && mdm.triggerEvent == "T02" && mdm["PID-3-1"] == patient.mrn && mdm["TXA-17"] == "AU" && mdm["TXA-12"] == v1.versions?.first?.documentNumber)
            #expect(mdm.segments.filter { $0.name == "OBX" }.count == 4)
            #expect(mdm.encode().contains("明日拔除引流管，复查胸片。"))
            let shown = try await doctor.get("/api/v1/round-notes/\(note.id)").decode(RoundNoteDTO.self)
            #expect(shown.versions?.first?.his.first?.status == "sent" && shown.versions?.first?.his.first?.ackCode == "AA")
            let group = try #require(try await app.rounds.chat.group(forPatient: patient.id!, encounterID: note.encounterId, on: app.db))
            let cards = try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).all().compactMap(\.card)
                .compactMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }
            #expect(cards.contains { $0.title == "查房记录已签名" && $0.buttons.first?.url == "/round-notes/\(note.id)" })

            // The next dictation's prompt carries the patient's diagnosis as signed.
            let fake = try await FakeSpeechServer.start()
            defer { Task { await fake.stop() } }
            let admin = Client(app)
            try await admin.login("admin")
            _ = try await Self.settings(app, admin, try await Demo.hospital("HK01", app).id!, .init(asrURL: fake.base))
            _ = try await Self.record(doctor, patient.id!, key: "after-sign")
            #expect(fake.transcriptions.last?.prompt.contains("肺癌术后") == true)

            // A correction: version 2, the first kept, MDM^T10 naming what it replaces.
            var corrected = shown.sections
            corrected.diagnosis = "右肺上叶腺癌术后"
            let draft = try await doctor.json(.PUT, "/api/v1/round-notes/\(note.id)", SaveRoundNoteBody(sections: corrected, revision: shown.revision))
            #expect(try draft.decode(RoundNoteDTO.self).status == "draft")
            let v2 = try await doctor.json(.POST, "/api/v1/round-notes/\(note.id)/sign",
                                           SaveRoundNoteBody(sections: nil, revision: try draft.decode(RoundNoteDTO.self).revision)).decode(RoundNoteDTO.self)
            #expect(v2.signedVersion == 2 && v2.versions?.map(\.version) == [2, 1] && v2.versions?.last?.sections.diagnosis == "肺癌术后。")
            _ = try await app.rounds.dispatchOutbox(on: app.db)
            _ = try await app.rounds.outbound.runOnce(on: app.db)
            let both = try await OutboundMessage.query(on: app.db).sort(\.$createdAt).all()
            #expect(both.count == 2 && his.received.count == 2)
            let t10 = try HL7Message.parse(bytes: Array(try #require(both.last).raw)).0
            #expect(t10.triggerEvent == "T10" && t10["TXA-13"] == v1.versions?.first?.documentNumber)

            // Search and the ward's day; the head nurse reads them.
            let ward = try await Demo.department("LUNG", app)
            #expect(try await nurse.get("/api/v1/patients/\(patient.id!)/round-notes?q=腺癌").decode([RoundNoteDTO].self).map(\.id) == [note.id])
            #expect(try await nurse.get("/api/v1/patients/\(patient.id!)/round-notes?q=胰腺炎").decode([RoundNoteDTO].self).isEmpty)
            #expect(try await headNurse.get("/api/v1/wards/\(ward.id!)/round-notes").decode([RoundNoteDTO].self).map(\.id).contains(note.id))
            #expect(try await other.get("/api/v1/wards/\(ward.id!)/round-notes").status == .forbidden)
            await his.stop()
        }
    }

    @Test(arguments: Backend.all)
    func recordingsAreDeletedWhenTheirTimeIsUpAndTheDeletionAudited(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let fake = try await FakeSpeechServer.start()
            defer { Task { await fake.stop() } }
            let hospital = try await Demo.hospital("HK01", app)
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let admin = Client(app), doctor = Client(app)
            try await admin.login("admin")
            try await doctor.login("li.ming")
            _ = try await Self.settings(app, admin, hospital.id!, .init(asrURL: fake.base, audioRetentionDays: 7))
            let note = try await Self.record(doctor, patient.id!, key: "keep-7").decode(RoundNoteDTO.self)
            let played = try await doctor.request(.GET, "/round-notes/\(note.id)/audio")
            #expect(played.status == .ok && played.headers.first(name: "Content-Security-Policy")?.contains("sandbox") == true)
            #expect(try await app.rounds.roundNotes.deleteExpiredAudio(on: app.db) == 0)
            clock.advance(by: 7 * 86_400 + 1)
            #expect(try await app.rounds.roundNotes.deleteExpiredAudio(on: app.db) == 1)
            try await doctor.login("li.ming")  // a week later: a new session
            #expect(try await RoundNoteAudio.query(on: app.db).count() == 0)
            let deleted = try #require(try await Demo.audit("round_note.audio_deleted", app).first)
            #expect(deleted.entityID == note.id && deleted.patientID == patient.id)
            #expect(try await doctor.request(.GET, "/round-notes/\(note.id)/audio").status == .notFound)
            // The note itself stays.
            #expect(try await doctor.get("/api/v1/round-notes/\(note.id)").status == .ok)
        }
    }

    @Test func whyARecordingWasNotTranscribedReadsInTheDoctorsLanguage() {
        #expect(RoundNotePages.reason("the speech recogniser answered HTTP 500", .zhCN) == "语音识别服务返回错误（HTTP 500）")
        #expect(RoundNotePages.reason("the language model did not answer in time", .zhCN) == "语言模型响应超时")
        #expect(RoundNotePages.reason("no speech recogniser is configured for this hospital", .zhCN) == "本院尚未配置语音识别服务")
        #expect(RoundNotePages.reason("the language model's note has no plan", .zhCN) == "语言模型的回答无法使用")
        #expect(RoundNotePages.reason("the speech recogniser heard nothing", .en) == "the speech recogniser heard nothing")
    }

    @Test func theMDMMessageCarriesThePatientTheAuthorAndEachSection() throws {
        let patient = Patient()
        patient.id = "p"; patient.mrn = "MRN|1"; patient.name = "张三"; patient.birthDate = "1956-03-12"; patient.gender = .male; patient.hospitalID = "h"
        let note = ClinicalEvent.DocumentSigned(noteID: "n", version: 1, documentNumber: "RN1-1", replacesDocumentNumber: nil, controlID: "RNC1",
                                                 title: "查房记录", authorName: "李明", authorHISID: "D001", signedAt: Date(timeIntervalSince1970: 1_765_000_000),
                                                 sections: [.init(code: "plan", title: "诊疗计划/医嘱建议", text: "继续抗感染\n复查血常规")])
        let message = ClinicalDocument.message(note, patient: patient, encounter: nil, wardCode: "LUNG", bed: "12", hospitalCode: "HK01",
                                                timeZone: TimeZone(identifier: "Asia/Shanghai")!)
        let parsed = try HL7Message.parse(message.encode())
        #expect(parsed["PID-3-1"] == "MRN|1" && parsed["PID-7"] == "19560312" && parsed["PV1-3-3"] == "12" && parsed["TXA-5-1"] == "D001")
        #expect(parsed["OBX-3-1"] == "RN-plan" && parsed["OBX-5"] == "继续抗感染\n复查血常规")
        #expect(parsed["MSH-10"] == "RNC1" && parsed["EVN-1"] == "T02")
    }
}
