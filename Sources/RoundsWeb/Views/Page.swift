import Leaf
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// What every page template receives: the string table, who is signed in, the CSRF token for
/// forms, what the navigation may show, and the page's own data under `data`.
struct Page<Data: Encodable>: Encodable {
    struct Me: Encodable {
        var id: String
        var name: String
        var isAdmin: Bool
        var isAuditor: Bool
        var isGroupAdmin: Bool
        /// Holds an administrator role (not IT): tokens and alert connectors.
        var isHospitalAdmin: Bool
        var isReviewer: Bool
        var isReporter: Bool
        /// May see patients somewhere: gets the patient search box.
        var seesPatients: Bool
    }

    var t: [String: String]
    var locale: String
    var otherLocale: String
    var title: String
    var me: Me?
    var csrf: String?
    var flash: String?
    var error: String?
    /// Unread notices of the person (e.g. a new administrator), shown on every page until read.
    var notices: [Notice] = []
    /// Where "知道了" returns to.
    var path: String = "/"
    /// Open critical values of my patients, grouped per patient: the urgent panel at the top of
    /// every page (rendered here, so the page never shifts under a finger when it loads).
    var urgent: [UrgentPatient] = []
    var urgentCount: Int = 0
    var urgentSignature: String = ""
    /// Messages waiting for me in my groups, and whether one names me (navigation badges).
    var groupsUnread: Int = 0
    var groupsMentioned: Bool = false
    var data: Data
}

/// One patient's open critical values, newest first.
struct UrgentPatient: Encodable {
    struct Item: Encodable {
        var id: String
        var result: String
        var flag: String
        var range: String
        var raised: String
        var ago: String
        var level: String
    }
    var patient: String
    var bed: String
    var ward: String
    var mrn: String
    var items: [Item]

    /// What the panel shows, in short: the page's script swaps the panel only when this changes.
    static func count(_ patients: [UrgentPatient]) -> Int { patients.reduce(0) { $0 + $1.items.count } }

    static func signature(_ patients: [UrgentPatient]) -> String {
        patients.flatMap { $0.items.map { "\($0.id):\($0.ago):\($0.level)" } }.joined(separator: ",")
    }
}

struct Notice: Encodable {
    var id: String
    var text: String
    var at: String
}

struct Empty: Encodable {}

extension Request {
    /// Renders a template inside the shared layout.
    func page<D: Encodable>(_ template: String, title: String, data: D, flash: String? = nil,
                            error: String? = nil, status: HTTPStatus = .ok) async throws -> Response {
        let locale = self.locale
        let t = rounds.catalogue.table(locale)
        let me = principal.map {
            Page<D>.Me(id: $0.id, name: $0.displayName, isAdmin: $0.isAdministrator, isAuditor: $0.isAuditor,
                       isGroupAdmin: $0.canManageGroup,
                       isHospitalAdmin: $0.isSuperuser || $0.assignments.contains { $0.role == .administrator },
                       isReviewer: $0.reviewsCriticalValues, isReporter: $0.reportsCriticalValues && !$0.isSuperuser,
                       seesPatients: $0.kind == .staff && ($0.isSuperuser || $0.assignments.contains { $0.role.isClinical || $0.role.seesWholeHospital }))
        }
        var notices: [Notice] = []
        if let principal, principal.kind == .staff {
            notices = try await rounds.organisation.notices(context: context(), on: db).map {
                Notice(id: $0.id ?? "", text: locale == .en ? $0.textEN : $0.textZH, at: Formatting.dateTime($0.createdAt))
            }
        }
        let urgent = try await urgentPanel(t)
        var waiting = (unread: 0, mentioned: false)
        if let principal, principal.kind == .staff { waiting = try await rounds.chat.unreadSummary(context: context(), on: db) }
        let context = Page(t: t, locale: locale.rawValue, otherLocale: locale == .en ? "zh-CN" : "en",
                           title: t[title] ?? title, me: me, csrf: webSession?.csrfToken, flash: flash, error: error,
                           notices: notices, path: url.path, urgent: urgent, urgentCount: UrgentPatient.count(urgent),
                           urgentSignature: UrgentPatient.signature(urgent), groupsUnread: waiting.unread, groupsMentioned: waiting.mentioned,
                           data: data)
        let view = try await self.view.render(template, context)
        let response = try await view.encodeResponse(status: status, for: self)
        response.headers.replaceOrAdd(name: .contentType, value: "text/html; charset=utf-8")
        // Patient data must not linger in shared caches or the back-forward cache of a ward PC.
        response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return response
    }
}

extension Request {
    /// The urgent panel's content for the signed-in person (empty for anyone else).
    func urgentPanel(_ t: [String: String]) async throws -> [UrgentPatient] {
        guard let principal, principal.kind == .staff else { return [] }
        let now = rounds.configuration.clock.now()
        var order: [String] = []
        var byPatient: [String: UrgentPatient] = [:]
        for u in try await rounds.alerts.urgentAlerts(context: context(), on: db) {
            let a = u.alert
            let item = UrgentPatient.Item(
                id: a.id ?? "", result: [a.testName, a.value, a.unit].compactMap { $0 }.joined(separator: " "),
                flag: Formatting.flag(a.flag, t), range: a.referenceRange ?? "",
                raised: Formatting.dateTime(a.raisedAt), ago: Formatting.ago(a.raisedAt, now: now, t),
                level: a.level > 0 ? (t["urgent_escalated"] ?? "").replacingOccurrences(of: "%d", with: String(a.level)) : "")
            if byPatient[a.patientID] == nil {
                order.append(a.patientID)
                byPatient[a.patientID] = UrgentPatient(patient: u.patient.name, bed: u.bed ?? "", ward: u.wardName ?? "",
                                                      mrn: u.patient.mrn, items: [])
            }
            byPatient[a.patientID]?.items.append(item)
        }
        return order.compactMap { byPatient[$0] }
    }
}

extension Request {
    /// Back to `path` with the error as a message the person can act on (the page shows `error=`).
    func redirect(to path: String, error: RoundsError) -> Response {
        let message = error.message(locale: locale) + (error.detail.map { ": \($0)" } ?? "")
        let separator = path.contains("?") ? "&" : "?"
        return redirect(to: path + separator + "error=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
    }

    /// Runs a form's action, then goes back to `path` with `done=1`; errors the person can fix
    /// (409, 422) go back there as a message instead of an error page.
    func formResult(back path: String, _ action: () async throws -> Void) async throws -> Response {
        do {
            try await action()
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return redirect(to: path, error: error)
        }
        return redirect(to: path + (path.contains("?") ? "&" : "?") + "done=1")
    }
}

enum ErrorPage {
    struct Data: Encodable {
        var status: Int
        var code: String
        var message: String
        var detail: String?
    }

    static func render(_ error: RoundsError, request: Request) async throws -> Response {
        let data = Data(status: error.status, code: error.code, message: error.message(locale: request.locale), detail: error.detail)
        return try await request.page("error", title: "error_title", data: data,
                                      status: HTTPResponseStatus(statusCode: error.status))
    }
}
