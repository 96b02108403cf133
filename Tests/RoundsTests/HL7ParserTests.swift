import Foundation
@testable import RoundsHL7
import Testing

@Suite struct HL7ParserTests {
    @Test func fixturesMatchTheSharedReferenceSet() throws {
        guard let shared = HL7Fixtures.sharedDirectory else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: shared.path) {
            let ours = try Data(contentsOf: HL7Fixtures.directory.appendingPathComponent(name))
            let theirs = try Data(contentsOf: shared.appendingPathComponent(name))
            #expect(ours == theirs, "\(name) differs from ../shared/samples/hl7")
        }
    }

    @Test(arguments: try HL7Fixtures.expected().sorted { $0.key < $1.key }.map { $0.key })
    func referenceValues(file: String) throws {
        let expected = try #require(try HL7Fixtures.expected()[file])
        let (message, _) = try HL7Message.parse(bytes: HL7Fixtures.bytes(file))
        for (path, value) in expected {
            #expect(try message.value(path) == value, "\(file) \(path)")
        }
    }

    @Test(arguments: HL7Fixtures.names)
    func roundTripIsByteForByte(file: String) throws {
        let bytes = try HL7Fixtures.bytes(file)
        let (message, charset) = try HL7Message.parse(bytes: bytes)
        #expect(try charset.encode(message.encode()) == bytes)
    }

    @Test func embeddedPDFDecodes() throws {
        let (message, _) = try HL7Message.parse(bytes: HL7Fixtures.bytes("mdm_t02_pathology_pdf.hl7"))
        let base64 = try #require(try message.value("OBX(2)-5-5"))
        let pdf = try #require(Data(base64Encoded: base64))
        #expect(pdf.starts(with: Array("%PDF".utf8)))
    }

    @Test func lineFeedsAndCRLFAreTolerated() throws {
        let cr = "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||M1||王^五\r"
        for separator in ["\n", "\r\n"] {
            let text = cr.replacingOccurrences(of: "\r", with: separator)
            let message = try HL7Message.parse(text)
            #expect(message.segments.count == 2)
            #expect(message["PID-5-2"] == "五")
            #expect(message.encode() == text)
        }
    }

    @Test func explicitNullIsNotEmpty() throws {
        let message = try HL7Message.parse("MSH|^~\\&|A|B|C|D|20260101||ADT^A08|X1|P|2.5\rPID|1||M1||\"\"||||")
        #expect(try message.isExplicitNull("PID-5"))
        #expect(try message.value("PID-5") == "")
        #expect(try !message.isExplicitNull("PID-7"))
        #expect(try message.value("PID-7") == nil)
        #expect(try message.value("PID-30") == nil)
        #expect(try message.value("ZZZ-1") == nil)
    }

    @Test func escapeSequences() throws {
        let d = HL7Delimiters.standard
        #expect(HL7Escaping.unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", d) == "a|b^c&d~e\\f")
        #expect(HL7Escaping.unescape("line1\\.br\\line2", d) == "line1\nline2")
        #expect(HL7Escaping.unescape("\\X48656C6C6F\\", d) == "Hello")
        #expect(HL7Escaping.unescape("\\H\\bold\\N\\", d) == "bold")
        #expect(HL7Escaping.unescape("unterminated \\F", d) == "unterminated \\F")
        let tricky = "A|B^C&D~E\\F\nG"
        #expect(HL7Escaping.unescape(HL7Escaping.escape(tricky, d), d) == tricky)
    }

    @Test func terserPaths() throws {
        let message = try HL7Message.parse(bytes: HL7Fixtures.bytes("oru_r01_critical_k.hl7")).0
        #expect(message["OBX(2)-3-1"] == "2951-2")
        #expect(message["OBX-5"] == "6.9")
        #expect(message["MSH-1"] == "|")
        #expect(message["MSH-2"] == "^~\\&")
        #expect(message.messageType == "ORU")
        #expect(message.controlID == "MSG00004")
        for bad in ["PID", "PID-x", "PID-0", "PIDX-1", "PID(0)-1", "PID-1-2-3-4"] {
            #expect(throws: HL7Error.self) { try message.value(bad) }
        }
    }

    @Test func settingValuesEscapesAndGrows() throws {
        var message = try HL7Message.parse("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1")
        try message.set("PID-5-2", "建|国")
        #expect(message["PID-5-2"] == "建|国")
        #expect(message.encode().contains("PID|1||||^建\\F\\国"))
    }

    @Test func gb18030MessagesKeepTheirChineseBothWays() throws {
        let text = "MSH|^~\\&|HIS|H|ROUNDS|H|20261121083000||ADT^A01|G1|P|2.5|||AL|NE||GB 18030\rPID|1||MRN1||欧阳^娜娜\r"
        let bytes = try HL7Charset.gb18030.encode(text)
        #expect(bytes != Array(text.utf8))
        #expect(HL7Charset.declared(in: bytes) == .gb18030)
        let (message, charset) = try HL7Message.parse(bytes: bytes)
        #expect(charset == .gb18030)
        #expect(message["PID-5-1"] == "欧阳")
        #expect(try charset.encode(message.encode()) == bytes)
        // GB 18030 bytes claiming to be UTF-8 are refused with the reason.
        let mislabelled = try HL7Charset.gb18030.encode(text.replacingOccurrences(of: "GB 18030", with: "UNICODE UTF-8"))
        #expect(throws: HL7Error.self) { try HL7Message.parse(bytes: mislabelled) }
    }

    @Test func malformedInputIsRefusedWithAReason() {
        let cases: [String] = ["", "PID|1||x", "MSH", "MSH|", "MSH|^~|x", "MSH|^^\\&|x", "MSH|^~\\&|A\rpid|1", "MSH|^~\\&|A\r12|x"]
        for text in cases {
            #expect(throws: HL7Error.self, "\(text.debugDescription)") { try HL7Message.parse(text) }
        }
    }

    @Test func ackEchoesTheControlIdAndExplainsErrors() throws {
        let inbound = try HL7Message.parse(bytes: HL7Fixtures.bytes("adt_a01_utf8.hl7")).0
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        let ok = HL7Builder.ack(for: inbound, code: .accept, controlID: "ACK1", at: date)
        #expect(ok["MSA-1"] == "AA")
        #expect(ok["MSA-2"] == "MSG00001")
        #expect(ok["MSH-9-1"] == "ACK")
        #expect(ok["MSH-9-2"] == "A01")
        #expect(ok["MSH-5"] == "HIS")
        #expect(ok["MSH-18"] == "UNICODE UTF-8")
        #expect(ok.segment("ERR") == nil)
        let error = HL7Builder.ack(for: inbound, code: .error, text: "unknown ward XYZ | bed", errorCode: "103", controlID: "ACK2", at: date)
        #expect(error["MSA-1"] == "AE")
        #expect(error["ERR-3-1"] == "103")
        #expect(error["ERR-8"] == "unknown ward XYZ | bed")
        // An ACK parses back as HL7.
        #expect(try HL7Message.parse(error.encode())["MSA-2"] == "MSG00001")
        let reject = HL7Builder.ack(for: nil, code: .reject, text: "no MSH", controlID: "ACK3", at: date)
        #expect(reject["MSA-1"] == "AR")
    }

    /// Random bytes and mutated valid messages: the parser either reads them or throws; it
    /// never crashes or hangs.
    @Test func fuzzNeverCrashes() throws {
        var rng = SeededGenerator(seed: 20261121)
        let seeds = try HL7Fixtures.names.map { try HL7Fixtures.bytes($0) }
        var parsed = 0, refused = 0
        for i in 0..<4000 {
            var bytes: [UInt8]
            if i % 4 == 0 {
                bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = seeds[i % seeds.count]
                for _ in 0..<Int.random(in: 1...8, using: &rng) where !bytes.isEmpty {
                    let at = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0...3, using: &rng) {
                    case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.remove(at: at)
                    case 2: bytes.insert([0x7C, 0x5E, 0x7E, 0x5C, 0x26, 0x0D][Int.random(in: 0...5, using: &rng)], at: at)
                    default: bytes = Array(bytes.prefix(at))
                    }
                }
            }
            do {
                let (message, charset) = try HL7Message.parse(bytes: bytes)
                _ = try? charset.encode(message.encode())
                _ = message["PID-5-1"]; _ = message["OBX(3)-5(2)-1-1"]
                parsed += 1
            } catch is HL7Error {
                refused += 1
            }
        }
        #expect(parsed > 0)
        #expect(refused > 0)
    }
}

/// Deterministic randomness, so a fuzz failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
