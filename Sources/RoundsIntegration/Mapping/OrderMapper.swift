import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

/// ORM^O01, OML^O21 (the v2.5.1 laboratory order), OMG^O19, RDE^O11: each ORC starts an order; ORC-1 says what happens to it
/// (NW new, XO change, CA cancel, DC discontinue). The outbox event carries what changed.
enum OrderMapper {
    static func apply(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await ADTMapper.knownPatient(&ctx, hospital: hospital)
        let encounter = try await ADTMapper.activeEncounter(ctx, patient: patient)
        // Split the message at each ORC: the order's own segments follow it.
        let segments = ctx.message.segments
        var groups: [[Int]] = []
        for (index, segment) in segments.enumerated() {
            if segment.name == "ORC" { groups.append([index]) } else if !groups.isEmpty { groups[groups.count - 1].append(index) }
        }
        guard !groups.isEmpty else { throw MappingError("no ORC segment: an order message needs at least one", code: "100") }
        for group in groups {
            try await applyOrder(&ctx, indices: group, patient: patient, encounter: encounter)
        }
    }

    /// The value at `field-component` of the segment at `index` (unescaped).
    static func value(_ ctx: MappingContext, _ index: Int, _ field: Int, _ component: Int = 1) -> String? {
        let segment = ctx.message.segments[index]
        let occurrence = ctx.message.segments[...index].filter { $0.name == segment.name }.count
        return ctx.value("\(segment.name)(\(occurrence))-\(field)-\(component)")
    }

    static func applyOrder(_ ctx: inout MappingContext, indices: [Int], patient: Patient, encounter: Encounter?) async throws {
        let orc = indices[0]
        let control = (value(ctx, orc, 1) ?? "").uppercased()
        guard ["NW", "XO", "CA", "DC", "OC", "OD", "SC", "XX"].contains(control) else {
            throw MappingError("ORC-1 '\(control)' is not an order control Rounds understands (NW, XO, CA, DC)", code: "103")
        }
        let detailIndex = indices.first { ["RXO", "RXE", "OBR", "RXA"].contains(ctx.message.segments[$0].name) }
        let kind = detailIndex.map { ctx.message.segments[$0].name } ?? ""
        guard let placer = value(ctx, orc, 2) ?? detailIndex.flatMap({ kind == "OBR" ? value(ctx, $0, 2) : nil }) else {
            throw MappingError("ORC-2 (placer order number) is required", code: "101")
        }
        var details: [String: String] = [:]
        var code = "", description = ""
        if let d = detailIndex {
            switch kind {
            case "RXO":
                code = value(ctx, d, 1, 1) ?? ""; description = value(ctx, d, 1, 2) ?? code
                details["dose"] = value(ctx, d, 2); details["unit"] = value(ctx, d, 4)
                details["route"] = value(ctx, d, 5); details["note"] = value(ctx, d, 29) ?? value(ctx, d, 6)
            case "RXE":
                code = value(ctx, d, 2, 1) ?? ""; description = value(ctx, d, 2, 2) ?? code
                details["dose"] = value(ctx, d, 3); details["unit"] = value(ctx, d, 5, 1)
                details["frequency"] = value(ctx, d, 1, 2)
            default:
                code = value(ctx, d, 4, 1) ?? ""; description = value(ctx, d, 4, 2) ?? code
                details["priority"] = value(ctx, d, 5)
            }
        }
        details["frequency"] = details["frequency"] ?? value(ctx, orc, 7, 2)
        let notes = indices.filter { ctx.message.segments[$0].name == "NTE" }.compactMap { value(ctx, $0, 3) }
        if !notes.isEmpty { details["note"] = ([details["note"]].compactMap { $0 } + notes).joined(separator: "\n") }
        details = details.compactMapValues { $0 }.filter { !$0.value.isEmpty }
        let orderedBy = MappingContext.personName(family: value(ctx, orc, 12, 2), given: value(ctx, orc, 12, 3))
        let enteredBy = MappingContext.personName(family: value(ctx, orc, 10, 2), given: value(ctx, orc, 10, 3))
        let at = MappingContext.date(value(ctx, orc, 9)) ?? ctx.now

        let existing = try await ClinicalOrder.query(on: ctx.db).filter(\.$patientID == patient.id!).filter(\.$placerNumber == placer).first()
        let status: String = switch control {
        case "CA", "OC": "cancelled"
        case "DC", "OD": "discontinued"
        default: "active"
        }
        if existing == nil && status != "active" {
            throw MappingError("order \(placer) is not known, so it cannot be \(status)", code: "204")
        }
        let order = existing ?? ClinicalOrder()
        var changes: [String: [String]] = [:]
        if let existing {
            let before = (try? JSONDecoder().decode([String: String].self, from: Data(existing.details.utf8))) ?? [:]
            for key in Set(before.keys).union(details.keys) where before[key] != details[key] && (control == "XO" || details[key] != nil) {
                changes[key] = [before[key] ?? "", details[key] ?? ""]
            }
            if !description.isEmpty && existing.description != description { changes["description"] = [existing.description, description] }
            if existing.status != status { changes["status"] = [existing.status, status] }
        } else {
            order.id = ctx.ids.next()
            order.patientID = patient.id!
            order.placerNumber = placer
        }
        order.encounterID = encounter?.id ?? order.encounterID
        order.fillerNumber = value(ctx, orc, 3) ?? order.fillerNumber
        order.status = status
        if !code.isEmpty || existing == nil { order.code = code }
        if !description.isEmpty || existing == nil { order.description = description }
        if !details.isEmpty || existing == nil {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            order.details = String(decoding: try encoder.encode(details), as: UTF8.self)
        }
        order.orderedBy = orderedBy.isEmpty ? order.orderedBy : orderedBy
        order.updatedAt = ctx.now
        try await order.save(on: ctx.db)
        let kindName: EventKind = switch control {
        case "NW": .orderCreated
        case "XO", "SC", "XX": .orderChanged
        case "CA", "OC": .orderCancelled
        default: .orderDiscontinued
        }
        try await ctx.audit(kindName.rawValue, entityType: "order", entityID: order.id, patientID: patient.id, detail: "\(placer) \(order.description)")
        try ctx.emit(kindName, patientID: patient.id, encounterID: encounter?.id, payload: ClinicalEvent.OrderChanged(
            control: control, placerNumber: placer, code: order.code, description: order.description, status: status,
            details: details, changes: changes, orderedBy: orderedBy.isEmpty ? nil : orderedBy,
            enteredBy: enteredBy.isEmpty ? nil : enteredBy, at: at))
    }
}
