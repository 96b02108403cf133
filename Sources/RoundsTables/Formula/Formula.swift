import Foundation

/// A saved formula: parsed and type-checked once, then evaluated for each record.
///
///     let f = try Formula("DATEDIF(TODAY(), {执业证书到期}, \"D\")", fields: ["执业证书到期": .date])
///     f.type            // .number
///     f.evaluate(record) // .number(41) — or .error with the reason, per cell
public struct Formula: Sendable {
    public let source: String
    public let root: FormulaNode
    public let type: FormulaType
    /// The fields it reads: a change to one of them recomputes it, and nothing else does.
    public let dependencies: [String]

    /// `fields`: the types of the fields the formula may name (the table's fields).
    public init(_ source: String, fields: [String: FormulaType]) throws {
        self.source = source
        root = try FormulaParser.parse(source)
        type = try FormulaChecker(fields: fields).type(of: root)
        dependencies = root.fieldNames
    }

    /// The value for one record. `fields` gives the record's values by field name.
    public func evaluate(_ fields: [String: FormulaValue], in environment: FormulaEnvironment) -> FormulaValue {
        FormulaEvaluator(fields: fields, environment: environment).value(of: root)
    }
}

/// What a formula evaluates against besides the record: the time now, the hospital's time zone
/// (TODAY is the hospital's today, not the server's) and its working-day calendar.
public struct FormulaEnvironment: Sendable {
    public var now: Date
    public var timeZone: TimeZone
    public var workCalendar: WorkCalendar
    let calendar: Calendar

    public init(now: Date, timeZone: TimeZone, workCalendar: WorkCalendar = .weekdaysOnly) {
        self.now = now
        self.timeZone = timeZone
        self.workCalendar = workCalendar
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    /// Midnight, hospital time, of the day `date` falls on.
    func day(_ date: Date) -> Date { calendar.startOfDay(for: date) }
}

/// Types each node, so a mistake is refused when the formula is saved, with its reason.
struct FormulaChecker {
    let fields: [String: FormulaType]

    func type(of node: FormulaNode) throws -> FormulaType {
        switch node {
        case .number: return .number
        case .text: return .text
        case .boolean: return .boolean
        case .field(let name):
            guard let type = fields[name] else {
                let close = fields.keys.filter { $0.localizedCaseInsensitiveContains(name) || name.localizedCaseInsensitiveContains($0) }.sorted()
                let hint = close.isEmpty ? "" : "; did you mean {\(close[0])}?"
                throw FormulaProblem(.unknownField, "there is no field {\(name)} in this table\(hint)")
            }
            return type
        case .negate(let inner):
            let t = try type(of: inner)
            guard t.acceptsNumber else { throw FormulaProblem(.type, "“-” needs a number, not \(t)") }
            return .number
        case .binary(let op, let l, let r):
            return try binary(op, try type(of: l), try type(of: r))
        case .call(let name, let args):
            guard let function = FormulaFunctions.named[name] else {
                throw FormulaProblem(.unknownFunction, "there is no function \(name)")
            }
            guard function.arity.contains(args.count) else {
                throw FormulaProblem(.arguments, "\(name) takes \(function.arityText), not \(args.count): \(function.example)")
            }
            let types = try args.map { try type(of: $0) }
            do {
                return try function.check(types)
            } catch let reason as FormulaSignatureError {
                throw FormulaProblem(.type, "\(name): \(reason.message)")
            }
        }
    }

