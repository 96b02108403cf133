import Fluent
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsMDT
import RoundsStore
import Vapor

/// MDT pages for staff: request a case from the patient, the inbox, the case (summary,
/// opinions, discussion, guests, report), the printable report and its PDF, statistics.
struct MDTPages {
    func register(_ routes: any RoutesBuilder) {
        routes.get("patients", ":patientId", "mdt", "new", use: newCase)
        routes.post("patients", ":patientId", "mdt", use: create)
        routes.get("mdt", use: inbox)
        routes.get("mdt", "statistics", use: statistics)
        routes.get("mdt", ":caseId", use: show)
        routes.post("mdt", ":caseId", "summary", use: summary)
        routes.post("mdt", ":caseId", "opinions", use: opinion)
        routes.post("mdt", ":caseId", "messages", use: message)
        routes.post("mdt", ":caseId", "guests", use: invite)
        routes.post("mdt", ":caseId", "guests", ":guestId", "revoke", use: revoke)
        routes.post("mdt", ":caseId", "sign", use: sign)
        routes.get("mdt", ":caseId", "report", use: report)
        routes.get("mdt", ":caseId", "report.pdf", use: pdf)
        routes.get("mdt", ":caseId", "attachments", ":attachmentId", use: attachment)
    }

    struct Option: Encodable { var value: String; var label: String }
    struct NewData: Encodable {
        var patientId: String; var patient: String; var mrn: String; var types: [Option]; var departments: [Option]; var experts: [Option]
        var summary: String; var when: String
    }

    @Sendable func newCase(req: Request) async throws -> Response {
        let patientID = try req.parameters.require("patientId")
        guard let patient = try await Patient.find(patientID, on: req.db) else { throw RoundsError.notFound("patient", id: patientID) }
        let (summary, _) = try await MDTViews.summary(patientID: patientID, req: req)
        let hospital = try await Hospital.find(patient.hospitalID, on: req.db)
        let group = try await Hospital.query(on: req.db).filter(\.$groupID == (hospital?.groupID ?? "")).all()
        let names = Dictionary(uniqueKeysWithValues: group.map { ($0.id!, $0.name) })
        let departments = try await Department.query(on: req.db).filter(\.$hospitalID ~~ group.compactMap(\.id)).sort(\.$name).all()
        let doctorRoles = try await StaffRole.query(on: req.db).filter(\.$role ~~ [Role.doctor, Role.consultant])
            .filter(\.$hospitalID ~~ group.compactMap(\.id)).all()
        let doctors = try await Staff.query(on: req.db).filter(\.$id ~~ Array(Set(doctorRoles.map(\.staffID)))).filter(\.$isActive == true).sort(\.$displayName).all()
        let departmentNames = Dictionary(uniqueKeysWithValues: departments.map { ($0.id!, $0.name) })
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = Formatting.hospitalTimeZone; f.dateFormat = "yyyy-MM-dd'T'HH:mm"
        return try await req.page("mdt_new", title: "mdt_new_title", data: NewData(
            patientId: patientID, patient: patient.name, mrn: patient.mrn,
            types: MDTType.allCases.map { Option(value: $0.rawValue, label: $0.title(req.locale)) },
            departments: departments.map { Option(value: $0.id!, label: "\($0.name)（\(names[$0.hospitalID] ?? "")）") },
            experts: doctors.filter { $0.id != (try? req.context().principal.id) }.map { s in
                let where_ = doctorRoles.filter { $0.staffID == s.id }.compactMap { departmentNames[$0.departmentID] }.joined(separator: "、")
                return Option(value: s.id!, label: s.displayName + (where_.isEmpty ? "" : " · \(where_)"))
            },
            summary: summary, when: f.string(from: req.rounds.configuration.clock.now().addingTimeInterval(86_400))),
            error: req.query[String.self, at: "error"])
    }

