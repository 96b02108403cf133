import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// Outbound delivery of critical values: the hospital's connectors (Feishu, WeCom, SMS, e-mail,
/// HL7 back to the LIS), a queue row per notice written in the same transaction as the step it
/// tells of, and a worker that sends them with retries.
extension AlertService {
    public static let maximumDeliveryAttempts = 8

    /// Pause before attempt n+1: 5, 10, 20 … seconds, at most five minutes.
    static func deliveryBackoff(afterAttempts attempts: Int) -> TimeInterval {
        min(300, 5 * pow(2, Double(max(0, attempts - 1))))
    }

    /// Queues this step for every enabled connector of the alert's hospital that hears of it.
    func enqueueDeliveries(_ alert: CriticalAlert, event: AlertNotice.Event, level: Int, recipients: [String],
                           on db: any Database) async throws {
        let connectors = try await AlertConnectorRow.query(on: db).filter(\.$hospitalID == alert.hospitalID)
            .filter(\.$enabled == true).all()
        let now = clock.now()
        for connector in connectors {
            guard let kind = connector.connectorKind, kind.events.contains(event) else { continue }
            if kind == .hl7 {
                // Only values that came over HL7 go back over HL7, and only to the system they came from.
                guard let sourceMessageID = alert.sourceMessageID else { continue }
                if let sender = connector.decodedSettings["sender"], !sender.isEmpty {
                    guard try await senderOfMessage(sourceMessageID, db) == sender else { continue }
                }
            } else if level < connector.minLevel {
                continue
            }
            let row = AlertDelivery()
            row.id = ids.next()
            row.alertID = alert.id!
            row.connectorID = connector.id!
            row.event = event.rawValue
            row.level = level
            row.recipients = recipients.joined(separator: " ")
            row.status = "pending"
            row.attempts = 0
            row.nextAttemptAt = now
            row.createdAt = now
            try await row.create(on: db)
        }
    }

    /// Sends the deliveries that are due; returns how many were attempted. On PostgreSQL rows
    /// are claimed with `FOR UPDATE SKIP LOCKED`, so two processes never send the same one; a
    /// claim lapses after a minute, so a worker that dies mid-send is covered by another.
    @discardableResult
    public func deliverDue(using adapters: [ConnectorKind: any AlertConnector], limit: Int = 20, on db: any Database) async throws -> Int {
        guard let sql = db as? any SQLDatabase else { return 0 }
        let now = clock.now()
        let lock = sql.dialect.name == "postgresql" ? " FOR UPDATE SKIP LOCKED" : ""
        // A plain read first: most of the time nothing is due, and then nothing is written (on
        // SQLite even an UPDATE that matches nothing takes the write lock).
        let anyDue = try await AlertDelivery.query(on: db).filter(\.$status == "pending").filter(\.$nextAttemptAt <= now).count() > 0
        guard anyDue else { return 0 }
        let claimed = try await SQLiteWriteGate.serialised(db, writer: "alert-delivery") {
            try await sql.raw("""
                UPDATE alert_deliveries SET claimed_until = \(bind: now.addingTimeInterval(60))
                WHERE id IN (SELECT id FROM alert_deliveries
                             WHERE status = 'pending' AND next_attempt_at <= \(bind: now)
                               AND (claimed_until IS NULL OR claimed_until < \(bind: now))
                             ORDER BY next_attempt_at LIMIT \(bind: limit)\(unsafeRaw: lock))
                RETURNING id
                """).all().map { try $0.decode(column: "id", as: String.self) }
        }
        guard !claimed.isEmpty else { return 0 }
        for delivery in try await AlertDelivery.query(on: db).filter(\.$id ~~ claimed).sort(\.$nextAttemptAt).all() {
            do {
                guard let connector = try await AlertConnectorRow.find(delivery.connectorID, on: db), connector.enabled,
                      let kind = connector.connectorKind, let adapter = adapters[kind] else {
                    throw ConnectorError("the connector was removed or disabled", permanent: true)
                }
                let settings = connector.decodedSettings
                // The list may have been narrowed since the connector was saved.
                guard permitsDestination(kind, settings) else {
                    throw ConnectorError("the destination is not on the installation's allow-list", permanent: true)
                }
                let notice = try await notice(for: delivery, on: db).disclosing(Self.disclosure(kind, settings))
                try await adapter.deliver(notice, settings: settings)
                delivery.status = "sent"
                delivery.sentAt = clock.now()
                delivery.lastError = nil
            } catch {
                let failure = error as? ConnectorError ?? ConnectorError(String(describing: error))
                delivery.lastError = String(failure.message.prefix(500))
                if failure.permanent || delivery.attempts + 1 >= Self.maximumDeliveryAttempts {
                    delivery.status = "dead"
                } else {
                    delivery.nextAttemptAt = clock.now().addingTimeInterval(Self.deliveryBackoff(afterAttempts: delivery.attempts + 1))
                }
            }
            delivery.attempts += 1
            delivery.claimedUntil = nil
            try await SQLiteWriteGate.serialised(db, writer: "alert-delivery") { try await delivery.save(on: db) }
        }
        return claimed.count
    }

