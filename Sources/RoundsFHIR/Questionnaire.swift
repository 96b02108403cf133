import Foundation

/// The FHIR R4 resources Rounds writes, as plain Codable values: only the elements Rounds fills
/// in. Optional elements left nil are left out of the JSON, as FHIR requires (no nulls).
public enum FHIR {
    public struct Coding: Codable, Sendable, Equatable {
        public var system: String?
        public var code: String?
        public var display: String?
        public var `extension`: [Extension]?
        public init(system: String? = nil, code: String? = nil, display: String? = nil, extension: [Extension]? = nil) {
            self.system = system; self.code = code; self.display = display; self.extension = `extension`
        }
    }

    public struct Extension: Codable, Sendable, Equatable {
        public var url: String
        public var valueDecimal: Decimal?
        public init(url: String, valueDecimal: Decimal?) { self.url = url; self.valueDecimal = valueDecimal }
    }

    public struct Reference: Codable, Sendable, Equatable {
        public var reference: String?
        public var display: String?
        public init(reference: String?, display: String? = nil) { self.reference = reference; self.display = display }
    }

    /// R4 `ordinalValue`: the points of an answer option.
    public static let ordinalValue = "http://hl7.org/fhir/StructureDefinition/ordinalValue"

    public struct Questionnaire: Codable, Sendable, Equatable {
        public var resourceType = "Questionnaire"
        public var id: String?
        public var url: String?
        public var version: String?
        public var name: String?
        public var title: String?
        public var status: String
        public var subjectType: [String]?
        public var date: String?
        public var item: [Item]

        public struct Item: Codable, Sendable, Equatable {
            public var linkId: String
            public var text: String?
            public var type: String
            public var required: Bool?
            public var readOnly: Bool?
            public var enableWhen: [EnableWhen]?
            public var enableBehavior: String?
            public var answerOption: [AnswerOption]?
            public init(linkId: String, text: String?, type: String, required: Bool? = nil, readOnly: Bool? = nil,
                        enableWhen: [EnableWhen]? = nil, enableBehavior: String? = nil, answerOption: [AnswerOption]? = nil) {
                self.linkId = linkId; self.text = text; self.type = type; self.required = required; self.readOnly = readOnly
                self.enableWhen = enableWhen; self.enableBehavior = enableBehavior; self.answerOption = answerOption
            }
        }

        public struct EnableWhen: Codable, Sendable, Equatable {
            public var question: String
            public var `operator`: String
            public var answerCoding: Coding
            public init(question: String, operator: String, answerCoding: Coding) {
                self.question = question; self.operator = `operator`; self.answerCoding = answerCoding
            }
        }

        public struct AnswerOption: Codable, Sendable, Equatable {
            public var valueCoding: Coding
            public init(valueCoding: Coding) { self.valueCoding = valueCoding }
        }

        public init(id: String?, url: String?, version: String?, name: String?, title: String?, status: String, subjectType: [String]?,
                    date: String?, item: [Item]) {
            self.id = id; self.url = url; self.version = version; self.name = name; self.title = title; self.status = status
            self.subjectType = subjectType; self.date = date; self.item = item
        }
    }

    public struct QuestionnaireResponse: Codable, Sendable, Equatable {
        public var resourceType = "QuestionnaireResponse"
        public var id: String?
        public var questionnaire: String?
        public var status: String
        public var subject: Reference?
        public var encounter: Reference?
        public var authored: String?
        public var author: Reference?
        public var item: [Item]

        public struct Item: Codable, Sendable, Equatable {
            public var linkId: String
            public var text: String?
            public var answer: [Answer]?
            public init(linkId: String, text: String?, answer: [Answer]?) { self.linkId = linkId; self.text = text; self.answer = answer }
        }

        public struct Answer: Codable, Sendable, Equatable {
            public var valueCoding: Coding?
            public var valueInteger: Int?
            public var valueString: String?
            public init(valueCoding: Coding? = nil, valueInteger: Int? = nil, valueString: String? = nil) {
                self.valueCoding = valueCoding; self.valueInteger = valueInteger; self.valueString = valueString
            }
        }

        public init(id: String?, questionnaire: String?, status: String, subject: Reference?, encounter: Reference?, authored: String?,
                    author: Reference?, item: [Item]) {
            self.id = id; self.questionnaire = questionnaire; self.status = status; self.subject = subject; self.encounter = encounter
            self.authored = authored; self.author = author; self.item = item
        }
    }

    /// FHIR dateTime with seconds and a time zone.
    public static func dateTime(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
