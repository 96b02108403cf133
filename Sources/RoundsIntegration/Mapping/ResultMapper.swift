import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
import RoundsStore

/// ORU^R01 results and MDM^T0x / report-style ORU documents. Numeric and coded OBX become
/// observations (critical by flag HH/LL/AA or by the configured rules); text and encapsulated
/// OBX become a report with its PDF kept as an attachment.
enum ResultMapper {
    static let reportValueTypes: Set<String> = ["TX", "FT", "ED", "RP"]
    static let criticalFlags: Set<String> = ["HH", "LL", "AA", ">", "<"]
    static let codedValueTypes: Set<String> = ["CE", "CWE", "CNE", "CF"]

    /// NTE-3 texts by the OBX they follow (1-based occurrence; 0: before any OBX, the order's).
    static func comments(_ message: HL7Message) -> [Int: [String]] {
        var notes: [Int: [String]] = [:]
        var obx = 0, nte = 0
        for segment in message.segments {
            switch segment.name {
            case "OBX": obx += 1
            case "NTE":
                nte += 1
                var repetition = 1
                while let text = message["NTE(\(nte))-3(\(repetition))"] {
                    if !text.isEmpty { notes[obx, default: []].append(text) }
                    repetition += 1
                    if repetition > 100 { break }
                }
            default: break
            }
        }
        return notes
    }

