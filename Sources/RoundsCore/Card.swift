/// A card in a patient's group (an order, a result, a critical value, a bot's message): title,
/// severity (its colour), fields and buttons — the vocabulary every capability posts in.
public struct Card: Codable, Sendable, Equatable {
    public enum Severity: String, Codable, Sendable { case info, success, warning, critical }

    public struct Field: Codable, Sendable, Equatable {
        public var label: String
        public var value: String
        /// The sending system's own words (a lab comment), shown as written, not Rounds' text.
        public var verbatim: Bool?
        public init(_ label: String, _ value: String, verbatim: Bool? = nil) { self.label = label; self.value = value; self.verbatim = verbatim }
    }

    public struct Button: Codable, Sendable, Equatable {
        public var label: String
        /// A link inside Rounds, or nil for an action button.
        public var url: String?
        /// An action name that calls back into Rounds (e.g. "acknowledge").
        public var action: String?
        public init(label: String, url: String? = nil, action: String? = nil) { self.label = label; self.url = url; self.action = action }
    }

    public var title: String
    public var severity: Severity
    public var fields: [Field]
    public var buttons: [Button]

    public init(title: String, severity: Severity, fields: [Field], buttons: [Button]) {
        self.title = title; self.severity = severity; self.fields = fields; self.buttons = buttons
    }
}

