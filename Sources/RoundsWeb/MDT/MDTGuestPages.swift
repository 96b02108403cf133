import Fluent
import Foundation
import RoundsCore
import RoundsMDT
import RoundsStore
import Vapor

/// Pages for an expert from a partner hospital, outside the staff sign-in: the invitation link
/// asks for the one-time code, which opens a guest session (its own cookie, this case only).
/// Every read and write is audited under the guest's name; forms carry the guest's own CSRF token.
struct MDTGuestPages {
    static let cookie = "rounds_mdt_guest"

    func register(_ routes: any RoutesBuilder) {
        routes.get("mdt-guest", ":token", use: codeForm)
        routes.post("mdt-guest", ":token", use: redeem)
        routes.get("mdt-guest", "case", ":caseId", use: show)
        routes.post("mdt-guest", "case", ":caseId", "opinions", use: opinion)
        routes.post("mdt-guest", "case", ":caseId", "messages", use: message)
        routes.get("mdt-guest", "case", ":caseId", "attachments", ":attachmentId", use: attachment)
    }

    struct CodeData: Encodable { var token: String; var name: String; var institution: String; var expires: String }

    @Sendable func codeForm(req: Request) async throws -> Response {
        let token = try req.parameters.require("token")
        let guest = try await req.rounds.mdt.invitation(linkToken: token, on: req.db)
        return try await req.page("mdt_guest_code", title: "mdt_guest_title", data: CodeData(
            token: token, name: guest.name, institution: guest.institution, expires: Formatting.dateTime(guest.expiresAt)),
            error: req.query[String.self, at: "error"])
    }

    @Sendable func redeem(req: Request) async throws -> Response {
        // No CSRF token here: the address holds the link's secret, which a cross-site form cannot know.
        struct Form: Content { var code: String }
        let token = try req.parameters.require("token")
        let form = try req.content.decode(Form.self)
        do {
            let (guest, session) = try await req.rounds.mdt.redeem(linkToken: token, code: form.code, clientAddress: req.clientAddress, on: req.db)
            let response = req.redirect(to: "/mdt-guest/case/\(guest.caseID)")
            response.cookies[Self.cookie] = HTTPCookies.Value(string: session, expires: guest.expiresAt, path: "/mdt-guest",
                                                              isSecure: req.rounds.configuration.secureCookies,
                                                              isHTTPOnly: true, sameSite: .strict)
            return response
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: "/mdt-guest/\(token)", error: error)
        }
    }

    /// The guest of this request, or 401 (no or expired session).
    func guest(_ req: Request) async throws -> MDTGuest {
        guard let guest = try await req.rounds.mdt.guest(session: req.cookies[Self.cookie]?.string, on: req.db) else {
            throw RoundsError(code: "guest_session", status: 401, zh: "请通过邀请链接和验证码进入", en: "Open the invitation link and enter its code", detail: nil)
        }
        return guest
    }

    func checkCSRF(_ req: Request, _ guest: MDTGuest) throws {
        let sent = try? req.content.get(String.self, at: "_csrf")
        guard let sent, let expected = guest.csrf, CSRFMiddleware.constantTimeEquals(sent, expected) else { throw RoundsError.csrf }
    }

    @Sendable func show(req: Request) async throws -> Response {
        let guest = try await guest(req)
        let detail = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .guest(guest, clientAddress: req.clientAddress), on: req.db)
        var data = try await MDTViews.caseData(detail, req: req, isGuest: true, csrf: guest.csrf ?? "")
        data.guestName = "\(guest.name)（\(guest.institution)）"
        return try await req.page("mdt_case", title: "mdt_case_title", data: data, error: req.query[String.self, at: "error"])
    }

    @Sendable func opinion(req: Request) async throws -> Response {
        let guest = try await guest(req)
        try checkCSRF(req, guest)
        let form = try req.content.decode(MDTPages.OpinionForm.self)
        return try await req.formResult(back: "/mdt-guest/case/\(try req.parameters.require("caseId"))") {
            _ = try await req.rounds.mdt.addOpinion(req.parameters.require("caseId"), .init(department: form.department ?? "", recommendation: form.recommendation,
                                                                                           evidence: form.evidence ?? "", text: form.text ?? ""),
                                                    viewer: .guest(guest, clientAddress: req.clientAddress), on: req.db)
        }
    }

    @Sendable func message(req: Request) async throws -> Response {
        struct Form: Content { var text: String }
        let guest = try await guest(req)
        try checkCSRF(req, guest)
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: "/mdt-guest/case/\(try req.parameters.require("caseId"))#discussion") {
            _ = try await req.rounds.mdt.post(req.parameters.require("caseId"), text: form.text, viewer: .guest(guest, clientAddress: req.clientAddress), on: req.db)
        }
    }

    @Sendable func attachment(req: Request) async throws -> Response {
        let guest = try await guest(req)
        let detail = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .guest(guest, clientAddress: req.clientAddress), on: req.db)
        return try await MDTViews.attachment(detail.mdt, req.parameters.require("attachmentId"), req: req)
    }
}