    static func apply(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await ADTMapper.knownPatient(&ctx, hospital: hospital)
        let encounter = try await ADTMapper.activeEncounter(ctx, patient: patient)
        let isDocument = ctx.message.messageType == "MDM"
        let obxCount = ctx.message.segments(named: "OBX").count
        guard obxCount > 0 || isDocument else { throw MappingError("no OBX segment: a result message needs at least one", code: "100") }

        let flags = Set(ctx.channel.settings.criticalFlags.map { $0.uppercased() })
        var observations: [ClinicalEvent.ObservationResult] = []
        var reportLines: [String] = []
        var attachments: [Attachment] = []
        var findings: [ClinicalEvent.ObservationResult] = []
        let notes = comments(ctx.message)
        // Comments before the first OBX are about the whole order: a report keeps them; with no
        // report, each result carries them (each is shown on its own).
        var reportComments = notes[0] ?? []
        var pending: [Observation] = []
        for n in 1...max(obxCount, 1) where obxCount > 0 {
            let obx = "OBX(\(n))"
            let type = (ctx.value("\(obx)-2") ?? "ST").uppercased()
            if reportValueTypes.contains(type) {
                // A PACS or pathology critical finding: a report flagged AA/HH/LL in OBX-8.
                if let flag = ctx.value("\(obx)-8")?.uppercased(), flags.contains(flag), type != "ED" {
                    let finding = ctx.value("\(obx)-5") ?? ""
                    findings.append(ClinicalEvent.ObservationResult(
                        observationID: "", code: ctx.value("\(obx)-3-1") ?? ctx.value("OBR-4-1") ?? "REPORT",
                        name: ctx.value("\(obx)-3-2") ?? ctx.value("OBR-4-2") ?? "Report",
                        value: String(finding.prefix(200)), unit: nil, referenceRange: nil, flag: flag, critical: true,
                        criticalReason: "critical finding (\(flag))", observedAt: MappingContext.date(ctx.value("OBR-7")),
                        resultKey: Self.resultKey(ctx, obx: obx, code: ctx.value("\(obx)-3-1") ?? "REPORT", value: String(finding.prefix(200)))))
                }
                reportComments += notes[n] ?? []
                if type == "ED" {
                    attachments.append(try encapsulatedData(ctx, obx: obx, patientID: patient.id!, number: attachments.count + 1))
                } else {
                    var repetition = 1
                    while let line = ctx.value("\(obx)-5(\(repetition))") {
                        reportLines.append(line)
                        repetition += 1
                    }
                }
                continue
            }
            guard let value = ctx.value("\(obx)-5") else { continue }
            // Coded (CE/CWE/CNE): OBX-5-1 the code, -5-2 its text (else the alternate text, -5-5).
            let valueText = codedValueTypes.contains(type) ? (ctx.value("\(obx)-5-2") ?? ctx.value("\(obx)-5-5")) : nil
            let comment = ((notes[n] ?? []).isEmpty ? nil : (notes[n] ?? []).joined(separator: "\n"))
            let code = ctx.value("\(obx)-3-1") ?? ""
            let unit = ctx.value("\(obx)-6-1")
            let flag = ctx.value("\(obx)-8")?.uppercased()
            let reason = criticalReason(value: value, code: code, unit: unit, flag: flag, rules: ctx.rules, flags: flags)
            let observation = Observation()
            observation.id = ctx.ids.next()
            observation.patientID = patient.id!
            observation.encounterID = encounter?.id
            observation.orderNumber = ctx.value("OBR-2-1") ?? ctx.value("OBR-3-1")
            observation.code = code
            observation.name = ctx.value("\(obx)-3-2") ?? code
            observation.value = value
            observation.valueText = valueText
            observation.comment = comment
            observation.unit = unit
            observation.referenceRange = ctx.value("\(obx)-7")
            observation.abnormalFlag = flag
            observation.isCritical = reason != nil
            observation.observedAt = MappingContext.date(ctx.value("\(obx)-14")) ?? MappingContext.date(ctx.value("OBR-7"))
            observation.sourceMessageID = ctx.messageID
            observation.createdAt = ctx.now
            observations.append(ClinicalEvent.ObservationResult(observationID: observation.id!, code: code, name: observation.name, value: value, unit: unit,
                                                   referenceRange: observation.referenceRange, flag: flag, critical: reason != nil,
                                                   criticalReason: reason, observedAt: observation.observedAt,
                                                   resultKey: Self.resultKey(ctx, obx: obx, code: code, value: value),
                                                   valueText: valueText, comment: comment))
            pending.append(observation)
        }

        let isReport = isDocument || !reportLines.isEmpty || !attachments.isEmpty
        // Order-level comments with no report to hold them go on every result of the order.
        if !isReport, let orderComment = notes[0], !orderComment.isEmpty {
            let text = orderComment.joined(separator: "\n")
            for (i, observation) in pending.enumerated() {
                observation.comment = [text, observation.comment].compactMap { $0 }.joined(separator: "\n")
                observations[i].comment = observation.comment
            }
        }
        // One INSERT for the message's results.
        if !pending.isEmpty { try await pending.create(on: ctx.db) }
        if !observations.isEmpty {
            try await ctx.audit("observation.create", entityType: "observation", entityID: observations.first?.observationID,
                                patientID: patient.id, detail: "\(observations.count) results")
            try ctx.emit(.observationResult, patientID: patient.id, encounterID: encounter?.id,
                         payload: ClinicalEvent.ResultsReported(orderNumber: ctx.value("OBR-2-1"), panel: ctx.value("OBR-4-2"), observations: observations))
            for critical in observations where critical.critical {
                try ctx.emit(.observationCritical, patientID: patient.id, encounterID: encounter?.id, payload: critical)
            }
        }

        if isReport {
            for attachment in attachments { try await attachment.create(on: ctx.db) }
            let report = ClinicalReport()
            report.id = ctx.ids.next()
            report.patientID = patient.id!
            report.encounterID = encounter?.id
            report.documentNumber = ctx.value("TXA-12-1") ?? ctx.value("OBR-3-1") ?? ctx.value("OBR-2-1") ?? ctx.messageID
            report.title = ctx.value("TXA-2-2") ?? ctx.value("OBR-4-2") ?? ctx.value("TXA-2-1") ?? "Report"
            report.text = reportLines.joined(separator: "\n")
            report.attachmentIDs = attachments.compactMap(\.id)
            report.comment = reportComments.isEmpty ? nil : reportComments.joined(separator: "\n")
            let author = MappingContext.personName(family: ctx.value("TXA-9-2") ?? ctx.value("TXA-5-2"), given: ctx.value("TXA-9-3") ?? ctx.value("TXA-5-3"))
            report.author = author.isEmpty ? nil : author
            report.status = ctx.value("TXA-17") ?? ctx.value("OBR-25") ?? "F"
            report.sourceMessageID = ctx.messageID
            report.createdAt = ctx.now
            try await report.create(on: ctx.db)
            try await ctx.audit("report.create", entityType: "report", entityID: report.id, patientID: patient.id, detail: report.title)
            for finding in findings {
                try ctx.emit(.observationCritical, patientID: patient.id, encounterID: encounter?.id, payload: finding)
            }
            try ctx.emit(.reportReceived, patientID: patient.id, encounterID: encounter?.id, payload: ClinicalEvent.ReportReceived(
                reportID: report.id!, documentNumber: report.documentNumber, title: report.title, text: report.text,
                attachmentID: report.attachmentID, author: report.author,
                attachmentIDs: attachments.count > 1 ? report.attachmentIDs : nil, comment: report.comment))
        }
    }

    /// Why a numeric or coded result is critical (flag HH/LL/AA, or outside a configured rule's
    /// limits), or nil.
    static func criticalReason(value: String, code: String, unit: String?, flag: String?, rules: [CriticalValueRule],
                               flags: Set<String> = criticalFlags) -> String? {
        if let flag, flags.contains(flag) { return "abnormal flag \(flag)" }
        guard let number = Double(value.trimmingCharacters(in: .whitespaces)),
              let rule = rules.first(where: { rule in
                  rule.code == code && (unit.map { $0.caseInsensitiveCompare(rule.unit) == .orderedSame } ?? true)
              }) else { return nil }
        if let high = rule.high, number > high { return "above \(trim(high)) \(rule.unit)" }
        if let low = rule.low, number < low { return "below \(trim(low)) \(rule.unit)" }
        return nil
    }

