import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
import RoundsStore

/// Tells the system a critical value came from (LIS, PACS, pathology) that the care team has
/// acknowledged it and what they did, so the source sees the loop close. The message is an
/// ORU^R01 that repeats the original result (same placer/filler numbers and OBX) with NTE
/// segments carrying who acknowledged, when, the read-back, and the action:
///
///     NTE|1|L|危急值已确认：王芳 20261123101500 复述：血钾 6.9|CVACK^Critical value acknowledged^ROUNDS
///     NTE|2|L|处置：medication 葡萄糖酸钙 10ml 静推 20261123102000 李明|CVACT^Critical value action^ROUNDS
///
/// It goes through the outbound queue (stored, retried, dead after repeated failures).
public struct CriticalValueFeedback: AlertConnector {
    let outbound: OutboundQueue
    let database: @Sendable () -> any Database
    let timeZone: TimeZone

    public init(outbound: OutboundQueue, timeZone: TimeZone, database: @escaping @Sendable () -> any Database) {
        self.outbound = outbound
        self.timeZone = timeZone
        self.database = database
    }

    public func deliver(_ notice: AlertNotice, settings: [String: String]) async throws {
        guard let host = settings["host"], !host.isEmpty, let port = settings["port"].flatMap(Int.init), (1...65535).contains(port) else {
            throw ConnectorError("settings host and port are required", permanent: true)
        }
        guard notice.event == .acknowledged || notice.event == .closed else { return }
        let db = database()
        guard let sourceID = notice.sourceMessageID, let record = try await HL7MessageRecord.find(sourceID, on: db),
              let (source, _) = try? HL7Message.parse(bytes: Array(record.raw)) else {
            throw ConnectorError("the original HL7 message is not stored", permanent: true)
        }
        let message = Self.message(for: notice, source: source, controlID: "RCV\(outbound.ids.next().replacingOccurrences(of: "-", with: "").suffix(16))",
                                   at: outbound.clock.now(), timeZone: timeZone)
        try await SQLiteWriteGate.serialised(db, writer: "lis-feedback") {
            _ = try await outbound.enqueue(message, host: host, port: port, on: db)
        }
    }

    /// The feedback message for `notice`, answering the stored `source` message.
    public static func message(for notice: AlertNotice, source: HL7Message, controlID: String, at date: Date, timeZone: TimeZone) -> HL7Message {
        let d = HL7Delimiters.standard
        let e = { (s: String) in HL7Escaping.escape(s, d) }
        let c = String(d.component)
        let ts = { (date: Date) in HL7Builder.timestamp(date, timeZone: timeZone) }
        var segments = [HL7Segment.build("MSH", [
            String(d.field), d.encodingCharacters, "ROUNDS", e(source["MSH-6"] ?? ""), e(source.sendingApplication),
            e(source.sendingFacility), ts(date), "", "ORU\(c)R01\(c)ORU_R01", e(controlID), "P", "2.5.1", "", "", "", "", "",
            "UNICODE UTF-8",
        ], delimiters: d)]
        segments.append(HL7Segment.build("PID", ["1", "", e(notice.mrn) + "\(c)\(c)\(c)\(c)MR", "", e(notice.patientName)], delimiters: d))
        let placer = source["OBR-2"].map(e) ?? "", filler = source["OBR-3"].map(e) ?? ""
        let service = source["OBR-4"].map(e) ?? (e(notice.testCode) + c + e(notice.testName))
        segments.append(HL7Segment.build("OBR", ["1", placer, filler, service, "", "", source["OBR-7"].map(e) ?? "",
                                                 "", "", "", "", "", "", "", "", "", "", "", "", "", "", ts(date), "", "", "F"], delimiters: d))
        segments.append(HL7Segment.build("OBX", ["1", source["OBX-2"].map(e) ?? "ST", e(notice.testCode) + c + e(notice.testName), "",
                                                 e(notice.value), e(notice.unit ?? ""), "", e(notice.flag ?? ""), "", "", "F"], delimiters: d))
        var n = 0
        if let by = notice.acknowledgedBy, let at = notice.acknowledgedAt {
            n += 1
            let text = "危急值已确认：\(by) \(ts(at))" + (notice.readBack.map { " 复述：\($0)" } ?? "")
            segments.append(HL7Segment.build("NTE", [String(n), "L", e(text), "CVACK\(c)Critical value acknowledged\(c)ROUNDS"], delimiters: d))
        }
        if let kind = notice.actionKind, let at = notice.actionAt {
            n += 1
            let text = "处置：\(kind) \(notice.actionText ?? "") \(ts(at))"
            segments.append(HL7Segment.build("NTE", [String(n), "L", e(text), "CVACT\(c)Critical value action\(c)ROUNDS"], delimiters: d))
        }
        return HL7Message(delimiters: d, segments: segments, segmentSeparator: "\r", trailingSeparator: true)
    }
}
