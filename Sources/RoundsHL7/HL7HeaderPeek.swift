/// The few MSH fields an acknowledgement needs, read from the raw bytes of a message that could
/// not be parsed (bad encoding characters in MSH-2, a frame over the size limit): the sender
/// still learns which of its messages was refused, because MSA-2 echoes MSH-10 whenever it can
/// be read.
public struct HL7HeaderPeek: Sendable, Equatable {
    public var sendingApplication = ""
    public var sendingFacility = ""
    public var messageType = ""
    public var triggerEvent = ""
    public var controlID = ""
    public var version = ""

    /// Reads the first line when it starts with "MSH" and a field separator; nil otherwise.
    /// Only the field separator (MSH-1) is trusted; a component is cut at `^` when MSH-2 is
    /// unreadable.
    public init?(_ bytes: some Collection<UInt8>) {
        var head = Array(bytes.prefix(4096))
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { head.removeFirst(3) }
        while let first = head.first, first == 0x0D || first == 0x0A { head.removeFirst() }
        guard head.count > 4, head[0] == 0x4D, head[1] == 0x53, head[2] == 0x48 else { return nil }
        let separator = head[3]
        // A field separator is printable, not a letter or digit.
        guard separator > 0x20, separator < 0x7F, !(0x30...0x39).contains(separator),
              !(0x41...0x5A).contains(separator), !(0x61...0x7A).contains(separator) else { return nil }
        let line = head.prefix { $0 != 0x0D && $0 != 0x0A }
        // fields[0] is "MSH", fields[1] MSH-2, so MSH-n is fields[n - 1].
        let fields = line.split(separator: separator, omittingEmptySubsequences: false)
        let encoding = fields.count > 1 ? Array(fields[1]) : []
        let component: UInt8 = encoding.first.flatMap { $0 > 0x20 && $0 < 0x7F && $0 != separator ? $0 : nil } ?? 0x5E
        func field(_ n: Int, component index: Int = 0) -> String {
            guard fields.count > n - 1 else { return "" }
            let parts = fields[n - 1].split(separator: component, omittingEmptySubsequences: false)
            guard parts.count > index else { return "" }
            // Printable ASCII only: these go into an ACK, whose character set is not known yet.
            return String(decoding: parts[index].filter { $0 >= 0x20 && $0 < 0x7F }.prefix(199), as: UTF8.self)
        }
        sendingApplication = field(3)
        sendingFacility = field(4)
        messageType = field(9)
        triggerEvent = field(9, component: 1)
        controlID = field(10)
        version = field(12)
    }
}
