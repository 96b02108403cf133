import Foundation
import RoundsCore

/// The formulas of one table, checked together: each against the types of the fields it reads,
/// in an order where a formula comes after every formula it reads, and no formula reading
/// itself through others (a cycle is refused when the formula is saved).
struct FormulaPlan {
    struct Step {
        let field: TableField
        let formula: Formula
    }

    /// In evaluation order.
    let steps: [Step]

    /// `fields`: the table's fields, as they would be after the change being checked.
    init(fields: [TableField], timeZone: TimeZone) throws {
        let byName = Dictionary(fields.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let formulas = fields.filter { $0.fieldKind == .formula }
        // Types of the formulas are found in dependency order, so a formula over a formula sees
        // its result type; a cycle shows as a formula that can never be placed.
        var types: [String: FormulaType] = [:]
        for field in fields where field.fieldKind != .formula { types[field.name] = FieldCodec(field, timeZone: timeZone).resultType }
        var pending = formulas
        var ordered: [Step] = []
        while !pending.isEmpty {
            var progressed = false
            for field in pending {
                let source = field.fieldOptions.formula ?? ""
                let root = try Self.parse(source, field: field)
                let reads = root.fieldNames
                if let missing = reads.first(where: { byName[$0] == nil }) {
                    throw RoundsError.validation("\(field.name): there is no field {\(missing)} in this table")
                }
                // Linked records change without this record changing, so a kept formula would go
                // stale: a rollup sums them up instead.
                if let linked = reads.first(where: { byName[$0]!.fieldKind.readsLinks }) {
                    throw RoundsError.validation("\(field.name): {\(linked)} reads linked records; sum them up with a rollup field instead")
                }
                guard reads.allSatisfy({ types[$0] != nil }) else { continue }
                let formula: Formula
                do { formula = try Formula(source, fields: types) } catch let problem as FormulaProblem {
                    throw RoundsError.validation("\(field.name): \(problem)")
                }
                types[field.name] = formula.type
                ordered.append(Step(field: field, formula: formula))
                pending.removeAll { $0.id == field.id }
                progressed = true
            }
            if !progressed {
                let names = pending.map { "{\($0.name)}" }.joined(separator: "、")
                throw RoundsError.validation("formulas read each other in a circle: \(names)")
            }
        }
        steps = ordered
    }

    static func parse(_ source: String, field: TableField) throws -> FormulaNode {
        do { return try FormulaParser.parse(source) } catch let problem as FormulaProblem {
            throw RoundsError.validation("\(field.name): \(problem)")
        }
    }

    /// The steps to run after `changed` fields (by name) changed: those reading them, directly
    /// or through other formulas; every step when `changed` is nil (a new record).
    func steps(after changed: Set<String>?) -> [Step] {
        guard var dirty = changed else { return steps }
        var out: [Step] = []
        for step in steps where !dirty.isDisjoint(with: step.formula.dependencies) {
            out.append(step)
            dirty.insert(step.field.name)
        }
        return out
    }

    /// Whether any formula reads the time (TODAY, NOW): those are recomputed each night.
    var readsTheClock: Bool {
        steps.contains { step in
            func walk(_ n: FormulaNode) -> Bool {
                switch n {
                case .call(let name, let args): return name == "TODAY" || name == "NOW" || args.contains(where: walk)
                case .negate(let i): return walk(i)
                case .binary(_, let l, let r): return walk(l) || walk(r)
                default: return false
                }
            }
            return walk(step.formula.root)
        }
    }
}

/// Keeps formulas working when a field they read is renamed: `{旧名}` becomes `{新名}`.
enum FormulaRename {
    static func rename(_ source: String, from old: String, to new: String) -> String {
        guard let tokens = try? Lexer(source).tokens() else { return source }
        var chars = Array(source)
        // From the end, so earlier positions stay valid.
        for token in tokens.reversed() {
            guard case .field(let name) = token.kind, name == old else { continue }
            let open = Lexer.ascii(chars[token.position])
            let close: Character = open == "{" ? "}" : "]"
            var end = token.position + 1
            while end < chars.count, Lexer.ascii(chars[end]) != close { end += 1 }
            guard end < chars.count else { continue }
            chars.replaceSubrange(token.position...end, with: Array("{\(new)}"))
        }
        return String(chars)
    }
}
