import FluentKit
import Foundation
import Logging
import RoundsCore
import RoundsHL7
@testable import RoundsChat
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor

/// The outbox under load: batches in one transaction, a failing event retried alone, critical
/// values first (in the queue, at SQLite's single writer, and in the realtime feed's late look).
@Suite struct OutboxDispatchTests {
    actor Recorder {
        private(set) var items: [String] = []
        func add(_ item: String) { items.append(item) }
    }

    static func event(_ app: Application, kind: String, patientID: String) async throws -> OutboxEvent {
        let event = OutboxEvent()
        event.id = app.rounds.configuration.ids.next()
        event.kind = kind
        event.patientID = patientID
        event.payload = "{}"
        event.createdAt = Date()
        event.attempts = 0
        try await event.create(on: app.db)
        return event
    }

    /// A handler that writes one audit row per event (inside the dispatch transaction).
    static func auditing(_ app: Application, failing: String? = nil, recorder: Recorder? = nil,
                         onHandle: (@Sendable (OutboxEvent) -> Void)? = nil) -> OutboxDispatcher.Handler {
        let audit = app.rounds.audit
        return { event, tx in
            await recorder?.add(event.id!)
            onHandle?(event)
            if event.id == failing { throw RoundsError.validation("this event cannot be handled") }
            try await audit.record("test.handle", entityType: "outbox_event", entityID: event.id, actorKind: "system",
                                   actorID: nil, actorName: "test", clientAddress: nil, on: tx)
        }
    }

    /// Dispatches round after round until a round delivers nothing (a routine batch may yield
    /// to other tests' critical values at the shared SQLite writer); returns how many in all.
    static func drain(_ app: Application, handler: @escaping OutboxDispatcher.Handler) async throws -> Int {
        var done = 0
        while case let n = try await app.rounds.outbox.dispatchPending(on: app.db, handler: handler), n > 0 { done += n }
        return done
    }

    static func handledCount(_ app: Application, _ id: String) async throws -> Int {
        try await AuditEvent.query(on: app.db).filter(\.$action == "test.handle").filter(\.$entityID == id).count()
    }