    func binary(_ op: FormulaOperator, _ l: FormulaType, _ r: FormulaType) throws -> FormulaType {
        switch op {
        case .add:
            if l.isDate && r.acceptsNumber { return l }
            if r.isDate && l.acceptsNumber { return r }
            if l.acceptsNumber && r.acceptsNumber { return .number }
            if l == .text || r == .text { throw FormulaProblem(.type, "“+” adds numbers; join text with “&”") }
            throw FormulaProblem(.type, "“+” cannot add \(l) and \(r)")
        case .subtract:
            if l.isDate && r.isDate { return .number }  // days between
            if l.isDate && r == .any { return .any }     // days between, or a date, by what comes
            if l == .any && r.isDate { return .number }  // only a date (or a blank) can come first
            if l.isDate && r.acceptsNumber { return l }
            if l.acceptsNumber && r.acceptsNumber { return .number }
            throw FormulaProblem(.type, "“-” cannot subtract \(r) from \(l)")
        case .multiply, .divide, .power:
            guard l.acceptsNumber && r.acceptsNumber else { throw FormulaProblem(.type, "“\(op.rawValue)” needs numbers, not \(l) and \(r)") }
            return .number
        case .concat:
            return .text
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            if l == .any || r == .any || FormulaType.unify(l, r) != nil || (l.acceptsNumber && r.acceptsNumber) { return .boolean }
            throw FormulaProblem(.type, "“\(op.rawValue)” compares \(l) with \(r); convert one first (VALUE, TEXT, DATEVALUE)")
        case .and, .or:
            guard l.acceptsBoolean && r.acceptsBoolean else { throw FormulaProblem(.type, "“\(op.rawValue)” needs true/false values, not \(l) and \(r)") }
            return .boolean
        }
    }
}

extension FormulaType {
    var acceptsNumber: Bool { self == .number || self == .boolean || self == .any }
    var acceptsBoolean: Bool { self == .boolean || self == .number || self == .any }
}

/// Evaluates a checked formula for one record. Errors are values (`.error`), carried up to the
/// cell unless a function (IFERROR, ISERROR, IF's unused branch) deals with them.
struct FormulaEvaluator {
    let fields: [String: FormulaValue]
    let environment: FormulaEnvironment

    func value(of node: FormulaNode) -> FormulaValue {
        switch node {
        case .number(let n): return .number(n)
        case .text(let t): return .text(t)
        case .boolean(let b): return .boolean(b)
        case .field(let name): return fields[name] ?? .blank
        case .negate(let inner):
            let v = value(of: inner)
            if let e = v.error { return .error(e) }
            return attempt { .number(-(try Coerce.number(v))) }
        case .binary(let op, let l, let r):
            let a = value(of: l), b = value(of: r)
            if let e = a.error ?? b.error { return .error(e) }
            return attempt { try binary(op, a, b) }
        case .call(let name, let args):
            guard let function = FormulaFunctions.named[name] else {
                return .error(FormulaError(.value, "no function \(name)"))
            }
            let values = args.map(value(of:))
            if !function.handlesErrors, let e = values.lazy.compactMap(\.error).first { return .error(e) }
            return attempt { try function.run(values, environment) }
        }
    }

    func attempt(_ body: () throws -> FormulaValue) -> FormulaValue {
        do {
            let v = try body()
            if case .number(let n) = v, !n.isFinite { return .error(FormulaError(.number, "the result is too large")) }
            return v
        } catch let e as FormulaError {
            return .error(e)
        } catch {
            return .error(FormulaError(.value, "\(error)"))
        }
    }

    func binary(_ op: FormulaOperator, _ a: FormulaValue, _ b: FormulaValue) throws -> FormulaValue {
        let env = environment
        switch op {
        case .add:
            if let d = Coerce.dateOrNil(a) { return b.isBlank ? a : try DateMath.addDays(d, try Coerce.number(b), to: a, env) }
            if let d = Coerce.dateOrNil(b) { return a.isBlank ? b : try DateMath.addDays(d, try Coerce.number(a), to: b, env) }
            return .number(try Coerce.number(a) + Coerce.number(b))
        case .subtract:
            if let x = Coerce.dateOrNil(a) {
                if let y = Coerce.dateOrNil(b) { return .number(x.timeIntervalSince(y) / 86_400) }
                if b.isBlank { return a }
                return try DateMath.addDays(x, -(try Coerce.number(b)), to: a, env)
            }
            if a.isBlank, Coerce.dateOrNil(b) != nil { return .blank }
            return .number(try Coerce.number(a) - Coerce.number(b))
        case .multiply: return .number(try Coerce.number(a) * Coerce.number(b))
        case .divide:
            let divisor = try Coerce.number(b)
            guard divisor != 0 else { throw FormulaError(.divideByZero, "division by zero") }
            return .number(try Coerce.number(a) / divisor)
        case .power: return .number(pow(try Coerce.number(a), try Coerce.number(b)))
        case .concat: return .text(Coerce.text(a, env) + Coerce.text(b, env))
        case .and: return .boolean(try Coerce.boolean(a) && Coerce.boolean(b))
        case .or: return .boolean(try Coerce.boolean(a) || Coerce.boolean(b))
        case .equal: return .boolean(Compare.equal(a, b))
        case .notEqual: return .boolean(!Compare.equal(a, b))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = try Compare.order(a, b) else { return .boolean(false) }
            switch op {
            case .less: return .boolean(order == .orderedAscending)
            case .lessOrEqual: return .boolean(order != .orderedDescending)
            case .greater: return .boolean(order == .orderedDescending)
            default: return .boolean(order != .orderedAscending)
            }
        }
    }
}

/// The conversions functions and operators share.
enum Coerce {
    static func number(_ v: FormulaValue) throws -> Double {
        switch v {
        case .blank: return 0
        case .number(let n): return n
        case .boolean(let b): return b ? 1 : 0
        case .text(let t):
            let trimmed = t.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return 0 }
            guard let n = Double(trimmed.replacingOccurrences(of: ",", with: "")) else {
                throw FormulaError(.value, "“\(t)” is not a number")
            }
            return n
        case .list(let items):
            let present = items.filter { !$0.isBlank }
            if present.isEmpty { return 0 }
            guard present.count == 1 else { throw FormulaError(.value, "a list of \(present.count) values is not one number") }
            return try number(present[0])
        case .date, .dateTime: throw FormulaError(.value, "a date is not a number")
        case .error(let e): throw e
        }
    }

