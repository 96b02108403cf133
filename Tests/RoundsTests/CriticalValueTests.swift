import FluentKit
import Foundation
import RoundsCore
@testable import RoundsAlerts
@testable import RoundsChat
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// Critical values with an injected clock: the alert, each escalation step at its due time
/// exactly once, acknowledgement stopping the ladder, the action closing the loop, a restart in
/// the middle resuming.
@Suite struct CriticalValueTests {
    /// Admission, then the K+ 6.9 result; returns the alert.
    static func raise(_ app: Application) async throws -> CriticalAlert {
        try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
        try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("oru_r01_critical_k.hl7"))
        return try #require(try await CriticalAlert.query(on: app.db).first())
    }

    static func steps(_ app: Application, _ alert: CriticalAlert) async throws -> [String] {
        try await AlertStep.query(on: app.db).filter(\.$alertID == alert.id!).sort(\.$id).all().map { "\($0.kind)\($0.level)" }
    }

    @Test(arguments: Backend.all)
    func unacknowledgedAlertsClimbTheLadderOneStepAtATime(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let alert = try await Self.raise(app)
            #expect(alert.status == "open" && alert.testName == "Potassium" && alert.value == "6.9")
            let group = try await PatientGroupTests.group(app)
            let card = try #require(try await ChatMessage.find(alert.cardMessageID, on: app.db))
            let decoded = try JSONDecoder().decode(Card.self, from: Data(card.card!.utf8))
            // The card links to its own alert, where acknowledging takes a read-back; it has no
            // button that acknowledges by itself.
            #expect(decoded.severity == .critical && decoded.buttons.contains { $0.url == "/alerts/\(alert.id!)" })
            #expect(!decoded.buttons.contains { $0.action != nil })
            #expect(card.groupID == group.id)

            let alerts = app.rounds.alerts
            clock.advance(by: 4 * 60 + 59)
            #expect(try await alerts.escalateDue(on: app.db) == 0)
            clock.advance(by: 1)  // 5 minutes: ward doctors and head nurse
            #expect(try await alerts.escalateDue(on: app.db) == 1)
            #expect(try await alerts.escalateDue(on: app.db) == 0)  // exactly once
            #expect(try await PatientGroupTests.memberNames(app, group).contains("chen.jing"))
            clock.advance(by: 5 * 60)  // 10: the department's consultant
            #expect(try await alerts.escalateDue(on: app.db) == 1)
            #expect(try await PatientGroupTests.memberNames(app, group).contains("yang.guang"))
            clock.advance(by: 5 * 60)  // 15: medical affairs
            #expect(try await alerts.escalateDue(on: app.db) == 1)
            #expect(try await PatientGroupTests.memberNames(app, group).contains("ma.jun"))
            clock.advance(by: 3600)
            #expect(try await alerts.escalateDue(on: app.db) == 0)
            #expect(try await Self.steps(app, alert) == ["raised0", "escalated1", "escalated2", "escalated3"])
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.level == 3)
            #expect(try await Demo.audit("alert.escalate", app).count == 3)
        }
    }

    @Test(arguments: Backend.all)
    func acknowledgementStopsTheLadderAndTheActionClosesTheLoop(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let alert = try await Self.raise(app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            // Acting before acknowledging is refused.
            let early = try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/action", AlertActionBody(kind: "retest", text: nil))
            #expect(early.status == .conflict)

            clock.advance(by: 3 * 60)
            // An old card's "acknowledge" action no longer acknowledges (no read-back): refused.
            let pressed = try await nurse.json(.POST, "/api/v1/messages/\(alert.cardMessageID!)/actions", ActionBody(action: "acknowledge_alert"))
            #expect(pressed.status == .unprocessableEntity)
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "open")
            // Without a read-back, or with one that does not repeat the value: refused, nothing stored.
            for readBack: String? in [nil, "", "   ", "收到", "血钾 9.6"] {
                let refused = try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/acknowledge", AcknowledgeBody(readBack: readBack))
                #expect(refused.status == .unprocessableEntity, "\(readBack ?? "nil")")
            }
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "open")
            #expect(try await AlertEscalation.query(on: app.db).filter(\.$status == "pending").count() == 3)
            // The value read back (full-width digits as a Chinese keyboard types them count too).
            let ok = try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/acknowledge", AcknowledgeBody(readBack: "血钾 ６．９ 已复述"))
            #expect(ok.status == .ok)
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.readBack == "血钾 ６．９ 已复述")
            let acknowledged = try #require(try await CriticalAlert.find(alert.id, on: app.db))
            #expect(acknowledged.status == "acknowledged" && acknowledged.acknowledgedByName == "王芳")
            #expect(acknowledged.acknowledgedAt == clock.now())
            let card = try JSONDecoder().decode(Card.self, from: Data(try #require(try await ChatMessage.find(alert.cardMessageID, on: app.db)?.card).utf8))
            #expect(card.severity == .success && card.fields.contains { $0.label == "已确认" && $0.value.hasPrefix("王芳") })

            clock.advance(by: 3600)
            #expect(try await app.rounds.alerts.escalateDue(on: app.db) == 0)
            #expect(try await AlertEscalation.query(on: app.db).filter(\.$status == "cancelled").count() == 3)

            let bad = try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/action", AlertActionBody(kind: "dance", text: nil))
            #expect(bad.status == .unprocessableEntity)
            let closed = try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/action", AlertActionBody(kind: "medication", text: "葡萄糖酸钙 + 胰岛素"))
            #expect(closed.status == .ok)
            #expect(try closed.decode(AlertDTO.self).status == "closed")
            #expect(try await Self.steps(app, alert) == ["raised0", "acknowledged0", "action0", "closed0"])
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/action", AlertActionBody(kind: "retest", text: nil)).status == .conflict)

            // Outside the care team: no acknowledging, audited.
            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.json(.POST, "/api/v1/alerts/\(alert.id!)/acknowledge", AcknowledgeBody(readBack: nil)).status == .forbidden)
            #expect(try await Demo.audit("alert.acknowledge", app).contains { $0.outcome == "denied" })
        }
    }

    /// The server stops after the first step; the next process fires the rest at their times.
    @Test(arguments: Backend.all)
    func aRestartInTheMiddleResumes(_ backend: Backend) async throws {
        let (location, dispose) = try await TestDatabases.shared.make(backend)
        let clock = TestClock()
        var apps: [Application] = []
        do {
            let first = try await Application.make(.testing)
            first.logger.logLevel = .warning
            apps.append(first)
            try await configure(first, TestApp.configuration(location, clock: clock))
            let alert = try await Self.raise(first)
            clock.advance(by: 5 * 60)
            #expect(try await first.rounds.alerts.escalateDue(on: first.db) == 1)
            try await first.asyncShutdown()
            apps.removeAll()

            clock.advance(by: 10 * 60)  // down for ten minutes: two steps are now due
            let second = try await Application.make(.testing)
            second.logger.logLevel = .warning
            apps.append(second)
            try await configure(second, TestApp.configuration(location, clock: clock))
            #expect(try await second.rounds.alerts.escalateDue(on: second.db) == 2)
            #expect(try await second.rounds.alerts.escalateDue(on: second.db) == 0)
            #expect(try await Self.steps(second, alert) == ["raised0", "escalated1", "escalated2", "escalated3"])
        } catch {
            for app in apps { try? await app.asyncShutdown() }
            await dispose()
            throw error
        }
        for app in apps { try await app.asyncShutdown() }
        await dispose()
    }

    /// Two workers (processes) at once never fire a step twice.
    @Test(arguments: Backend.all)
    func twoWorkersFireEachStepOnce(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let alert = try await Self.raise(app)
            clock.advance(by: 20 * 60)
            let alerts = app.rounds.alerts
            let fired = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<3 { group.addTask { try await alerts.escalateDue(on: app.db) } }
                return try await group.reduce(0, +)
            }
            #expect(fired == 3)
            #expect(try await AlertStep.query(on: app.db).filter(\.$alertID == alert.id!).filter(\.$kind == "escalated").count() == 3)
        }
    }
}