    /// HL7 goes back to the system the value came from and carries everything; notices to
    /// people carry what the connector's `patientData` lets out (minimal unless set).
    static func disclosure(_ kind: ConnectorKind, _ settings: [String: String]) -> AlertNotice.Disclosure {
        kind == .hl7 ? .full : settings[ConnectorKind.disclosureSetting].flatMap(AlertNotice.Disclosure.init(rawValue:)) ?? .minimal
    }

    func permitsDestination(_ kind: ConnectorKind, _ settings: [String: String]) -> Bool {
        let destination = kind.destination(settings)
        if let url = destination.url { return destinations.permits(url: url) }
        if let host = destination.host { return destinations.permits(host: host, port: destination.port) }
        return false
    }

    /// Everything a connector needs to know about one delivery, read fresh from the database.
    func notice(for delivery: AlertDelivery, on db: any Database) async throws -> AlertNotice {
        guard let alert = try await CriticalAlert.find(delivery.alertID, on: db),
              let patient = try await Patient.find(alert.patientID, on: db) else {
            throw ConnectorError("the alert is gone", permanent: true)
        }
        let hospital = try await Hospital.find(alert.hospitalID, on: db)
        var wardName: String?, bed: String?
        if let wardID = alert.wardID { wardName = try await Department.find(wardID, on: db)?.name }
        if let encounterID = alert.encounterID, let bedID = try await Encounter.find(encounterID, on: db)?.bedID {
            bed = try await Bed.find(bedID, on: db)?.label
        }
        let staffIDs = delivery.recipients.split(separator: " ").map(String.init)
        let people = staffIDs.isEmpty ? [] : try await Staff.query(on: db).filter(\.$id ~~ staffIDs).sort(\.$username).all()
        var notice = AlertNotice(event: AlertNotice.Event(rawValue: delivery.event) ?? .raised, level: delivery.level,
                                 alertID: alert.id!, hospitalName: hospital?.name ?? "", wardName: wardName, bed: bed,
                                 patientName: patient.name, mrn: patient.mrn, testCode: alert.testCode, testName: alert.testName,
                                 value: alert.value, unit: alert.unit, flag: alert.flag, raisedAt: alert.raisedAt,
                                 recipients: people.map { .init(name: $0.displayName, mobile: $0.mobile, email: $0.email) })
        notice.acknowledgedBy = alert.acknowledgedByName
        notice.acknowledgedAt = alert.acknowledgedAt
        notice.readBack = alert.readBack
        notice.actionKind = alert.actionKind
        notice.actionText = alert.actionText
        notice.actionAt = alert.actionAt
        notice.sourceMessageID = alert.sourceMessageID
        notice.link = publicURL.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/alerts/\(alert.id!)" }
        return notice
    }

