import Foundation

/// MSA-1 codes (original acknowledgement mode).
public enum HL7AckCode: String, Sendable, Codable {
    /// Accepted and stored.
    case accept = "AA"
    /// Stored, but something in it is wrong (e.g. an unknown ward): the sender should fix and resend.
    case error = "AE"
    /// Rejected: not readable as HL7, too large, not for us.
    case reject = "AR"
}

/// Builds acknowledgements and other messages Rounds sends.
public enum HL7Builder {
    /// "yyyyMMddHHmmss" in the given time zone (HL7 DTM without offset).
    public static func timestamp(_ date: Date, timeZone: TimeZone = TimeZone(identifier: "Asia/Shanghai") ?? .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02d%02d%02d%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }

    /// An ACK for `inbound` (or for unreadable input, when `inbound` is nil: then `peek`, the
    /// header as far as it could be read, names the message). MSA-2 echoes the inbound MSH-10;
    /// an ERR segment carries the reason for AE/AR.
    public static func ack(
        for inbound: HL7Message?, peek: HL7HeaderPeek? = nil, code: HL7AckCode, text: String? = nil, errorCode: String? = nil,
        controlID: String, at date: Date, application: String = "ROUNDS", facility: String? = nil
    ) -> HL7Message {
        let d = inbound?.delimiters ?? .standard
        let e = { (s: String) in HL7Escaping.escape(s, d) }
        let inboundVersion = inbound?.version ?? peek?.version ?? ""
        let version = inboundVersion.isEmpty || inboundVersion.count > 8 ? "2.5" : inboundVersion
        let trigger = inbound?.triggerEvent ?? peek?.triggerEvent ?? ""
        var msh = [String(d.field), d.encodingCharacters, e(application), e(facility ?? inbound?["MSH-6"] ?? ""),
                   e(inbound?.sendingApplication ?? peek?.sendingApplication ?? ""),
                   e(inbound?.sendingFacility ?? peek?.sendingFacility ?? ""), timestamp(date), "",
                   "ACK" + String(d.component) + e(trigger) + String(d.component) + "ACK", e(controlID), "P", e(version)]
        if let charset = inbound?["MSH-18"], !charset.isEmpty {
            msh += ["", "", "", "", "", e(charset)]
        }
        var segments = [HL7Segment.build("MSH", msh, delimiters: d)]
        var msa = ["MSA", code.rawValue, e(inbound?.controlID ?? peek?.controlID ?? "")]
        if let text { msa.append(e(String(text.prefix(80)))) }
        segments.append(HL7Segment.build("MSA", Array(msa.dropFirst()), delimiters: d))
        if code != .accept, let text {
            let c = String(d.component)
            let err = ["", "", (errorCode ?? "207") + c + e(String(text.prefix(200))) + c + "HL70357", code == .reject ? "E" : "W",
                       "", "", "", e(String(text.prefix(250)))]
            segments.append(HL7Segment.build("ERR", err, delimiters: d))
        }
        return HL7Message(delimiters: d, segments: segments, segmentSeparator: "\r", trailingSeparator: true)
    }
}
