/// A parsed HL7 v2 message. Leaf values are kept exactly as written (still escaped), so an
/// unchanged message encodes back byte for byte; `value(_:)` unescapes on the way out.
public struct HL7Message: Sendable, Equatable {
    public var delimiters: HL7Delimiters
    public var segments: [HL7Segment]
    /// The separator the sender used between segments (CR by the standard; LF and CRLF tolerated).
    public var segmentSeparator: String
    /// Whether the sender ended the message with a separator.
    public var trailingSeparator: Bool

    public init(delimiters: HL7Delimiters = .standard, segments: [HL7Segment], segmentSeparator: String = "\r",
                trailingSeparator: Bool = true) {
        self.delimiters = delimiters
        self.segments = segments
        self.segmentSeparator = segmentSeparator
        self.trailingSeparator = trailingSeparator
    }

    // MARK: Parsing

    public static func parse(_ text: String) throws -> HL7Message {
        var text = Substring(text)
        // Tolerate a byte-order mark and leading blank lines.
        while let first = text.first, first == "\u{FEFF}" || first == "\r" || first == "\n" || first == "\r\n" { text = text.dropFirst() }
        guard !text.isEmpty else { throw HL7Error.empty }
        let delimiters = try HL7Delimiters(header: text)
        let separator = detectSeparator(text)
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
        var trailing = false
        while let last = lines.last, last.isEmpty {
            lines.removeLast()
            trailing = true
        }
        var segments: [HL7Segment] = []
        segments.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            if line.isEmpty { continue } // blank lines between segments carry nothing
            segments.append(try HL7Segment(parsing: line, delimiters: delimiters, line: index + 1))
        }
        guard segments.first?.name == "MSH" else { throw HL7Error.missingMSH }
        return HL7Message(delimiters: delimiters, segments: segments, segmentSeparator: separator, trailingSeparator: trailing)
    }

    private static func detectSeparator(_ text: Substring) -> String {
        for c in text {
            if c == "\r\n" { return "\r\n" }
            if c == "\r" { return "\r" }
            if c == "\n" { return "\n" }
        }
        return "\r"
    }

    // MARK: Encoding

    public func encode() -> String {
        var out = segments.map { $0.encode(delimiters) }.joined(separator: segmentSeparator)
        if trailingSeparator { out += segmentSeparator }
        return out
    }

    // MARK: Access

    public func segments(named name: String) -> [HL7Segment] {
        segments.filter { $0.name == name }
    }

    public func segment(_ name: String, _ occurrence: Int = 1) -> HL7Segment? {
        var seen = 0
        for s in segments where s.name == name {
            seen += 1
            if seen == occurrence { return s }
        }
        return nil
    }

    /// The unescaped value at a terser path such as `PID-5-1`, `OBX(2)-5`, `PID-3(2)-1`,
    /// `OBX(2)-5-5-1`. Without a component the first component is meant (as HAPI's terser does);
    /// nil when absent. An explicit null (`""`) reads as "".
    public func value(_ path: String) throws -> String? {
        let p = try HL7Path(path)
        guard let raw = raw(p) else { return nil }
        if raw == "\"\"" { return "" }
        return HL7Escaping.unescape(raw, delimiters)
    }

    /// Whether `path` is a terser path this reader understands (`MSH-5`, `PID-3(2)-1`).
    public static func isValidPath(_ path: String) -> Bool { (try? HL7Path(path)) != nil }

    /// Like `value`, but for when a missing or malformed path is simply "no value".
    public subscript(path: String) -> String? {
        (try? value(path)) ?? nil
    }

    /// True when the sender wrote `""`: "delete this value", which is not the same as empty.
    public func isExplicitNull(_ path: String) throws -> Bool {
        raw(try HL7Path(path)) == "\"\""
    }

    /// The still-escaped text at a path, for display and copying.
    func raw(_ p: HL7Path) -> String? {
        guard let segment = segment(p.segment, p.segmentRepetition) else { return nil }
        if segment.name == "MSH" && p.field <= 2 && p.component == nil {
            return p.field == 1 ? String(delimiters.field) : delimiters.encodingCharacters
        }
        guard p.field < segment.fields.count else { return nil }
        let field = segment.fields[p.field]
        if segment.name == "MSH" && p.field == 2 { return delimiters.encodingCharacters }
        guard p.fieldRepetition - 1 < field.count else { return nil }
        let repetition = field[p.fieldRepetition - 1]
        let component = (p.component ?? 1) - 1
        guard component < repetition.count else { return nil }
        let subcomponents = repetition[component]
        if p.component == nil && p.subcomponent == nil && repetition.count == 1 && subcomponents.count == 1 {
            return subcomponents[0].isEmpty ? nil : subcomponents[0]
        }
        let sub = (p.subcomponent ?? 1) - 1
        guard sub < subcomponents.count else { return nil }
        return subcomponents[sub].isEmpty ? nil : subcomponents[sub]
    }

    /// Sets the value at a path (escaping it), growing the segment as needed.
    public mutating func set(_ path: String, _ value: String) throws {
        let p = try HL7Path(path)
        guard let index = segmentIndex(p.segment, p.segmentRepetition) else {
            throw HL7Error.badPath("no segment \(p.segment)(\(p.segmentRepetition))")
        }
        let escaped = HL7Escaping.escape(value, delimiters)
        segments[index].set(field: p.field, repetition: p.fieldRepetition, component: p.component ?? 1,
                            subcomponent: p.subcomponent ?? 1, to: escaped)
    }

    private func segmentIndex(_ name: String, _ occurrence: Int) -> Int? {
        var seen = 0
        for (i, s) in segments.enumerated() where s.name == name {
            seen += 1
            if seen == occurrence { return i }
        }
        return nil
    }

    // MARK: Header shortcuts

    public var messageType: String { self["MSH-9-1"] ?? "" }
    public var triggerEvent: String { self["MSH-9-2"] ?? "" }
    public var controlID: String { self["MSH-10"] ?? "" }
    public var version: String { self["MSH-12"] ?? "" }
    public var sendingApplication: String { self["MSH-3"] ?? "" }
    public var sendingFacility: String { self["MSH-4"] ?? "" }
}