    /// A made-up notice for an administrator's "send a test" button.
    public func testNotice(hospitalName: String, context: RequestContext) -> AlertNotice {
        var notice = AlertNotice(event: .raised, level: 0, alertID: "test", hospitalName: hospitalName, wardName: "测试病区", bed: "0",
                                 patientName: "测试患者", mrn: "TEST", testCode: "TEST", testName: "连接测试（非真实危急值）",
                                 value: "—", unit: nil, flag: nil, raisedAt: clock.now(),
                                 recipients: [.init(name: context.principal.displayName)])
        notice.link = publicURL
        return notice
    }

    // MARK: Connectors

    /// A connector as an administrator sees it: secrets are never shown, only whether they are set.
    public struct ConnectorView: Sendable, Codable {
        public var id: String
        public var hospitalId: String
        public var kind: String
        public var name: String
        public var settings: [String: String]
        public var secretsSet: [String]
        public var minLevel: Int
        public var enabled: Bool
        public var pending: Int
        public var sent: Int
        public var dead: Int
    }

    public struct ConnectorInput: Sendable {
        public var hospitalID: String?
        public var kind: String?
        public var name: String?
        public var settings: [String: String]?
        public var minLevel: Int?
        public var enabled: Bool?
        public init(hospitalID: String? = nil, kind: String? = nil, name: String? = nil, settings: [String: String]? = nil,
                    minLevel: Int? = nil, enabled: Bool? = nil) {
            self.hospitalID = hospitalID; self.kind = kind; self.name = name; self.settings = settings
            self.minLevel = minLevel; self.enabled = enabled
        }
    }

