import Foundation

/// Why arguments do not fit a function (shown as "NAME: reason" when the formula is saved).
struct FormulaSignatureError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One function of the formula language: what it takes, what it gives, how it runs, and the
/// line of the reference page that documents it (zh-CN and English, with an example).
public struct FormulaFunction: Sendable {
    public enum Category: String, Sendable, CaseIterable {
        case text, number, logical, date, list, clinical
    }

    public let name: String
    public let category: Category
    let arity: ClosedRange<Int>
    let check: @Sendable ([FormulaType]) throws -> FormulaType
    let run: @Sendable ([FormulaValue], FormulaEnvironment) throws -> FormulaValue
    /// IF, IFERROR, ISERROR…: given errors as values instead of failing on them.
    let handlesErrors: Bool
    public let example: String
    public let summaryZH: String
    public let summaryEN: String

    var arityText: String {
        if arity.upperBound == Int.max { return "at least \(arity.lowerBound) argument\(arity.lowerBound == 1 ? "" : "s")" }
        if arity.lowerBound == arity.upperBound { return "\(arity.lowerBound) argument\(arity.lowerBound == 1 ? "" : "s")" }
        return "\(arity.lowerBound) to \(arity.upperBound) arguments"
    }
}

/// What a parameter accepts when the formula is checked.
enum FormulaParam: Sendable {
    case number, text, boolean, date, list, any

    func accepts(_ t: FormulaType) -> Bool {
        switch self {
        case .text, .list, .any: return true
        case .number:
            if case .list(let e) = t { return e.acceptsNumber }
            return t.acceptsNumber
        case .boolean: return t != .date && t != .dateTime
        case .date:
            if case .list(let e) = t { return e.isDate || e == .any || e == .text }
            return t.isDate || t == .any || t == .text
        }
    }

    var word: String {
        switch self {
        case .number: return "a number"
        case .text: return "text"
        case .boolean: return "true/false"
        case .date: return "a date"
        case .list: return "a list"
        case .any: return "a value"
        }
    }
}

/// The arguments of one call, with the conversions every function uses.
struct FormulaArgs {
    let values: [FormulaValue]
    let env: FormulaEnvironment

    var count: Int { values.count }
    func has(_ i: Int) -> Bool { i < values.count }
    subscript(_ i: Int) -> FormulaValue { values[i] }
    func number(_ i: Int) throws -> Double { try Coerce.number(values[i]) }
    func number(_ i: Int, or fallback: Double) throws -> Double { has(i) ? try number(i) : fallback }
    func int(_ i: Int) throws -> Int { try Coerce.integer(values[i]) }
    func int(_ i: Int, or fallback: Int) throws -> Int { has(i) ? try int(i) : fallback }
    func text(_ i: Int) -> String { Coerce.text(values[i], env) }
    func text(_ i: Int, or fallback: String) -> String { has(i) ? text(i) : fallback }
    func bool(_ i: Int) throws -> Bool { try Coerce.boolean(values[i]) }
    func date(_ i: Int) throws -> Date? { try Coerce.date(values[i], env) }
    /// Every argument, lists opened up (SUM({Lookup}, 3)).
    var flattened: [FormulaValue] { values.flatMap(Coerce.list) }
    var numbers: [Double] { flattened.compactMap { if case .number(let n) = $0 { return n } else { return nil } } }
}

public enum FormulaFunctions {
    /// Every function, by upper-case name.
    static let named: [String: FormulaFunction] = {
        var all: [String: FormulaFunction] = [:]
        for f in textFunctions + numberFunctions + logicalFunctions + dateFunctions + listFunctions + clinicalFunctions {
            precondition(all[f.name] == nil, "formula function \(f.name) defined twice")
            all[f.name] = f
        }
        return all
    }()

    /// For the reference page, by category then name.
    public static var reference: [FormulaFunction] {
        named.values.sorted { ($0.category.rawValue, $0.name) < ($1.category.rawValue, $1.name) }
    }

    /// A function of fixed parameter kinds. `optional`: how many of the last parameters may be
    /// left out; `variadic`: the last parameter repeats.
    static func def(_ name: String, _ category: FormulaFunction.Category, _ params: [FormulaParam], optional: Int = 0,
                    variadic: Bool = false, returns: FormulaType, handlesErrors: Bool = false,
                    example: String, zh: String, en: String,
                    run: @escaping @Sendable (FormulaArgs) throws -> FormulaValue) -> FormulaFunction {
        def(name, category, params, optional: optional, variadic: variadic, returnsBy: { _ in returns },
            handlesErrors: handlesErrors, example: example, zh: zh, en: en, run: run)
    }

    static func def(_ name: String, _ category: FormulaFunction.Category, _ params: [FormulaParam], optional: Int = 0,
                    variadic: Bool = false, returnsBy: @escaping @Sendable ([FormulaType]) throws -> FormulaType,
                    handlesErrors: Bool = false, example: String, zh: String, en: String,
                    run: @escaping @Sendable (FormulaArgs) throws -> FormulaValue) -> FormulaFunction {
        let minimum = params.count - optional
        let arity = variadic ? minimum...Int.max : minimum...params.count
        return FormulaFunction(
            name: name, category: category, arity: arity,
            check: { types in
                for (i, t) in types.enumerated() {
                    let param = i < params.count ? params[i] : params[params.count - 1]
                    guard param.accepts(t) else {
                        throw FormulaSignatureError("argument \(i + 1) must be \(param.word), not \(t)")
                    }
                }
                return try returnsBy(types)
            },
            run: { values, env in try run(FormulaArgs(values: values, env: env)) },
            handlesErrors: handlesErrors, example: example, summaryZH: zh, summaryEN: en)
    }

    /// The one type of several results (IF's branches…), or why there is none.
    static func unified(_ types: [FormulaType]) throws -> FormulaType {
        var result = FormulaType.any
        for t in types {
            guard let u = FormulaType.unify(result, t) else {
                throw FormulaSignatureError("the possible results are of different types (\(result) and \(t)); convert one, e.g. with TEXT or VALUE")
            }
            result = u
        }
        return result
    }
}
