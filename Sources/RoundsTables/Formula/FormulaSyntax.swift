import Foundation

/// A formula as written in a field's settings, parsed once when the formula is saved.
///
/// The syntax is the one hospital staff know from Feishu Bitable and Airtable: fields by name in
/// braces or brackets (`{出院日期}`, `[出院日期]`), functions by name (`IF`, `DATEADD`…, any case),
/// text in double or single quotes, `TRUE`/`FALSE`, and the operators `+ - * / ^ & = != <> < <= > >=
/// && ||`, with the usual precedence (`^` binds tightest, then `* /`, `+ -`, `&`, comparisons, `&&`,
/// `||`). Full-width brackets, commas and quotes typed on a Chinese keyboard are read as their
/// ASCII forms outside text.
public indirect enum FormulaNode: Sendable, Equatable {
    case number(Double)
    case text(String)
    case boolean(Bool)
    /// A field of the same record, by name.
    case field(String)
    /// A function, its name upper-cased.
    case call(String, [FormulaNode])
    case negate(FormulaNode)
    case binary(FormulaOperator, FormulaNode, FormulaNode)

    /// The fields the formula reads, each once, in order of first use.
    public var fieldNames: [String] {
        var seen: [String] = []
        func walk(_ node: FormulaNode) {
            switch node {
            case .field(let name): if !seen.contains(name) { seen.append(name) }
            case .call(_, let args): args.forEach(walk)
            case .negate(let inner): walk(inner)
            case .binary(_, let l, let r): walk(l); walk(r)
            case .number, .text, .boolean: break
            }
        }
        walk(self)
        return seen
    }
}

public enum FormulaOperator: String, Sendable, Equatable, CaseIterable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", power = "^", concat = "&"
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case and = "&&", or = "||"

    var precedence: Int {
        switch self {
        case .or: return 1
        case .and: return 2
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: return 3
        case .concat: return 4
        case .add, .subtract: return 5
        case .multiply, .divide: return 6
        case .power: return 7
        }
    }

    var isComparison: Bool { precedence == 3 }
}

/// Why a formula cannot be saved: a syntax error, an unknown field or function, a type error,
/// a cycle. `position` is the character offset it refers to, when there is one.
public struct FormulaProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case syntax, unknownField = "unknown_field", unknownFunction = "unknown_function"
        case arguments, type, cycle
    }
    public var kind: Kind
    public var message: String
    public var position: Int?

    public init(_ kind: Kind, _ message: String, at position: Int? = nil) {
        self.kind = kind; self.message = message; self.position = position
    }

    public var description: String {
        position.map { "\(message) (at character \($0 + 1))" } ?? message
    }
}

public enum FormulaParser {
    /// At most this many characters and this depth of nesting: a formula is a field setting,
    /// not a program, and a deep one would only exhaust the stack.
    public static let maximumLength = 10_000
    public static let maximumDepth = 64

    public static func parse(_ source: String) throws -> FormulaNode {
        guard source.count <= maximumLength else {
            throw FormulaProblem(.syntax, "the formula is longer than \(maximumLength) characters")
        }
        var parser = Parser(tokens: try Lexer(source).tokens())
        let node = try parser.expression(depth: 0)
        guard case .end = parser.peek.kind else {
            throw FormulaProblem(.syntax, "unexpected \(parser.peek.kind.shown)", at: parser.peek.position)
        }
        return node
    }
}

// MARK: Tokens

struct Token {
    enum Kind: Equatable {
        case number(Double), text(String), field(String), name(String)
        case op(FormulaOperator), openParen, closeParen, comma, end

        var shown: String {
            switch self {
            case .number(let n): return "number \(n)"
            case .text(let t): return "text \"\(t)\""
            case .field(let f): return "field {\(f)}"
            case .name(let n): return n
            case .op(let o): return "“\(o.rawValue)”"
            case .openParen: return "“(”"
            case .closeParen: return "“)”"
            case .comma: return "“,”"
            case .end: return "end of formula"
            }
        }
    }
    var kind: Kind
    var position: Int
}

struct Lexer {
    let chars: [Character]
    init(_ source: String) { chars = Array(source) }