    @Test(arguments: Backend.all)
    func aFailingEventInABatchIsRetriedAloneAndTheOthersAreDeliveredOnce(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let first = try await Self.event(app, kind: "order.changed", patientID: "p1")
            let bad = try await Self.event(app, kind: "order.changed", patientID: "p2")
            let third = try await Self.event(app, kind: "order.changed", patientID: "p3")
            // The last round is the failing event alone again, and delivers nothing.
            #expect(try await Self.drain(app, handler: Self.auditing(app, failing: bad.id)) == 2)
            for good in [first, third] {
                let stored = try #require(try await OutboxEvent.find(good.id, on: app.db))
                #expect(stored.dispatchedAt != nil && stored.attempts == 0)
                // The batch that failed was rolled back: its writes are not there twice.
                #expect(try await Self.handledCount(app, good.id!) == 1)
            }
            let failed = try #require(try await OutboxEvent.find(bad.id, on: app.db))
            #expect(failed.dispatchedAt == nil && failed.attempts == 2 && failed.lastError?.contains("cannot be handled") == true)
            #expect(try await Self.handledCount(app, bad.id!) == 0)
        }
    }

    @Test(arguments: Backend.all)
    func aPatientWithACriticalValueGoesFirstWithItsEarlierEventsInOrder(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let routine = try await Self.event(app, kind: "order.changed", patientID: "routine")
            let admission = try await Self.event(app, kind: "patient.admitted", patientID: "critical")
            let other = try await Self.event(app, kind: "observation.result", patientID: "routine")
            let critical = try await Self.event(app, kind: "observation.critical", patientID: "critical")
            let recorder = Recorder()
            #expect(try await Self.drain(app, handler: Self.auditing(app, recorder: recorder)) == 4)
            #expect(await recorder.items == [admission.id!, critical.id!, routine.id!, other.id!])
        }
    }

    @Test(arguments: Backend.all)
    func aRoutineBatchYieldsWhenACriticalValueArrives(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            var routine: [OutboxEvent] = []
            for n in 0..<5 { routine.append(try await Self.event(app, kind: "order.changed", patientID: "p\(n)")) }
            let dispatcher = app.rounds.outbox
            // A critical value commits while the first routine event is being handled.
            let done = try await dispatcher.dispatchPending(on: app.db, handler: Self.auditing(app) { _ in dispatcher.signalUrgent() })
            #expect(done == 1)
            #expect(try await OutboxEvent.find(routine[0].id, on: app.db)?.dispatchedAt != nil)
            #expect(try await OutboxEvent.find(routine[1].id, on: app.db)?.dispatchedAt == nil)
            // The next rounds start afresh and finish the rest.
            #expect(try await Self.drain(app, handler: Self.auditing(app)) == 4)
        }
    }

    @Test func criticalWaitersGoFirstAtTheSQLiteWriter() async throws {
        let gate = SQLiteWriteGate()
        let order = Recorder()
        try await gate.acquire()
        let routine = Task { try await gate.acquire(); await order.add("routine"); await gate.release() }
        while await gate.waitingCount < 1 { await Task.yield() }
        let urgent = Task { try await gate.acquire(urgent: true); await order.add("urgent"); await gate.release() }
        while await gate.waitingCount < 2 { await Task.yield() }
        #expect(await gate.hasUrgentWaiters)
        await gate.release()
        _ = try await (routine.value, urgent.value)
        #expect(await order.items == ["urgent", "routine"])
        #expect(await gate.waitingCount == 0)
    }

    @Test func resultMessagesCarryingACriticalValueAreToldBeforeTheyAreStored() throws {
        let potassium = CriticalValueRule(id: "k", code: "2823-3", name: "Potassium", unit: "mmol/L", low: 2.8, high: 6.2)
        let flagged = try PatientGroupTests.fixture("oru_r01_critical_k.hl7")
        #expect(ResultMapper.carriesCriticalValue(flagged, rules: []))
        // No flag, but above the configured limit.
        let byRule = try PatientGroupTests.fixture("oru_r01_critical_k.hl7", ["OBX(1)-8": ""])
        #expect(ResultMapper.carriesCriticalValue(byRule, rules: [potassium]))
        #expect(!ResultMapper.carriesCriticalValue(byRule, rules: []))
        let normal = try PatientGroupTests.fixture("oru_r01_critical_k.hl7", ["OBX(1)-8": "N", "OBX(1)-5": "4.1"])
        #expect(!ResultMapper.carriesCriticalValue(normal, rules: [potassium]))
        #expect(!ResultMapper.carriesCriticalValue(try PatientGroupTests.fixture("adt_a01_utf8.hl7"), rules: [potassium]))
    }

    @Test func theFeedDeliversAMessageCommittedAfterANewerOne() async throws {
        try await TestApp.with(.sqlite) { app, clock in
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let group = try await PatientGroupTests.group(app)
            let member = try #require(try await ChatMember.query(on: app.db).filter(\.$groupID == group.id!).first())
            let feed = ChatFeed(clock: clock, notifier: app.rounds.notifier, logger: Logger(label: "test"), safetyTick: .seconds(60),
                                database: { app.db })
            await feed.start()
            let received = Recorder()
            _ = await feed.connect(staffID: member.staffID) { text in await received.add(text) }
            let ids = app.rounds.configuration.ids
            let earlier = ids.next(), later = ids.next()
            func post(_ id: String) async throws {
                let message = ChatMessage()
                message.id = id
                message.groupID = group.id!
                message.kind = "text"
                message.senderName = "test"
                message.text = "message \(id)"
                message.createdAt = clock.now()
                try await message.create(on: app.db)
            }
            func arrived(_ id: String) async throws -> Bool {
                for _ in 0..<60 {
                    if await received.items.contains(where: { $0.contains(id) }) { return true }
                    app.rounds.notifier.broadcastLocally(.chat)
                    try await Task.sleep(for: .milliseconds(100))
                }
                return false
            }
            try await post(later)
            #expect(try await arrived(later))
            // Its transaction committed late: the id is below what the feed has seen.
            try await post(earlier)
            #expect(try await arrived(earlier))
            #expect(await received.items.filter { $0.contains(later) }.count == 1)
            await feed.stop()
        }
    }
}
