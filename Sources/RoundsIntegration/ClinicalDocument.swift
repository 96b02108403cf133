import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

/// A signed clinical document (ward-round note, type RN; MDT report, type MDT) as the HIS receives it: MDM^T02 (original document with its
/// content) for a note's first version, MDM^T10 (replacement) for each correction, with the
/// replaced version's number in TXA-13. One OBX per section, coded `RN-<section>^<title>^ROUNDS`:
///
///     MSH|^~\&|ROUNDS|HK01|HIS|HK01|20261208093000||MDM^T02^MDM_T02|RN…|P|2.5.1|||||||UNICODE UTF-8
///     EVN|T02|20261208093000
///     PID|1||MRN001^^^^MR||张三||19560312|M
///     PV1|1|I|LUNG^^12||||D001^李明|||||||||||V001
///     TXA|1|RN^查房记录^ROUNDS|TX|20261208093000|D001^李明||20261208093000||D001^李明|||RN…-1||||||AU||AV
///     OBX|1|TX|RN-complaint^主诉/病情变化^ROUNDS||咳嗽较前减轻…||||||F
///
/// It goes out through the outbound channels that carry MDM (queued, retried, each answer kept).
public enum ClinicalDocument {
    public static func message(_ note: ClinicalEvent.DocumentSigned, patient: Patient, encounter: Encounter?, wardCode: String, bed: String?,
                               hospitalCode: String, timeZone: TimeZone) -> HL7Message {
        let d = HL7Delimiters.standard
        let e = { (s: String) in HL7Escaping.escape(s, d) }
        let c = String(d.component)
        let ts = HL7Builder.timestamp(note.signedAt, timeZone: timeZone)
        let trigger = note.replacesDocumentNumber == nil ? "T02" : "T10"
        let author = e(note.authorHISID ?? "") + c + e(note.authorName)
        var segments = [HL7Segment.build("MSH", [
            String(d.field), d.encodingCharacters, "ROUNDS", e(hospitalCode), "HIS", e(hospitalCode), ts, "",
            "MDM\(c)\(trigger)\(c)MDM_\(trigger)", e(note.controlID), "P", "2.5.1", "", "", "", "", "", "UNICODE UTF-8",
        ], delimiters: d)]
        segments.append(HL7Segment.build("EVN", [trigger, ts], delimiters: d))
        segments.append(HL7Segment.build("PID", ["1", "", e(patient.mrn) + "\(c)\(c)\(c)\(c)MR", "", e(patient.name), "",
                                                 (patient.birthDate ?? "").replacingOccurrences(of: "-", with: ""), patient.gender.rawValue],
                                         delimiters: d))
        var pv1 = Array(repeating: "", count: 19)
        pv1[0] = "1"; pv1[1] = "I"; pv1[2] = e(wardCode) + c + c + e(bed ?? "")
        pv1[6] = author
        pv1[18] = e(encounter?.visitNumber ?? "")
        segments.append(HL7Segment.build("PV1", pv1, delimiters: d))
        var txa = Array(repeating: "", count: 22)
        txa[0] = "1"; txa[1] = "\(e(note.type))\(c)\(e(note.title))\(c)ROUNDS"; txa[2] = "TX"; txa[3] = ts; txa[4] = author; txa[5] = ts
        txa[8] = author; txa[11] = e(note.documentNumber); txa[12] = e(note.replacesDocumentNumber ?? "")
        txa[16] = "AU"; txa[18] = "AV"; txa[20] = note.replacesDocumentNumber == nil ? "" : "更正"
        txa[21] = author
        segments.append(HL7Segment.build("TXA", txa, delimiters: d))
        for (i, section) in note.sections.enumerated() {
            segments.append(HL7Segment.build("OBX", [String(i + 1), "TX", "\(e(note.type))-\(e(section.code))\(c)\(e(section.title))\(c)ROUNDS", "",
                                                     e(section.text), "", "", "", "", "", "F"], delimiters: d))
        }
        return HL7Message(delimiters: d, segments: segments, segmentSeparator: "\r", trailingSeparator: true)
    }

    /// `round_note.signed`, `mdt.report_signed` → the document's MDM message, queued for every channel that carries it.
    public static func handler(outbound: OutboundQueue, timeZone: TimeZone) -> some EventHandler {
        EventHandlerFunction("integration.clinical_document", kinds: [.roundNoteSigned, .mdtReportSigned]) { event, tx in
            let note = try event.decode(ClinicalEvent.DocumentSigned.self)
            guard let patientID = event.patientID, let patient = try await Patient.find(patientID, on: tx) else { return }
            let encounter = try await event.encounterID.asyncMap { try await Encounter.find($0, on: tx) } ?? nil
            let ward = try await encounter.asyncMap { try await Department.find($0.wardID, on: tx) } ?? nil
            let bed = try await encounter?.bedID.asyncMap { try await Bed.find($0, on: tx) } ?? nil
            let hospital = try await Hospital.find(patient.hospitalID, on: tx)
            let message = message(note, patient: patient, encounter: encounter, wardCode: ward?.code ?? "", bed: bed?.label,
                                  hospitalCode: hospital?.hl7Facility ?? hospital?.code ?? "", timeZone: timeZone)
            try await outbound.route(message, hospitalID: patient.hospitalID, on: tx)
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