    /// Full-width punctuation from a Chinese input method reads as ASCII (outside text only:
    /// inside quotes every character is kept as typed).
    static func ascii(_ c: Character) -> Character {
        switch c {
        case "（": return "("
        case "）": return ")"
        case "，": return ","
        case "【": return "["
        case "】": return "]"
        case "｛": return "{"
        case "｝": return "}"
        case "“", "”": return "\""
        case "‘", "’": return "'"
        case "＝": return "="
        case "＋": return "+"
        case "－": return "-"
        case "＊": return "*"
        case "／": return "/"
        case "＜": return "<"
        case "＞": return ">"
        case "！": return "!"
        case "＆": return "&"
        case "　": return " "
        default: return c
        }
    }

    func tokens() throws -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < chars.count {
            let c = Self.ascii(chars[i])
            let start = i
            if c.isWhitespace { i += 1; continue }
            switch c {
            case "(": out.append(Token(kind: .openParen, position: start)); i += 1
            case ")": out.append(Token(kind: .closeParen, position: start)); i += 1
            case ",", ";": out.append(Token(kind: .comma, position: start)); i += 1
            case "{", "[":
                let close: Character = c == "{" ? "}" : "]"
                var j = i + 1
                var name = ""
                while j < chars.count, Self.ascii(chars[j]) != close { name.append(chars[j]); j += 1 }
                guard j < chars.count else { throw FormulaProblem(.syntax, "a field name is not closed with “\(close)”", at: start) }
                let trimmed = name.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { throw FormulaProblem(.syntax, "an empty field name", at: start) }
                out.append(Token(kind: .field(trimmed), position: start))
                i = j + 1
            case "\"", "'":
                // An ASCII quote is closed by the same quote; a curly one (from a Chinese input
                // method) by either curly quote, so curly quotes may stand inside ASCII-quoted text.
                let opener = chars[i]
                func closes(_ d: Character) -> Bool { opener.isASCII ? d == opener : (!d.isASCII && Self.ascii(d) == c) }
                var j = i + 1
                var text = ""
                var closed = false
                while j < chars.count {
                    let d = chars[j]
                    if closes(d) {
                        // A doubled quote is a quote inside the text.
                        if j + 1 < chars.count, closes(chars[j + 1]) { text.append(c); j += 2; continue }
                        closed = true
                        break
                    }
                    if d == "\\", j + 1 < chars.count {
                        let e = chars[j + 1]
                        switch e {
                        case "n": text.append("\n")
                        case "t": text.append("\t")
                        default: text.append(e)
                        }
                        j += 2
                        continue
                    }
                    text.append(d)
                    j += 1
                }
                guard closed else { throw FormulaProblem(.syntax, "a text is not closed with its quote", at: start) }
                out.append(Token(kind: .text(text), position: start))
                i = j + 1
            case "0"..."9", ".":
                var j = i
                var literal = ""
                while j < chars.count, chars[j].isASCII, chars[j].isNumber || chars[j] == "." { literal.append(chars[j]); j += 1 }
                if j < chars.count, chars[j] == "e" || chars[j] == "E" {
                    var k = j + 1
                    var exponent = "e"
                    if k < chars.count, chars[k] == "+" || chars[k] == "-" { exponent.append(chars[k]); k += 1 }
                    var digits = false
                    while k < chars.count, chars[k].isASCII, chars[k].isNumber { exponent.append(chars[k]); k += 1; digits = true }
                    if digits { literal += exponent; j = k }
                }
                guard let value = Double(literal), value.isFinite else { throw FormulaProblem(.syntax, "“\(literal)” is not a number", at: start) }
                out.append(Token(kind: .number(value), position: start))
                i = j
            case "+": out.append(Token(kind: .op(.add), position: start)); i += 1
            case "-": out.append(Token(kind: .op(.subtract), position: start)); i += 1
            case "*": out.append(Token(kind: .op(.multiply), position: start)); i += 1
            case "/": out.append(Token(kind: .op(.divide), position: start)); i += 1
            case "^": out.append(Token(kind: .op(.power), position: start)); i += 1
            case "&":
                if i + 1 < chars.count, Self.ascii(chars[i + 1]) == "&" { out.append(Token(kind: .op(.and), position: start)); i += 2 }
                else { out.append(Token(kind: .op(.concat), position: start)); i += 1 }
            case "|":
                guard i + 1 < chars.count, chars[i + 1] == "|" else { throw FormulaProblem(.syntax, "“|” alone; “||” means or", at: start) }
                out.append(Token(kind: .op(.or), position: start)); i += 2
            case "=":
                out.append(Token(kind: .op(.equal), position: start))
                i += (i + 1 < chars.count && Self.ascii(chars[i + 1]) == "=") ? 2 : 1
            case "!":
                guard i + 1 < chars.count, Self.ascii(chars[i + 1]) == "=" else { throw FormulaProblem(.syntax, "“!” alone; use NOT(…) or “!=”", at: start) }
                out.append(Token(kind: .op(.notEqual), position: start)); i += 2
            case "<":
                let next = i + 1 < chars.count ? Self.ascii(chars[i + 1]) : " "
                if next == "=" { out.append(Token(kind: .op(.lessOrEqual), position: start)); i += 2 }
                else if next == ">" { out.append(Token(kind: .op(.notEqual), position: start)); i += 2 }
                else { out.append(Token(kind: .op(.less), position: start)); i += 1 }
            case ">":
                if i + 1 < chars.count, Self.ascii(chars[i + 1]) == "=" { out.append(Token(kind: .op(.greaterOrEqual), position: start)); i += 2 }
                else { out.append(Token(kind: .op(.greater), position: start)); i += 1 }
            default:
                guard c.isLetter || c == "_" else { throw FormulaProblem(.syntax, "“\(chars[i])” is not part of a formula", at: start) }
                var j = i
                var name = ""
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." {
                    name.append(chars[j]); j += 1
                }
                out.append(Token(kind: .name(name), position: start))
                i = j
            }
        }
        out.append(Token(kind: .end, position: chars.count))
        return out
    }
}

