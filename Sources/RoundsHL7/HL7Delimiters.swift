/// The five (or six, from v2.7) separator characters, read from MSH-1 and MSH-2 of each
/// message; never assumed.
public struct HL7Delimiters: Sendable, Equatable {
    public var field: Character
    public var component: Character
    public var repetition: Character
    public var escape: Character
    public var subcomponent: Character
    /// v2.7 truncation character, kept only so MSH-2 round-trips.
    public var truncation: Character?

    public static let standard = HL7Delimiters(field: "|", component: "^", repetition: "~", escape: "\\", subcomponent: "&", truncation: nil)

    public init(field: Character, component: Character, repetition: Character, escape: Character,
                subcomponent: Character, truncation: Character? = nil) {
        self.field = field
        self.component = component
        self.repetition = repetition
        self.escape = escape
        self.subcomponent = subcomponent
        self.truncation = truncation
    }

    /// MSH-2 as written.
    public var encodingCharacters: String {
        String([component, repetition, escape, subcomponent]) + (truncation.map { String($0) } ?? "")
    }

    /// Reads delimiters from the start of a message ("MSH|^~\&|…").
    public init(header: Substring) throws {
        let chars = Array(header.prefix(9))
        guard chars.count >= 8, String(chars[0..<3]) == "MSH" else {
            throw HL7Error.missingMSH
        }
        let field = chars[3]
        var encoding: [Character] = []
        for c in chars[4...] {
            if c == field { break }
            encoding.append(c)
        }
        guard encoding.count == 4 || encoding.count == 5 else {
            throw HL7Error.badDelimiters("MSH-2 must hold 4 or 5 encoding characters, found \(encoding.count)")
        }
        let all = [field] + encoding
        guard Set(all).count == all.count else { throw HL7Error.badDelimiters("delimiters must be distinct") }
        guard all.allSatisfy({ $0.isASCII && !$0.isLetter && !$0.isNumber && !$0.isWhitespace && $0 != "\r" && $0 != "\n" }) else {
            throw HL7Error.badDelimiters("delimiters must be ASCII punctuation")
        }
        self.init(field: field, component: encoding[0], repetition: encoding[1], escape: encoding[2],
                  subcomponent: encoding[3], truncation: encoding.count == 5 ? encoding[4] : nil)
    }
}

/// Why a message could not be read. The text becomes the ERR segment of the rejection ACK.
public enum HL7Error: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case missingMSH
    case badDelimiters(String)
    case badSegment(line: Int, String)
    case badEncoding(String)
    case badPath(String)
    case tooLarge(limit: Int)

    public var description: String {
        switch self {
        case .empty: return "empty message"
        case .missingMSH: return "message does not start with an MSH segment"
        case .badDelimiters(let s): return "bad delimiters: \(s)"
        case .badSegment(let line, let s): return "segment \(line): \(s)"
        case .badEncoding(let s): return "character encoding: \(s)"
        case .badPath(let s): return "bad terser path: \(s)"
        case .tooLarge(let limit): return "message larger than the \(limit)-byte limit"
        }
    }

    /// HL7 table 0357 message error condition code for ERR-3.
    public var errorCode: String {
        switch self {
        case .empty, .missingMSH, .badSegment: return "100"  // segment sequence error
        case .badDelimiters, .badEncoding, .badPath: return "102"  // data type error
        case .tooLarge: return "207"  // application internal error
        }
    }
}
