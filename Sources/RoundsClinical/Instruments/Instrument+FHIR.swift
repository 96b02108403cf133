import Foundation
import RoundsDirectory
import RoundsFHIR
import RoundsStore

/// Instruments as FHIR R4 Questionnaires and assessments as QuestionnaireResponses, so other
/// systems (an EMR, a data warehouse) can read them. Options carry their points as `ordinalValue`.
extension Instrument {
    public var canonicalURL: String { "urn:rounds:instrument:\(code)" }

    func system(_ item: String) -> String { "\(canonicalURL):\(item)" }

    public func questionnaire() -> FHIR.Questionnaire {
        var items = items.map { item in
            FHIR.Questionnaire.Item(
                linkId: item.key, text: item.label.zh, type: "choice", required: item.isRequired,
                enableWhen: item.showIf.map { $0.map { FHIR.Questionnaire.EnableWhen(question: $0.item, operator: "=",
                                                                                      answerCoding: .init(system: system($0.item), code: $0.option)) } },
                enableBehavior: item.showIf.map { _ in "any" },
                answerOption: item.options.map { option in
                    .init(valueCoding: .init(system: system(item.key), code: option.key, display: option.label.zh,
                                             extension: [.init(url: FHIR.ordinalValue, valueDecimal: Decimal(option.points))]))
                })
        }
        items.append(.init(linkId: "total", text: "总分", type: "integer", readOnly: true))
        items.append(.init(linkId: "band", text: "风险等级", type: "string", readOnly: true))
        return FHIR.Questionnaire(id: "\(code)-\(version)", url: canonicalURL, version: String(version),
                                  name: code.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(),
                                  title: title.zh, status: "active", subjectType: ["Patient"], date: nil, item: items)
    }

    public func questionnaireResponse(_ a: Assessment, patient: Patient) -> FHIR.QuestionnaireResponse {
        let answers = a.decodedAnswers
        var items: [FHIR.QuestionnaireResponse.Item] = items.compactMap { item in
            guard let choice = answers[item.key], let option = item.options.first(where: { $0.key == choice }) else { return nil }
            return .init(linkId: item.key, text: item.label.zh,
                         answer: [.init(valueCoding: .init(system: system(item.key), code: option.key, display: option.label.zh))])
        }
        items.append(.init(linkId: "total", text: "总分", answer: [.init(valueInteger: a.total)]))
        items.append(.init(linkId: "band", text: "风险等级", answer: [.init(valueString: bands.first { $0.key == a.band }?.label.zh ?? a.band)]))
        return FHIR.QuestionnaireResponse(
            id: a.id, questionnaire: "\(canonicalURL)|\(a.instrumentVersion)", status: "completed",
            subject: .init(reference: "Patient/\(patient.id!)", display: patient.name), encounter: .init(reference: "Encounter/\(a.encounterID)"),
            authored: FHIR.dateTime(a.assessedAt), author: .init(reference: "Practitioner/\(a.assessorID)", display: a.assessorName), item: items)
    }
}