// MARK: Parser (precedence climbing)

struct Parser {
    let tokens: [Token]
    var index = 0

    var peek: Token { tokens[index] }
    mutating func next() -> Token { defer { index += 1 }; return tokens[index] }

    mutating func expression(depth: Int, minimum: Int = 1) throws -> FormulaNode {
        guard depth < FormulaParser.maximumDepth else {
            throw FormulaProblem(.syntax, "the formula nests deeper than \(FormulaParser.maximumDepth) levels", at: peek.position)
        }
        var left = try unary(depth: depth)
        while case .op(let op) = peek.kind, op.precedence >= minimum {
            _ = next()
            // `^` groups to the right (2^3^2 = 2^9); the others to the left.
            let right = try expression(depth: depth + 1, minimum: op == .power ? op.precedence : op.precedence + 1)
            left = .binary(op, left, right)
        }
        return left
    }

    mutating func unary(depth: Int) throws -> FormulaNode {
        if case .op(.subtract) = peek.kind {
            _ = next()
            // -x^2 is -(x^2), as in spreadsheets' documentation of precedence for formulas.
            return .negate(try expression(depth: depth + 1, minimum: FormulaOperator.power.precedence))
        }
        if case .op(.add) = peek.kind { _ = next(); return try unary(depth: depth + 1) }
        return try primary(depth: depth)
    }

    mutating func primary(depth: Int) throws -> FormulaNode {
        let token = next()
        switch token.kind {
        case .number(let n): return .number(n)
        case .text(let t): return .text(t)
        case .field(let f): return .field(f)
        case .openParen:
            let inner = try expression(depth: depth + 1)
            guard case .closeParen = next().kind else { throw FormulaProblem(.syntax, "a “(” is not closed", at: token.position) }
            return inner
        case .name(let raw):
            let name = raw.uppercased()
            if case .openParen = peek.kind {
                _ = next()
                var args: [FormulaNode] = []
                if case .closeParen = peek.kind { _ = next(); return .call(name, args) }
                while true {
                    args.append(try expression(depth: depth + 1))
                    let separator = next()
                    if case .closeParen = separator.kind { break }
                    guard case .comma = separator.kind else {
                        throw FormulaProblem(.syntax, "expected “,” or “)” in \(name)(…), found \(separator.kind.shown)", at: separator.position)
                    }
                }
                return .call(name, args)
            }
            if name == "TRUE" { return .boolean(true) }
            if name == "FALSE" { return .boolean(false) }
            throw FormulaProblem(.syntax, "“\(raw)” is neither a function call nor a field; fields are written {\(raw)}", at: token.position)
        default:
            throw FormulaProblem(.syntax, "unexpected \(token.kind.shown)", at: token.position)
        }
    }
}