    static func text(_ v: FormulaValue, _ env: FormulaEnvironment) -> String { FormulaText.display(v, timeZone: env.timeZone) }

    static func boolean(_ v: FormulaValue) throws -> Bool {
        switch v {
        case .blank: return false
        case .boolean(let b): return b
        case .number(let n): return n != 0
        case .text(let t): return !t.isEmpty
        case .list(let items): return items.contains { !$0.isBlank }
        case .date, .dateTime: return true
        case .error(let e): throw e
        }
    }

    static func dateOrNil(_ v: FormulaValue) -> Date? {
        switch v {
        case .date(let d), .dateTime(let d): return d
        case .list(let items) where items.count == 1: return dateOrNil(items[0])
        default: return nil
        }
    }

    /// A date argument: nil when blank (the function's result is then blank), an error when the
    /// value is not a date.
    static func date(_ v: FormulaValue, _ env: FormulaEnvironment) throws -> Date? {
        if v.isBlank { return nil }
        if let d = dateOrNil(v) { return d }
        if case .text(let t) = v, let d = DateMath.parse(t, env) { return d }
        if case .error(let e) = v { throw e }
        throw FormulaError(.value, "“\(text(v, env))” is not a date")
    }

    static func list(_ v: FormulaValue) -> [FormulaValue] {
        switch v {
        case .list(let items): return items.flatMap(list)
        case .blank: return []
        default: return [v]
        }
    }

    static func integer(_ v: FormulaValue) throws -> Int {
        let n = try number(v)
        guard n.isFinite, abs(n) < 1e9 else { throw FormulaError(.number, "\(FormulaText.number(n)) is out of range") }
        return Int(n.rounded(.towardZero))
    }
}

enum Compare {
    static func equal(_ a: FormulaValue, _ b: FormulaValue) -> Bool {
        if a.isBlank && b.isBlank { return true }
        if a.isBlank || b.isBlank {
            // A blank equals 0, "" and FALSE, as in spreadsheets; never a date.
            let other = a.isBlank ? b : a
            switch other {
            case .number(let n): return n == 0
            case .boolean(let x): return !x
            default: return false
            }
        }
        if let x = Coerce.dateOrNil(a), let y = Coerce.dateOrNil(b) { return x == y }
        switch (a, b) {
        case (.text(let x), .text(let y)): return x == y
        case (.list(let x), .list(let y)): return x == y
        case (.list(let x), _) where x.count == 1: return equal(x[0], b)
        case (_, .list(let y)) where y.count == 1: return equal(a, y[0])
        case (.text(let x), _): return Double(x).map { $0 == (try? Coerce.number(b)) } ?? false
        case (_, .text(let y)): return Double(y).map { $0 == (try? Coerce.number(a)) } ?? false
        default:
            guard let x = try? Coerce.number(a), let y = try? Coerce.number(b) else { return false }
            return x == y
        }
    }

    /// nil when the two cannot be ordered (a blank beside a date).
    static func order(_ a: FormulaValue, _ b: FormulaValue) throws -> ComparisonResult? {
        if let x = Coerce.dateOrNil(a) {
            guard let y = Coerce.dateOrNil(b) else { return nil }
            return x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
        }
        if Coerce.dateOrNil(b) != nil { return nil }
        if case .text(let x) = a, case .text(let y) = b {
            return x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
        }
        let x = try Coerce.number(a), y = try Coerce.number(b)
        return x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
    }
}
