#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The character set a message is written in, from MSH-18. UTF-8 unless the sender says
/// otherwise; GB 18030 is common in Chinese hospitals and must survive both ways.
public enum HL7Charset: String, Sendable, Equatable, CaseIterable {
    case utf8 = "UNICODE UTF-8"
    case gb18030 = "GB 18030-2000"
    case latin1 = "8859/1"
    case ascii = "ASCII"

    /// Reads MSH-18 leniently: "UNICODE UTF-8", "UTF-8", "GB 18030", "GB18030-2000", "8859/1"…
    public init(msh18 value: String?) {
        let key = (value ?? "").uppercased().filter { $0.isLetter || $0.isNumber }
        if key.contains("GB18030") { self = .gb18030 }
        else if key.contains("88591") { self = .latin1 }
        else if key == "ASCII" { self = .ascii }
        else { self = .utf8 }
    }

    public func decode(_ bytes: [UInt8]) throws -> String {
        switch self {
        case .utf8:
            var bytes = bytes
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw HL7Error.badEncoding("the message is not valid UTF-8 (set MSH-18 if it is GB 18030)")
            }
            return text
        case .ascii:
            guard bytes.allSatisfy({ $0 < 0x80 }) else { throw HL7Error.badEncoding("MSH-18 says ASCII but the message has 8-bit bytes") }
            return String(decoding: bytes, as: UTF8.self)
        case .latin1:
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case .gb18030:
            return try Self.iconv(bytes, from: "GB18030", to: "UTF-8").map { String(decoding: $0, as: UTF8.self) }.get()
        }
    }

    public func encode(_ text: String) throws -> [UInt8] {
        switch self {
        case .utf8: return Array(text.utf8)
        case .ascii, .latin1:
            let limit: UInt32 = self == .ascii ? 0x7F : 0xFF
            return text.unicodeScalars.map { $0.value <= limit ? UInt8($0.value) : UInt8(ascii: "?") }
        case .gb18030:
            return try Self.iconv(Array(text.utf8), from: "UTF-8", to: "GB18030").get()
        }
    }

    /// Converts with the C library's iconv (glibc ships GB 18030).
    static func iconv(_ input: [UInt8], from: String, to: String) -> Result<[UInt8], HL7Error> {
        let cd = iconv_open(to, from)
        guard cd != iconv_t(bitPattern: -1) else { return .failure(.badEncoding("no converter from \(from) to \(to)")) }
        defer { iconv_close(cd) }
        var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
        var input = input
        let produced: Int? = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                var inPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(inBuf.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var inLeft = inBuf.count
                var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuf.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var outLeft = outBuf.count
                if inLeft == 0 { return 0 }
                let result = Glibc.iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                return result == -1 ? nil : outBuf.count - outLeft
            }
        }
        guard let produced else { return .failure(.badEncoding("the bytes are not valid \(from)")) }
        return .success(Array(output.prefix(produced)))
    }

    /// Finds MSH-18 in raw bytes without decoding them: the header is ASCII in every charset
    /// we accept, so the field separator at byte 3 splits it safely.
    public static func declared(in bytes: [UInt8]) -> HL7Charset {
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        guard bytes.count > start + 8, bytes[start] == UInt8(ascii: "M"), bytes[start + 1] == UInt8(ascii: "S"),
              bytes[start + 2] == UInt8(ascii: "H") else { return .utf8 }
        let separator = bytes[start + 3]
        let component = bytes[start + 4]
        let end = bytes[start...].firstIndex { $0 == 0x0D || $0 == 0x0A } ?? bytes.endIndex
        let parts = bytes[start..<end].split(separator: separator, omittingEmptySubsequences: false)
        guard parts.count > 17 else { return .utf8 }
        let first = parts[17].split(separator: component, omittingEmptySubsequences: false).first ?? []
        return HL7Charset(msh18: String(decoding: first, as: UTF8.self))
    }
}

extension HL7Message {
    /// Parses bytes as they arrive over the wire, honouring MSH-18.
    public static func parse(bytes: [UInt8]) throws -> (HL7Message, HL7Charset) {
        guard !bytes.isEmpty else { throw HL7Error.empty }
        let charset = HL7Charset.declared(in: bytes)
        let text = try charset.decode(bytes)
        return (try parse(text), charset)
    }
}