    public func connectors(context: RequestContext, on db: any Database) async throws -> [ConnectorView] {
        let query = AlertConnectorRow.query(on: db).sort(\.$createdAt)
        let hospitals = context.principal.kind == .staff ? context.principal.connectorHospitalIDs : []
        guard hospitals?.isEmpty != true else {
            try await audit.record("alert.connector.list", entityType: "alert_connector", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("connectors are set up by the hospital's administrators")
        }
        if let hospitals { query.filter(\.$hospitalID ~~ Array(hospitals)) }
        var views: [ConnectorView] = []
        for row in try await query.all() { views.append(try await view(row, on: db)) }
        return views
    }

    public func createConnector(_ input: ConnectorInput, context: RequestContext, on db: any Database) async throws -> ConnectorView {
        guard let hospitalID = input.hospitalID, try await Hospital.find(hospitalID, on: db) != nil else {
            throw RoundsError.validation("hospitalId: an existing hospital")
        }
        try await requireConnectorAdmin(hospitalID: hospitalID, action: "alert.connector.create", context: context, on: db)
        guard let kind = input.kind.flatMap(ConnectorKind.init(rawValue:)) else {
            throw RoundsError.validation("kind: one of \(ConnectorKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let row = AlertConnectorRow()
        row.id = ids.next()
        row.hospitalID = hospitalID
        row.kind = kind.rawValue
        row.createdAt = clock.now()
        try apply(input, to: row, kind: kind, previous: [:])
        try await db.transaction { tx in
            try await row.create(on: tx)
            try await audit.record("alert.connector.create", entityType: "alert_connector", entityID: row.id, hospitalID: hospitalID,
                                   detail: "\(kind.rawValue) \(row.name)", context: context, on: tx)
        }
        return try await view(row, on: db)
    }

    /// Changes a connector; settings not named keep their value, so secrets need not be re-entered.
    public func updateConnector(id: String, _ input: ConnectorInput, context: RequestContext, on db: any Database) async throws -> ConnectorView {
        let row = try await connectorRow(id, action: "alert.connector.update", context: context, on: db)
        guard let kind = row.connectorKind else { throw RoundsError.conflict("unknown connector kind \(row.kind)") }
        try apply(input, to: row, kind: kind, previous: row.decodedSettings)
        try await db.transaction { tx in
            try await row.save(on: tx)
            try await audit.record("alert.connector.update", entityType: "alert_connector", entityID: id, hospitalID: row.hospitalID,
                                   detail: "\(kind.rawValue) \(row.name) enabled=\(row.enabled)", context: context, on: tx)
        }
        return try await view(row, on: db)
    }

    public func deleteConnector(id: String, context: RequestContext, on db: any Database) async throws {
        let row = try await connectorRow(id, action: "alert.connector.delete", context: context, on: db)
        try await db.transaction { tx in
            try await AlertDelivery.query(on: tx).filter(\.$connectorID == id).filter(\.$status == "pending").set(\.$status, to: "dead")
                .set(\.$lastError, to: "the connector was removed").update()
            try await row.delete(on: tx)
            try await audit.record("alert.connector.delete", entityType: "alert_connector", entityID: id, hospitalID: row.hospitalID,
                                   detail: "\(row.kind) \(row.name)", context: context, on: tx)
        }
    }

    /// The outcome of "send a test".
    public struct ConnectorTest: Sendable {
        public var delivered: Bool
        /// Generic on purpose: whether the peer refused, was not there or answered 404 is the
        /// answer a port scanner wants. The reason is in the server log under `reference`.
        public var error: String?
        public var reference: String?
        /// The full reason, for the server log only.
        public var reason: String?
    }

    /// Sends a made-up notice through the connector now.
    public func testConnector(id: String, using adapters: [ConnectorKind: any AlertConnector], context: RequestContext,
                              on db: any Database) async throws -> ConnectorTest {
        let row = try await connectorRow(id, action: "alert.connector.test", context: context, on: db)
        let hospital = try await Hospital.find(row.hospitalID, on: db)
        var reason: String?
        if let kind = row.connectorKind, let adapter = adapters[kind] {
            let settings = row.decodedSettings
            if permitsDestination(kind, settings) {
                do {
                    try await adapter.deliver(testNotice(hospitalName: hospital?.name ?? "", context: context).disclosing(Self.disclosure(kind, settings)),
                                              settings: settings)
                } catch {
                    reason = (error as? ConnectorError)?.message ?? String(describing: error)
                }
            } else {
                reason = "the destination is not on the installation's allow-list"
            }
        } else {
            reason = "no adapter for \(row.kind)"
        }
        let reference = reason == nil ? nil : ids.next()
        try await audit.record("alert.connector.test", entityType: "alert_connector", entityID: id, hospitalID: row.hospitalID,
                               outcome: reason == nil ? .success : .failure, detail: reference.map { "reference \($0)" },
                               context: context, on: db)
        return ConnectorTest(delivered: reason == nil,
                             error: reference.map { "the test notice was not delivered (reference \($0) in the server log)" },
                             reference: reference, reason: reason)
    }

    /// Deliveries of one alert, for its page.
    public func deliveries(alertID: String, on db: any Database) async throws -> [(AlertDelivery, AlertConnectorRow?)] {
        let rows = try await AlertDelivery.query(on: db).filter(\.$alertID == alertID).sort(\.$createdAt).sort(\.$id).all()
        let connectors = try await AlertConnectorRow.query(on: db).filter(\.$id ~~ Set(rows.map(\.connectorID))).all()
        let byID = Dictionary(connectors.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        return rows.map { ($0, byID[$0.connectorID]) }
    }

    private func apply(_ input: ConnectorInput, to row: AlertConnectorRow, kind: ConnectorKind, previous: [String: String]) throws {
        if let name = input.name?.trimmingCharacters(in: .whitespaces) {
            guard (1...100).contains(name.count) else { throw RoundsError.validation("name: 1 to 100 characters") }
            row.name = name
        } else if row.$name.value == nil {
            row.name = kind.rawValue
        }
        var settings = previous
        for (key, value) in input.settings ?? [:] {
            guard kind.knownSettings.contains(key) else {
                throw RoundsError.validation("settings.\(key): not a setting of \(kind.rawValue) (\(kind.knownSettings.sorted().joined(separator: ", ")))")
            }
            let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.count <= 2000 else { throw RoundsError.validation("settings.\(key): too long") }
            settings[key] = trimmed.isEmpty ? nil : trimmed
        }
        for key in kind.requiredSettings where (settings[key] ?? "").isEmpty {
            throw RoundsError.validation("settings.\(key): required for \(kind.rawValue)")
        }
        for key in ["webhook", "url"] {
            if let value = settings[key] {
                guard let url = URL(string: value), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                    throw RoundsError.validation("settings.\(key): an http(s) address")
                }
            }
        }
        if let port = settings["port"], !(Int(port).map { (1...65535).contains($0) } ?? false) {
            throw RoundsError.validation("settings.port: a port number")
        }
        if let value = settings[ConnectorKind.disclosureSetting], AlertNotice.Disclosure(rawValue: value) == nil {
            throw RoundsError.validation("settings.\(ConnectorKind.disclosureSetting): minimal or full")
        }
        guard permitsDestination(kind, settings) else {
            let key = kind.destination(settings).url == nil ? "host" : (kind == .sms ? "url" : "webhook")
            throw RoundsError.validation("settings.\(key): not an allowed destination; the installation's allow-list "
                                         + "(--allow-destination, ROUNDS_ALLOWED_DESTINATIONS) names where notices may go: \(destinations)")
        }
        if let security = settings["security"], !["none", "starttls", "tls"].contains(security) {
            throw RoundsError.validation("settings.security: none, starttls or tls")
        }
        row.settings = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        if let minLevel = input.minLevel {
            guard (0...6).contains(minLevel) else { throw RoundsError.validation("minLevel: 0 to 6") }
            row.minLevel = minLevel
        } else if row.$minLevel.value == nil {
            row.minLevel = 0
        }
        if let enabled = input.enabled { row.enabled = enabled } else if row.$enabled.value == nil { row.enabled = true }
    }

    private func connectorRow(_ id: String, action: String, context: RequestContext, on db: any Database) async throws -> AlertConnectorRow {
        guard let row = try await AlertConnectorRow.find(id, on: db) else { throw RoundsError.notFound("connector", id: id) }
        try await requireConnectorAdmin(hospitalID: row.hospitalID, action: action, context: context, on: db)
        return row
    }

    private func requireConnectorAdmin(hospitalID: String, action: String, context: RequestContext, on db: any Database) async throws {
        guard context.principal.canAdministerConnectors(hospitalID: hospitalID) else {
            try await audit.record(action, entityType: "alert_connector", entityID: nil, hospitalID: hospitalID, outcome: .denied,
                                   context: context, on: db)
            throw RoundsError.forbidden("connectors are set up by the hospital's administrators")
        }
    }

    private func view(_ row: AlertConnectorRow, on db: any Database) async throws -> ConnectorView {
        let settings = row.decodedSettings
        let counts = try await AlertDelivery.query(on: db).filter(\.$connectorID == row.id!).all(\.$status)
        return ConnectorView(id: row.id!, hospitalId: row.hospitalID, kind: row.kind, name: row.name,
                             settings: settings.filter { !ConnectorKind.secretSettings.contains($0.key) },
                             secretsSet: settings.keys.filter(ConnectorKind.secretSettings.contains).sorted(),
                             minLevel: row.minLevel, enabled: row.enabled,
                             pending: counts.filter { $0 == "pending" }.count, sent: counts.filter { $0 == "sent" }.count,
                             dead: counts.filter { $0 == "dead" }.count)
    }
}