    /// Whether a result message carries a critical value or finding, read before it is stored so
    /// that it can go first (the mapping itself decides what is raised).
    static func carriesCriticalValue(_ message: HL7Message, rules: [CriticalValueRule], flags: Set<String> = criticalFlags) -> Bool {
        let obxCount = message.segments(named: "OBX").count
        guard obxCount > 0 else { return false }
        for n in 1...obxCount {
            let obx = "OBX(\(n))"
            if criticalReason(value: message["\(obx)-5"] ?? "", code: message["\(obx)-3-1"] ?? "",
                              unit: message["\(obx)-6-1"].flatMap { $0.isEmpty ? nil : $0 },
                              flag: message["\(obx)-8"]?.uppercased(), rules: rules, flags: flags) != nil {
                return true
            }
        }
        return false
    }

    /// ED: source ^ type ^ subtype ^ encoding ^ data. Base64 and hex are decoded; anything else
    /// is refused rather than stored as something it is not.
    static func encapsulatedData(_ ctx: MappingContext, obx: String, patientID: String, number: Int = 1) throws -> Attachment {
        let type = (ctx.value("\(obx)-5-2") ?? "application").lowercased()
        let subtype = (ctx.value("\(obx)-5-3") ?? "octet-stream").lowercased()
        let encoding = (ctx.value("\(obx)-5-4") ?? "Base64").lowercased()
        let text = ctx.value("\(obx)-5-5") ?? ""
        let data: Data
        switch encoding {
        case "base64":
            guard let decoded = Data(base64Encoded: text, options: .ignoreUnknownCharacters), !decoded.isEmpty else {
                throw MappingError("\(obx)-5-5 is not valid Base64", code: "102")
            }
            data = decoded
        case "hex":
            var bytes: [UInt8] = []
            var i = text.startIndex
            while i < text.endIndex, let j = text.index(i, offsetBy: 2, limitedBy: text.endIndex), let b = UInt8(text[i..<j], radix: 16) {
                bytes.append(b)
                i = j
            }
            guard i == text.endIndex, !bytes.isEmpty else { throw MappingError("\(obx)-5-5 is not valid hex", code: "102") }
            data = Data(bytes)
        default:
            throw MappingError("\(obx)-5-4 encoding '\(encoding)' is not supported (Base64 or Hex)", code: "102")
        }
        // ED-2 is an HL7 type code (AP, IM, TEXT…) or already a MIME top-level type.
        let top = ["ap": "application", "im": "image", "text": "text", "tx": "text", "au": "audio", "vi": "video"][type] ?? type
        let declared = subtype == "pdf" ? "application/pdf" : "\(top)/\(subtype == "jpg" ? "jpeg" : subtype)"
        if declared == "application/pdf" && !data.starts(with: Array("%PDF".utf8)) {
            throw MappingError("\(obx)-5 says PDF but the data is not a PDF", code: "102")
        }
        // OBX-5 names the type, but the sender is not trusted with what a browser will run:
        // anything but a PDF or an image (by its bytes) is kept, and only ever downloaded.
        let contentType = FileType.verified(declared, data)
        let attachment = Attachment()
        attachment.id = ctx.ids.next()
        attachment.patientID = patientID
        attachment.sourceMessageID = ctx.messageID
        attachment.contentType = contentType
        let stem = (ctx.value("TXA-12-1") ?? ctx.messageID).filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }.prefix(80)
        let suffix = number > 1 ? "-\(number)" : ""
        attachment.filename = "\(stem.isEmpty ? "report" : String(stem))\(suffix).\(contentType == FileType.opaque ? "bin" : subtype.lowercased())"
        attachment.data = data
        attachment.size = data.count
        attachment.createdAt = ctx.now
        return attachment
    }

    /// A result's identity across messages: the order (filler, else placer, else the message's
    /// control id), the test and its sub-id, and the value.
    static func resultKey(_ ctx: MappingContext, obx: String, code: String, value: String) -> String {
        let order = ctx.value("OBR-3-1") ?? ctx.value("OBR-2-1") ?? ctx.value("MSH-10") ?? ""
        let sender = [ctx.value("MSH-3-1"), ctx.value("MSH-4-1")].compactMap { $0 }.joined(separator: "@")
        return [sender, order, code, ctx.value("\(obx)-4") ?? "", value].joined(separator: "|")
    }
}

/// 6.2 → "6.2", 50.0 → "50".
func trim(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
}