    static func parseTime(_ text: String) throws -> Date {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = Formatting.hospitalTimeZone
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm:ss"] {
            f.dateFormat = format
            if let d = f.date(from: text) { return d }
        }
        if let d = ISO8601DateFormatter().date(from: text) { return d }
        throw RoundsError.validation("scheduledAt: a date and time such as 2026-12-09T14:00")
    }

    @Sendable func create(req: Request) async throws -> Response {
        struct Form: Content { var type: String; var question: String; var scheduledAt: String; var summary: String?; var departments: [String]?; var experts: [String]? }
        let patientID = try req.parameters.require("patientId")
        let form = try req.content.decode(Form.self)
        do {
            guard let type = MDTType(rawValue: form.type) else { throw RoundsError.validation("type: \(form.type)") }
            let (_, attachments) = try await MDTViews.summary(patientID: patientID, req: req)
            let mdt = try await req.rounds.mdt.request(.init(
                patientID: patientID, type: type, question: form.question, scheduledAt: try Self.parseTime(form.scheduledAt),
                departmentIDs: form.departments ?? [], expertIDs: form.experts ?? [], summary: form.summary ?? "", attachmentIDs: attachments),
                context: req.context(), on: req.db)
            return req.redirect(to: "/mdt/\(mdt.id!)")
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: "/patients/\(patientID)/mdt/new", error: error)
        }
    }

    struct InboxRow: Encodable { var id: String; var patient: String; var type: String; var question: String; var at: String; var status: String; var open: Bool; var opinions: Int; var mine: Bool; var role: String }
    struct InboxData: Encodable { var rows: [InboxRow]; var toOpine: Int; var requested: Int; var canSeeStatistics: Bool }

    @Sendable func inbox(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let context = try req.context()
        let items = try await req.rounds.mdt.inbox(context: context, on: req.db)
        let rows = items.map { i in
            InboxRow(id: i.mdt.id!, patient: i.patient?.name ?? "", type: i.mdt.type.title(req.locale),
                     question: i.mdt.question.count > 60 ? String(i.mdt.question.prefix(60)) + "…" : i.mdt.question,
                     at: Formatting.dateTime(i.mdt.scheduledAt), status: t["mdt_status_\(i.mdt.status.rawValue)"] ?? "", open: i.mdt.status == .open,
                     opinions: i.opinions, mine: i.mineGiven, role: t["mdt_role_\(i.standing.rawValue)"] ?? "")
        }
        let oversees = try await Hospital.query(on: req.db).all().contains { context.principal.seesAllPatients(ofHospital: $0.id!) }
        return try await req.page("mdt_inbox", title: "mdt_inbox_title", data: InboxData(
            rows: rows, toOpine: items.filter { $0.mdt.status == .open && $0.standing == .expert && !$0.mineGiven }.count,
            requested: items.filter { $0.standing == .requester }.count, canSeeStatistics: oversees))
    }

    @Sendable func show(req: Request) async throws -> Response { try await render(req) }

    /// The case page; `invitation`: a new guest's link and code, shown this once.
    func render(_ req: Request, invitation: MDTViews.NewInvitation? = nil) async throws -> Response {
        let detail = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .staff(req.context()), on: req.db)
        let data = try await MDTViews.caseData(detail, req: req, isGuest: false, csrf: req.webSession?.csrfToken ?? "", invitation: invitation)
        return try await req.page("mdt_case", title: "mdt_case_title", data: data, flash: req.query[String.self, at: "done"].map { _ in
            req.rounds.catalogue.table(req.locale)["saved"] ?? "" }, error: req.query[String.self, at: "error"])
    }

    func back(_ req: Request) throws -> String { "/mdt/\(try req.parameters.require("caseId"))" }

    @Sendable func summary(req: Request) async throws -> Response {
        struct Form: Content { var summary: String; var revision: Int }
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: try back(req)) {
            _ = try await req.rounds.mdt.updateSummary(req.parameters.require("caseId"), summary: form.summary, revision: form.revision, context: req.context(), on: req.db)
        }
    }

    struct OpinionForm: Content { var department: String?; var recommendation: String; var evidence: String?; var text: String? }

    @Sendable func opinion(req: Request) async throws -> Response {
        let form = try req.content.decode(OpinionForm.self)
        return try await req.formResult(back: try back(req)) {
            _ = try await req.rounds.mdt.addOpinion(req.parameters.require("caseId"), .init(department: form.department ?? "", recommendation: form.recommendation,
                                                                                           evidence: form.evidence ?? "", text: form.text ?? ""),
                                                    viewer: .staff(req.context()), on: req.db)
        }
    }

    @Sendable func message(req: Request) async throws -> Response {
        struct Form: Content { var text: String }
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: try back(req) + "#discussion") {
            _ = try await req.rounds.mdt.post(req.parameters.require("caseId"), text: form.text, viewer: .staff(req.context()), on: req.db)
        }
    }

    @Sendable func invite(req: Request) async throws -> Response {
        struct Form: Content { var name: String; var institution: String; var department: String?; var hours: Int? }
        let form = try req.content.decode(Form.self)
        do {
            let invitation = try await req.rounds.mdt.inviteGuest(req.parameters.require("caseId"), name: form.name, institution: form.institution,
                                                                  department: form.department ?? "", hours: form.hours, context: req.context(), on: req.db)
            let host = req.headers.first(name: .host) ?? "localhost"
            let scheme = req.headers.first(name: "X-Forwarded-Proto") ?? (req.application.http.server.configuration.tlsConfiguration == nil ? "http" : "https")
            return try await render(req, invitation: .init(link: "\(scheme)://\(host)/mdt-guest/\(invitation.linkToken)", code: invitation.code,
                                                           name: invitation.guest.name, expires: Formatting.dateTime(invitation.guest.expiresAt)))
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: try back(req), error: error)
        }
    }

    @Sendable func revoke(req: Request) async throws -> Response {
        try await req.formResult(back: try back(req) + "#guests") {
            try await req.rounds.mdt.revokeGuest(req.parameters.require("caseId"), guestID: req.parameters.require("guestId"), context: req.context(), on: req.db)
        }
    }

    @Sendable func sign(req: Request) async throws -> Response {
        struct Form: Content { var conclusion: String?; var recommendation: String }
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: try back(req)) {
            _ = try await req.rounds.mdt.sign(req.parameters.require("caseId"), conclusion: form.conclusion ?? "", recommendation: form.recommendation,
                                              context: req.context(), on: req.db)
        }
    }

    struct PrintData: Encodable { var c: MDTViews.CaseData; var css: String; var hospital: String; var printedAt: String }
    struct PrintPage: Encodable { var data: PrintData; var t: [String: String] }

    func printData(_ req: Request, css: String) async throws -> PrintData {
        let detail = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .staff(req.context()), on: req.db)
        guard detail.report != nil else { throw RoundsError.conflict("the report is not signed yet") }
        let hospital = try await Hospital.find(detail.mdt.hospitalID, on: req.db)
        return PrintData(c: try await MDTViews.caseData(detail, req: req, isGuest: false, csrf: ""), css: css, hospital: hospital?.name ?? "",
                         printedAt: Formatting.dateTime(req.rounds.configuration.clock.now()))
    }

    /// The printable report (its own page, print stylesheet).
    @Sendable func report(req: Request) async throws -> Response {
        let data = try await printData(req, css: "/css/print.css")
        return try await req.view.render("mdt_report", PrintPage(data: data, t: req.rounds.catalogue.table(req.locale))).encodeResponse(for: req)
    }

    /// The report as PDF, printed by headless Chromium where it is installed.
    @Sendable func pdf(req: Request) async throws -> Response {
        let data = try await printData(req, css: "file://" + WebResources.root.appendingPathComponent("Public/css/print.css").path)
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RoundsError(code: "pdf_unavailable", status: 503, zh: "本服务器未安装 Chromium，无法生成 PDF，请使用打印页面", en: "No Chromium on this server to make a PDF; use the print page", detail: nil)
        }
        let view = try await req.view.render("mdt_report", PrintPage(data: data, t: req.rounds.catalogue.table(req.locale)))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rounds-pdf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let html = folder.appendingPathComponent("report.html"), out = folder.appendingPathComponent("report.pdf")
        try Data(buffer: view.data).write(to: html)
        let pdf = try await req.application.threadPool.runIfActive {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: chromium)
            process.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-pdf-header-footer",
                                 "--user-data-dir=\(folder.appendingPathComponent("profile").path)", "--print-to-pdf=\(out.path)", html.absoluteString]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return try Data(contentsOf: out)
        }
        let response = Response(status: .ok, body: .init(data: pdf))
        response.headers.contentType = HTTPMediaType(type: "application", subType: "pdf")
        response.headers.replaceOrAdd(name: .contentDisposition, value: "inline; filename=\"mdt-report.pdf\"")
        response.headers.replaceOrAdd(name: .cacheControl, value: "private, no-store")
        return response
    }

    @Sendable func attachment(req: Request) async throws -> Response {
        let detail = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .staff(req.context()), on: req.db)
        return try await MDTViews.attachment(detail.mdt, req.parameters.require("attachmentId"), req: req)
    }

    // MARK: Statistics

    struct Count: Encodable { var label: String; var count: Int }
    struct StatisticsData: Encodable {
        var from: String; var to: String; var total: Int; var reported: Int; var byType: [Count]; var byDepartment: [Count]
        var averageHours: String; var medianHours: String; var opinionsPerCase: String
    }

    static func range(_ req: Request) throws -> (Date, Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Formatting.hospitalTimeZone
        // Whole days in hospital time: to the end of `to` (today when not given).
        let today = calendar.startOfDay(for: req.rounds.configuration.clock.now())
        let from = try req.query[String.self, at: "from"].map { try Formatting.day($0) ?? { throw RoundsError.validation("from: YYYY-MM-DD") }() }
            ?? today.addingTimeInterval(-90 * 86_400)
        let to = try req.query[String.self, at: "to"].map { try Formatting.day($0).map { $0.addingTimeInterval(86_400) } ?? { throw RoundsError.validation("to: YYYY-MM-DD") }() }
            ?? today.addingTimeInterval(86_400)
        return (from, to)
    }

    @Sendable func statistics(req: Request) async throws -> Response {
        let (from, to) = try Self.range(req)
        let csvWanted = req.query[String.self, at: "format"] == "csv"
        let stats = try await req.rounds.mdt.statistics(from: from, to: to, export: csvWanted, context: req.context(), on: req.db)
        if csvWanted {
            var csv = "\u{FEFF}" + ["case", "patient", "type", "departments", "requested", "reported", "hours_to_report", "opinions"].joined(separator: ",") + "\r\n"
            let patients = Dictionary(uniqueKeysWithValues: try await Patient.query(on: req.db).filter(\.$id ~~ stats.rows.map(\.mdt.patientID)).all().map { ($0.id!, $0.mrn) })
            for row in stats.rows {
                let fields = [row.mdt.id!, patients[row.mdt.patientID] ?? "", row.mdt.type.title(req.locale), row.departments.joined(separator: "、"),
                              Formatting.dateTime(row.mdt.createdAt), Formatting.dateTime(row.mdt.reportedAt),
                              row.hoursToReport.map { String(format: "%.1f", $0) } ?? "", String(row.opinions)]
                csv += fields.map(CSV.field).joined(separator: ",") + "\r\n"
            }
            let response = Response(status: .ok, body: .init(string: csv))
            response.headers.contentType = HTTPMediaType(type: "text", subType: "csv", parameters: ["charset": "utf-8"])
            response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"mdt-statistics.csv\"")
            return response
        }
        let hours = { (h: Double?) in h.map { String(format: "%.1f", $0) } ?? "—" }
        return try await req.page("mdt_statistics", title: "mdt_statistics_title", data: StatisticsData(
            from: Formatting.day(from), to: Formatting.day(to.addingTimeInterval(-86_400)), total: stats.rows.count,
            reported: stats.rows.filter { $0.mdt.status == .reported }.count,
            byType: stats.byType.map { Count(label: $0.0.title(req.locale), count: $0.1) },
            byDepartment: stats.byDepartment.map { Count(label: $0.0, count: $0.1) },
            averageHours: hours(stats.averageHoursToReport), medianHours: hours(stats.medianHoursToReport),
            opinionsPerCase: stats.opinionsPerCase.map { String(format: "%.1f", $0) } ?? "—"))
    }
}

/// CSV fields as spreadsheets read them; a leading = + - @ is quoted so it is never a formula.
enum CSV {
    static func field(_ value: String) -> String {
        var v = value
        if let first = v.first, "=+-@".contains(first) { v = "'" + v }
        return v.contains(where: { ",\"\r\n".contains($0) }) ? "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : v
    }
}
