import Fluent
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// The pages at the bedside: my wards and their patients, a ward, a patient.
struct ClinicalPages {
    struct PatientRow: Encodable {
        var id: String
        var bed: String
        var name: String
        var mrn: String
        var gender: String
        var age: String
        var doctor: String
        var nurse: String
        var allergies: String?
        var admittedAt: String
    }

    struct WardView: Encodable {
        var id: String
        var name: String
        var hospital: String
        var patients: [PatientRow]
        var count: Int { patients.count }

        init(id: String, name: String, hospital: String, patients: [PatientRow]) {
            self.id = id; self.name = name; self.hospital = hospital; self.patients = patients
        }

        enum CodingKeys: String, CodingKey { case id, name, hospital, patients, count }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(name, forKey: .name); try c.encode(hospital, forKey: .hospital)
            try c.encode(patients, forKey: .patients); try c.encode(count, forKey: .count)
        }
    }

    struct HomeData: Encodable {
        var wards: [WardView]
        var hasWards: Bool { !wards.isEmpty }

        enum CodingKeys: String, CodingKey { case wards, hasWards }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(wards, forKey: .wards); try c.encode(hasWards, forKey: .hasWards)
        }
    }

    struct EncounterRow: Encodable {
        var ward: String
        var bed: String
        var status: String
        var active: Bool
        var doctor: String
        var nurse: String
        var admittedAt: String
        var dischargedAt: String
        var visitNumber: String
    }

    struct PatientData: Encodable {
        var id: String
        var name: String
        var mrn: String
        var gender: String
        var birthDate: String
        var age: String
        var allergies: String?
        var encounters: [EncounterRow]
        var orders: [OrderRow]
        var results: [ResultRow]
        var reports: [ReportRow]
        /// The patient's group (the current stay's, else the latest): the page links to it.
        var groupId: String? = nil
    }

    struct OrderRow: Encodable { var number: String; var name: String; var status: String; var statusCode: String; var details: String; var orderedBy: String; var updatedAt: String }
    struct ResultRow: Encodable { var name: String; var value: String; var range: String; var flag: String; var critical: Bool; var at: String; var comment: String? }
    struct ReportRow: Encodable {
        var title: String; var number: String; var text: String; var author: String; var attachments: [AttachmentLink]; var at: String
        var comment: String?
    }
    /// "PDF", or "PDF 1", "PDF 2"… when a report carries several.
    struct AttachmentLink: Encodable { var id: String; var label: String }

    func register(_ routes: any RoutesBuilder) {
        routes.get(use: home)
        routes.get("patients", use: search)
        routes.get("wards", ":wardId", use: ward)
        routes.get("patients", ":patientId", use: patient)
    }

    struct SearchRow: Encodable { var id: String; var name: String; var mrn: String; var ward: String; var bed: String; var gender: String }
    struct SearchData: Encodable { var q: String; var rows: [SearchRow]; var searched: Bool }

    /// One search box for everyone who may see patients: name, MRN or bed.
    @Sendable func search(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let q = req.query[String.self, at: "q"] ?? ""
        let found = try await req.rounds.patients.search(q, context: req.context(), on: req.db)
        if found.count == 1, let only = found.first { return req.redirect(to: "/patients/\(only.0.patient.id!)") }
        let rows = found.map { o, ward in
            SearchRow(id: o.patient.id!, name: o.patient.name, mrn: o.patient.mrn, ward: ward.name, bed: o.bed?.label ?? "",
                      gender: t["gender_\(o.patient.gender.rawValue)"] ?? "")
        }
        return try await req.page("patient_search", title: "search_title", data: SearchData(q: q, rows: rows, searched: !q.isEmpty))
    }

    @Sendable func home(req: Request) async throws -> Response {
        let context = try req.context()
        // People without patients of their own land on their own work, not an empty ward page:
        // IT on the message store, laboratory staff on reporting a critical value, quality
        // control and medical affairs on the critical-value dashboard.
        switch context.principal.landing {
        case .reportCriticalValue: return req.redirect(to: "/alerts/new")
        case .messageStore: return req.redirect(to: "/integration")
        case .criticalValueDashboard: return req.redirect(to: "/alerts/dashboard")
        case nil: break
        }
        let boards = try await req.rounds.patients.homeBoards(context: context, on: req.db)
        let views = boards.map { WardView(id: $0.ward.id!, name: $0.ward.name, hospital: $0.hospitalName, patients: patientRows($0, req: req)) }
        return try await req.page("home", title: "home_title", data: HomeData(wards: views))
    }

    @Sendable func ward(req: Request) async throws -> Response {
        let context = try req.context()
        let board = try await req.rounds.patients.wardBoard(id: req.parameters.require("wardId"), context: context, on: req.db)
        return try await req.page("home", title: "ward_title",
                                  data: HomeData(wards: [WardView(id: board.ward.id!, name: board.ward.name, hospital: board.hospitalName,
                                                                  patients: patientRows(board, req: req))]))
    }

    private func patientRows(_ board: PatientService.WardBoard, req: Request) -> [PatientRow] {
        let occupants = board.occupants, names = board.staffNames
        let t = req.rounds.catalogue.table(req.locale)
        let now = req.rounds.configuration.clock.now()
        return occupants.map { o in
            PatientRow(id: o.patient.id!, bed: o.bed?.label ?? "—", name: o.patient.name, mrn: o.patient.mrn,
                       gender: t["gender_\(o.patient.gender.rawValue)"] ?? o.patient.gender.rawValue,
                       age: Formatting.age(birthDate: o.patient.birthDate, now: now).map(String.init) ?? "",
                       doctor: o.encounter.attendingID.flatMap { names[$0] } ?? "",
                       nurse: o.encounter.nurseID.flatMap { names[$0] } ?? "",
                       allergies: o.patient.allergies, admittedAt: Formatting.dateTime(o.encounter.admittedAt))
        }
    }

    @Sendable func patient(req: Request) async throws -> Response {
        let chart = try await req.rounds.patients.chart(patientID: req.parameters.require("patientId"), context: req.context(), on: req.db)
        let record = chart.record, orders = chart.orders, results = chart.results, reports = chart.reports
        let t = req.rounds.catalogue.table(req.locale)
        let p = record.patient
        var data = PatientData(
            id: p.id!, name: p.name, mrn: p.mrn, gender: t["gender_\(p.gender.rawValue)"] ?? p.gender.rawValue,
            birthDate: p.birthDate ?? "", age: Formatting.age(birthDate: p.birthDate, now: req.rounds.configuration.clock.now()).map(String.init) ?? "",
            allergies: p.allergies,
            encounters: record.encounters.map { e in
                EncounterRow(ward: record.wards[e.wardID]?.name ?? "", bed: e.bedID.flatMap { record.beds[$0]?.label } ?? "",
                             status: t["encounter_\(e.status.rawValue)"] ?? e.status.rawValue, active: e.status == .active,
                             doctor: e.attendingID.flatMap { record.staff[$0]?.displayName } ?? "",
                             nurse: e.nurseID.flatMap { record.staff[$0]?.displayName } ?? "",
                             admittedAt: Formatting.dateTime(e.admittedAt), dischargedAt: Formatting.dateTime(e.dischargedAt),
                             visitNumber: e.visitNumber ?? "")
            },
            orders: orders.map { o in
                let details = (try? JSONDecoder().decode([String: String].self, from: Data(o.details.utf8))) ?? [:]
                // Order fields in words, in a fixed clinical order (dose before route before frequency).
                let order = ["dose", "unit", "route", "frequency", "priority", "note"]
                let keys = details.keys.sorted { (order.firstIndex(of: $0) ?? 99, $0) < (order.firstIndex(of: $1) ?? 99, $1) }
                return OrderRow(number: o.placerNumber, name: o.description, status: t["order_status_\(o.status)"] ?? o.status, statusCode: o.status,
                                details: keys.map { "\(t["order_field_\($0)"] ?? $0)：\(details[$0]!)" }.joined(separator: "；"),
                                orderedBy: o.orderedBy ?? "", updatedAt: Formatting.dateTime(o.updatedAt))
            },
            results: results.map { r in
                // A coded result reads by its words, with the lab's code beside them.
                let shown = ClinicalEvent.ObservationResult.shown(value: r.value, text: r.valueText)
                return ResultRow(name: r.name, value: [shown, r.unit].compactMap { $0 }.joined(separator: " "), range: r.referenceRange ?? "",
                                 flag: Formatting.flag(r.abnormalFlag, t), critical: r.isCritical, at: Formatting.dateTime(r.observedAt ?? r.createdAt),
                                 comment: r.comment)
            },
            reports: reports.map { r in
                let ids = r.attachmentIDs
                return ReportRow(title: r.title, number: r.documentNumber, text: r.text, author: r.author ?? "",
                                 attachments: ids.enumerated().map { AttachmentLink(id: $1, label: ids.count > 1 ? "\(t["attachment"] ?? "附件") \($0 + 1)" : (t["attachment"] ?? "附件")) },
                                 at: Formatting.dateTime(r.createdAt), comment: r.comment)
            })
        let active = record.encounters.first { $0.status == .active }
        data.groupId = try await req.rounds.chat.group(forPatient: p.id!, encounterID: active?.id, on: req.db)?.id
        return try await req.page("patient", title: "patient_title", data: data)
    }
}
