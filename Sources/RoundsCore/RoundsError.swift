/// The one error type of Rounds: a stable machine code, a human message in both shipped
/// languages, an HTTP status, and an optional detail (which field, which id).
public struct RoundsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var status: Int
    public var messageZH: String
    public var messageEN: String
    public var detail: String?
    /// Each thing refused, when there are several (a bulk write: which record, which field, why;
    /// a stale edit: the field and its current value).
    public var items: [Item]?

    public struct Item: Sendable, Equatable, Codable {
        /// Where: "records[3].体重", a field's id…
        public var path: String
        public var reason: String
        /// The current value (JSON), for a conflicting edit.
        public var current: String?

        public init(path: String, reason: String, current: String? = nil) {
            self.path = path; self.reason = reason; self.current = current
        }
    }

    public init(code: String, status: Int, zh: String, en: String, detail: String? = nil, items: [Item]? = nil) {
        self.code = code
        self.status = status
        self.messageZH = zh
        self.messageEN = en
        self.detail = detail
        self.items = items
    }

    public func message(locale: Locale) -> String {
        locale == .en ? messageEN : messageZH
    }

    public var description: String {
        "\(code) (\(status)): \(messageEN)" + (detail.map { " — \($0)" } ?? "")
    }

    public func with(detail: String) -> RoundsError {
        var copy = self
        copy.detail = detail
        return copy
    }

    public func with(items: [Item]) -> RoundsError {
        var copy = self
        copy.items = items
        return copy
    }
}

extension RoundsError {
    public static func badRequest(_ detail: String) -> RoundsError {
        RoundsError(code: "bad_request", status: 400, zh: "请求格式有误", en: "The request is malformed", detail: detail)
    }
    public static func badJSON(_ detail: String) -> RoundsError {
        RoundsError(code: "bad_json", status: 400, zh: "请求体不是有效的 JSON", en: "The request body is not valid JSON", detail: detail)
    }
    public static func validation(_ detail: String) -> RoundsError {
        RoundsError(code: "validation_failed", status: 422, zh: "提交的数据未通过校验", en: "The submitted data failed validation", detail: detail)
    }
    public static func notFound(_ entity: String, id: String) -> RoundsError {
        RoundsError(code: "not_found", status: 404, zh: "找不到该\(entity)", en: "No such \(entity)", detail: "\(entity) \(id)")
    }
    public static let unauthenticated = RoundsError(
        code: "unauthenticated", status: 401, zh: "请先登录", en: "Please sign in first")
    public static func forbidden(_ detail: String? = nil) -> RoundsError {
        RoundsError(code: "forbidden", status: 403, zh: "您没有权限执行此操作", en: "You do not have permission to do this", detail: detail)
    }
    public static func insufficientScope(_ scope: TokenScope) -> RoundsError {
        RoundsError(code: "insufficient_scope", status: 403, zh: "API 令牌缺少所需的权限范围", en: "The API token lacks the required scope", detail: scope.rawValue)
    }
    public static let badCredentials = RoundsError(
        code: "bad_credentials", status: 401, zh: "用户名或密码错误", en: "Wrong username or password")
    public static func accountLocked(minutes: Int) -> RoundsError {
        RoundsError(code: "account_locked", status: 423, zh: "登录失败次数过多，账号已暂时锁定", en: "Too many failed sign-ins; the account is locked for a while", detail: "try again in \(minutes) min")
    }
    public static func tooManySignIns(seconds: Int) -> RoundsError {
        RoundsError(code: "too_many_sign_ins", status: 429, zh: "此设备登录失败次数过多，请稍后再试", en: "Too many failed sign-ins from this device; try again later",
                    detail: "try again in \(seconds) s")
    }
    public static func methodNotAllowed(_ method: String) -> RoundsError {
        RoundsError(code: "method_not_allowed", status: 405, zh: "该地址不支持此请求方法", en: "This address does not take this method", detail: method)
    }
    public static let readBackRequired = RoundsError(
        code: "read_back_required", status: 422, zh: "请先复述危急值结果再确认", en: "Read the value back before acknowledging")
    public static let readBackMismatch = RoundsError(
        code: "read_back_mismatch", status: 422, zh: "复述的内容与危急值结果不符，请核对后重新输入", en: "The read-back does not match the value; check it and type it again")
    public static let requestTimeout = RoundsError(
        code: "request_timeout", status: 408, zh: "请求内容未在规定时间内送达，连接已关闭", en: "The request body did not arrive in time; the connection is closed")
    public static let clientClosed = RoundsError(
        code: "client_closed", status: 400, zh: "连接在请求送达前中断", en: "The connection ended before the request arrived")
    public static let csrf = RoundsError(
        code: "csrf_rejected", status: 403, zh: "页面已过期或请求来源不可信，请刷新后重试", en: "The form has expired or did not come from Rounds; reload and try again")
    public static func conflict(_ detail: String) -> RoundsError {
        RoundsError(code: "conflict", status: 409, zh: "与现有数据冲突", en: "This conflicts with existing data", detail: detail)
    }
    public static func payloadTooLarge(_ detail: String) -> RoundsError {
        RoundsError(code: "payload_too_large", status: 413, zh: "提交内容过大", en: "The request is too large", detail: detail)
    }
}