/// One segment: fields → repetitions → components → subcomponents, leaves still escaped.
/// For MSH, field 1 is the field separator and field 2 the encoding characters, so that
/// `fields[n]` is MSH-n as in every other segment.
public struct HL7Segment: Sendable, Equatable {
    public typealias Field = [[[String]]]
    public var name: String
    /// `fields[0]` is the segment name; `fields[n]` is field n.
    public var fields: [Field]

    public init(name: String, fields: [Field]) {
        self.name = name
        self.fields = fields
    }

    init(parsing line: Substring, delimiters d: HL7Delimiters, line number: Int) throws {
        let parts = line.split(separator: d.field, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard name.count == 3, name.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
            throw HL7Error.badSegment(line: number, "'\(name.prefix(10))' is not a segment name")
        }
        self.name = name
        var fields: [Field] = [[[[name]]]]
        if name == "MSH" {
            fields.append([[[String(d.field)]]])
            fields.append([[[d.encodingCharacters]]])
            for part in parts.dropFirst(2) { fields.append(Self.parseField(part, d)) }
        } else {
            for part in parts.dropFirst() { fields.append(Self.parseField(part, d)) }
        }
        self.fields = fields
    }

    static func parseField(_ text: Substring, _ d: HL7Delimiters) -> Field {
        text.split(separator: d.repetition, omittingEmptySubsequences: false).map { rep in
            rep.split(separator: d.component, omittingEmptySubsequences: false).map { comp in
                comp.split(separator: d.subcomponent, omittingEmptySubsequences: false).map(String.init)
            }
        }
    }

    func encode(_ d: HL7Delimiters) -> String {
        let encodeField = { (field: Field) in
            field.map { rep in
                rep.map { $0.joined(separator: String(d.subcomponent)) }.joined(separator: String(d.component))
            }.joined(separator: String(d.repetition))
        }
        let parts = name == "MSH"
            ? [name, d.encodingCharacters] + fields.dropFirst(3).map(encodeField)
            : [name] + fields.dropFirst().map(encodeField)
        return parts.joined(separator: String(d.field))
    }

    mutating func set(field: Int, repetition: Int, component: Int, subcomponent: Int, to value: String) {
        while fields.count <= field { fields.append([[[""]]]) }
        while fields[field].count < repetition { fields[field].append([[""]]) }
        while fields[field][repetition - 1].count < component { fields[field][repetition - 1].append([""]) }
        while fields[field][repetition - 1][component - 1].count < subcomponent { fields[field][repetition - 1][component - 1].append("") }
        fields[field][repetition - 1][component - 1][subcomponent - 1] = value
    }

    /// Builds a segment from already-escaped field texts, field 1 first (for MSH, fields 1 and 2
    /// are the delimiters and are taken from `delimiters`).
    public static func build(_ name: String, _ fields: [String], delimiters d: HL7Delimiters = .standard) -> HL7Segment {
        var all: [Field] = [[[[name]]]]
        if name == "MSH" {
            all.append([[[String(d.field)]]])
            all.append([[[d.encodingCharacters]]])
            all += fields.dropFirst(2).map { parseField(Substring($0), d) }
        } else {
            all += fields.map { parseField(Substring($0), d) }
        }
        return HL7Segment(name: name, fields: all)
    }
}
