import Foundation

extension FHIR {
    public struct Identifier: Codable, Sendable, Equatable {
        public var system: String?
        public var value: String
        public init(system: String? = nil, value: String) { self.system = system; self.value = value }
    }

    public struct CodeableConcept: Codable, Sendable, Equatable {
        public var coding: [Coding]?
        public var text: String?
        public init(coding: [Coding]? = nil, text: String? = nil) { self.coding = coding; self.text = text }
    }

    /// R4 DocumentReference: a signed clinical document (a ward-round note version), its text
    /// inline as a text/plain attachment, and the version it replaces.
    public struct DocumentReference: Codable, Sendable, Equatable {
        public struct Attachment: Codable, Sendable, Equatable {
            public var contentType: String
            public var language: String?
            /// Base64 of the UTF-8 text.
            public var data: String
            public var title: String?
            public var creation: String?
            public init(contentType: String, language: String?, data: String, title: String?, creation: String?) {
                self.contentType = contentType; self.language = language; self.data = data; self.title = title; self.creation = creation
            }
        }
        public struct Content: Codable, Sendable, Equatable {
            public var attachment: Attachment
            public init(attachment: Attachment) { self.attachment = attachment }
        }
        public struct RelatesTo: Codable, Sendable, Equatable {
            public var code: String
            public var target: Reference
            public init(code: String, target: Reference) { self.code = code; self.target = target }
        }

        public var resourceType = "DocumentReference"
        public var id: String?
        public var masterIdentifier: Identifier?
        /// current, or superseded once a correction is signed.
        public var status: String
        /// final for the first version, amended for corrections.
        public var docStatus: String?
        public var type: CodeableConcept?
        public var subject: Reference?
        public var date: String?
        public var author: [Reference]?
        public var authenticator: Reference?
        public var relatesTo: [RelatesTo]?
        public var description: String?
        public var content: [Content]

        public init(id: String?, masterIdentifier: Identifier?, status: String, docStatus: String?, type: CodeableConcept?, subject: Reference?,
                    date: String?, author: [Reference]?, authenticator: Reference?, relatesTo: [RelatesTo]?, description: String?, content: [Content]) {
            self.id = id; self.masterIdentifier = masterIdentifier; self.status = status; self.docStatus = docStatus; self.type = type
            self.subject = subject; self.date = date; self.author = author; self.authenticator = authenticator; self.relatesTo = relatesTo
            self.description = description; self.content = content
        }
    }
}
