/// HL7 escape sequences: \F\ \S\ \T\ \R\ \E\ for the delimiters, \Xhh…\ for raw bytes,
/// \.br\ for a line break. Formatting commands we cannot show (\H\, \N\, \.sp\ …) are dropped.
public enum HL7Escaping {
    public static func unescape(_ text: String, _ d: HL7Delimiters) -> String {
        guard text.contains(d.escape) else { return text }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            guard c == d.escape, let close = text[text.index(after: i)...].firstIndex(of: d.escape) else {
                out.append(c)
                i = text.index(after: i)
                continue
            }
            let sequence = String(text[text.index(after: i)..<close])
            switch sequence {
            case "F": out.append(d.field)
            case "S": out.append(d.component)
            case "T": out.append(d.subcomponent)
            case "R": out.append(d.repetition)
            case "E": out.append(d.escape)
            case "P": if let t = d.truncation { out.append(t) }
            case ".br", ".sp": out.append("\n")
            case "H", "N": break
            default:
                if sequence.hasPrefix("X"), let decoded = hexText(sequence.dropFirst()) {
                    out += decoded
                } else if sequence.hasPrefix(".") || sequence.hasPrefix("C") || sequence.hasPrefix("M") || sequence.hasPrefix("Z") {
                    break  // formatting, character-set switches, local escapes: nothing to show
                } else {
                    // Not an escape sequence we know: keep the text as it came.
                    out.append(c)
                    out += sequence
                    out.append(d.escape)
                }
            }
            i = text.index(after: close)
        }
        return out
    }

    public static func escape(_ text: String, _ d: HL7Delimiters) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case d.escape: out += "\(d.escape)E\(d.escape)"
            case d.field: out += "\(d.escape)F\(d.escape)"
            case d.component: out += "\(d.escape)S\(d.escape)"
            case d.subcomponent: out += "\(d.escape)T\(d.escape)"
            case d.repetition: out += "\(d.escape)R\(d.escape)"
            case "\r\n", "\n", "\r": out += "\(d.escape).br\(d.escape)"
            default:
                if let t = d.truncation, c == t { out += "\(d.escape)P\(d.escape)" } else { out.append(c) }
            }
        }
        return out
    }

    private static func hexText(_ hex: Substring) -> String? {
        guard hex.count % 2 == 0, !hex.isEmpty else { return nil }
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
            bytes.append(b)
            i = j
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A terser path: `SEG(segRep)-field(fieldRep)-component-subcomponent`, all 1-based.
struct HL7Path: Sendable, Equatable {
    var segment: String
    var segmentRepetition = 1
    var field: Int
    var fieldRepetition = 1
    var component: Int?
    var subcomponent: Int?

    init(_ path: String) throws {
        let parts = path.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.count <= 4 else { throw HL7Error.badPath(path) }
        func indexed(_ s: Substring) throws -> (Substring, Int) {
            guard let open = s.firstIndex(of: "(") else { return (s, 1) }
            guard s.last == ")", let n = Int(s[s.index(after: open)..<s.index(before: s.endIndex)]), n >= 1 else {
                throw HL7Error.badPath(path)
            }
            return (s[..<open], n)
        }
        let (segment, segmentRepetition) = try indexed(parts[0])
        guard segment.count == 3 else { throw HL7Error.badPath(path) }
        let (fieldText, fieldRepetition) = try indexed(parts[1])
        guard let field = Int(fieldText), field >= 1 else { throw HL7Error.badPath(path) }
        self.segment = String(segment).uppercased()
        self.segmentRepetition = segmentRepetition
        self.field = field
        self.fieldRepetition = fieldRepetition
        if parts.count >= 3 {
            guard let c = Int(parts[2]), c >= 1 else { throw HL7Error.badPath(path) }
            component = c
        }
        if parts.count == 4 {
            guard let s = Int(parts[3]), s >= 1 else { throw HL7Error.badPath(path) }
            subcomponent = s
        }
    }
}
