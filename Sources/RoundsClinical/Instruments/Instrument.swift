import Foundation
import RoundsCore

/// Text in the UI's languages; zh-CN is required, English falls back to it.
public struct LocalizedText: Codable, Sendable, Equatable {
    public var zh: String
    public var en: String?

    public init(zh: String, en: String? = nil) { self.zh = zh; self.en = en }

    enum CodingKeys: String, CodingKey { case zh = "zh-CN", en }

    public func text(_ locale: RoundsCore.Locale) -> String { locale == .en ? (en ?? zh) : zh }
}

/// A nursing assessment instrument as data: items with scored options, which items show when,
/// how the total is formed, and the risk bands with their reassessment interval and the care-plan
/// tasks each band starts. Stored versioned in the database; the shipped ones are JSON files in
/// `Instruments/Shipped`. Scores are always computed here, on the server.
public struct Instrument: Codable, Sendable, Equatable {
    public var code: String
    public var version: Int
    public var title: LocalizedText
    /// fall, pressure_injury, nutrition, self_care, vte, pain or another word.
    public var category: String
    public var items: [Item]
    public var scoring: Scoring
    public var bands: [Band]
    /// Due within this many hours of admission (nil: not part of the admission assessment).
    public var admissionWithinHours: Int?
    /// Events that make it due again, with the hours allowed: {"fall": 1, "transfer": 24}.
    public var reassessAfterEvents: [String: Int]?

    public struct Item: Codable, Sendable, Equatable {
        public var key: String
        public var label: LocalizedText
        /// Required when shown (default true).
        public var required: Bool?
        /// For the max-of-group rule: items of one group count with their highest points.
        public var group: String?
        /// Shown only when one of these answers was given (e.g. NRS-2002's final screening).
        public var showIf: [Answer]?
        public var options: [Option]

        public var isRequired: Bool { required ?? true }
    }

    public struct Option: Codable, Sendable, Equatable {
        public var key: String
        public var label: LocalizedText
        public var points: Int
    }

    public struct Answer: Codable, Sendable, Equatable {
        public var item: String
        public var option: String
    }

    public struct Scoring: Codable, Sendable, Equatable {
        /// "sum" (every shown item's points) or "max_of_group" (per group the highest, plus ungrouped items).
        public var rule: String
        /// Points added from the patient's age on the day (NRS-2002: +1 at 70 and over).
        public var ageAdjustment: AgeAdjustment?
    }

    public struct AgeAdjustment: Codable, Sendable, Equatable {
        public var minimumAge: Int
        public var points: Int
        /// Only when this item is shown (NRS-2002: only in the final screening).
        public var whenShown: String?
    }

    public struct Band: Codable, Sendable, Equatable {
        public var key: String
        public var min: Int
        public var max: Int
        public var label: LocalizedText
        /// none, low, moderate, high: the badge colour; high posts a card to the patient group.
        public var severity: String
        /// Reassess after this many hours.
        public var reassessHours: Int?
        /// Care-plan tasks this band starts.
        public var interventions: [Intervention]?

        public var isHighRisk: Bool { severity == "high" }
    }

    public struct Intervention: Codable, Sendable, Equatable {
        public var title: LocalizedText
        public var schedule: Schedule
        /// How long the task runs (nil: until stopped or discharge).
        public var durationHours: Int?
    }

    /// When a care-plan task falls due: once, every N hours, or daily at given times ("08:00").
    public struct Schedule: Codable, Sendable, Equatable {
        public var kind: String
        public var everyHours: Int?
        public var times: [String]?

        public init(kind: String, everyHours: Int? = nil, times: [String]? = nil) {
            self.kind = kind; self.everyHours = everyHours; self.times = times
        }
    }
}

/// What scoring an assessment gave.
public struct Score: Sendable, Equatable {
    public var total: Int
    public var band: Instrument.Band
    /// The answers that count (answers to items not shown are dropped).
    public var answers: [String: String]
    /// Items shown for these answers, in order.
    public var shownItems: [String]
    public var ageAdded: Int
}

extension Instrument {
    /// Items shown for these answers: an item with `showIf` shows when any of its conditions holds.
    public func shownItems(for answers: [String: String]) -> [Item] {
        items.filter { item in
            guard let conditions = item.showIf, !conditions.isEmpty else { return true }
            return conditions.contains { answers[$0.item] == $0.option }
        }
    }

    /// Checks the answers and computes total and band. Errors name the item.
    public func score(_ answers: [String: String], age: Int?) throws -> Score {
        let known = Dictionary(items.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for (key, option) in answers.sorted(by: { $0.key < $1.key }) {
            guard let item = known[key] else { throw RoundsError.validation("answers.\(key): not an item of \(code)") }
            guard item.options.contains(where: { $0.key == option }) else {
                throw RoundsError.validation("answers.\(key): '\(option)' is not an option (\(item.options.map(\.key).joined(separator: ", ")))")
            }
        }
        let shown = shownItems(for: answers)
        for item in shown where item.isRequired && answers[item.key] == nil {
            throw RoundsError.validation("answers.\(item.key): required")
        }
        var counted: [String: String] = [:]
        var ungrouped = 0
        var groups: [String: Int] = [:]
        for item in shown {
            guard let choice = answers[item.key], let option = item.options.first(where: { $0.key == choice }) else { continue }
            counted[item.key] = choice
            if scoring.rule == "max_of_group", let group = item.group {
                groups[group] = Swift.max(groups[group] ?? 0, option.points)
            } else {
                ungrouped += option.points
            }
        }
        var ageAdded = 0
        if let adjustment = scoring.ageAdjustment, let age, age >= adjustment.minimumAge,
           adjustment.whenShown.map({ key in shown.contains { $0.key == key } }) ?? true {
            ageAdded = adjustment.points
        }
        let total = ungrouped + groups.values.reduce(0, +) + ageAdded
        guard let band = bands.first(where: { $0.min <= total && total <= $0.max }) else {
            throw RoundsError.validation("total \(total) falls in no band of \(code)")
        }
        return Score(total: total, band: band, answers: counted, shownItems: shown.map(\.key), ageAdded: ageAdded)
    }

    /// The lowest and highest total the items allow (age adjustment included).
    var possibleRange: ClosedRange<Int> {
        var low = 0, high = 0
        if scoring.rule == "max_of_group" {
            let grouped = Dictionary(grouping: items.filter { $0.group != nil }, by: { $0.group! })
            for (_, members) in grouped {
                high += members.map { $0.options.map(\.points).max() ?? 0 }.max() ?? 0
            }
        }
        for item in items where !(scoring.rule == "max_of_group" && item.group != nil) {
            let points = item.options.map(\.points)
            if item.isRequired && item.showIf == nil { low += points.min() ?? 0 }
            high += points.max() ?? 0
        }
        high += scoring.ageAdjustment?.points ?? 0
        return low...high
    }

    /// Checks a definition before it is stored: unique keys, options that exist, bands that
    /// cover every possible total once, schedules that can be run.
    public func validate() throws {
        func fail(_ detail: String) -> RoundsError { RoundsError.validation(detail) }
        guard code.range(of: "^[a-z0-9][a-z0-9-]{1,59}$", options: .regularExpression) != nil else {
            throw fail("code: 2 to 60 lowercase letters, digits and dashes")
        }
        guard !title.zh.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("title.zh-CN: required") }
        guard ["sum", "max_of_group"].contains(scoring.rule) else { throw fail("scoring.rule: sum or max_of_group") }
        guard !items.isEmpty, items.count <= 100 else { throw fail("items: 1 to 100") }
        var seen: [String: Item] = [:]
        for (index, item) in items.enumerated() {
            guard item.key.range(of: "^[a-z0-9_]{1,60}$", options: .regularExpression) != nil else {
                throw fail("items[\(index)].key: lowercase letters, digits and _")
            }
            guard seen[item.key] == nil else { throw fail("items[\(index)].key: '\(item.key)' twice") }
            guard !item.options.isEmpty, Set(item.options.map(\.key)).count == item.options.count else {
                throw fail("items[\(index)].options: at least one, keys unique")
            }
            guard item.options.allSatisfy({ (0...1000).contains($0.points) }) else { throw fail("items[\(index)].options: points 0 to 1000") }
            for condition in item.showIf ?? [] {
                guard let earlier = seen[condition.item], earlier.options.contains(where: { $0.key == condition.option }) else {
                    throw fail("items[\(index)].showIf: '\(condition.item)=\(condition.option)' is not an earlier item's option")
                }
            }
            seen[item.key] = item
        }
        if let whenShown = scoring.ageAdjustment?.whenShown, seen[whenShown] == nil {
            throw fail("scoring.ageAdjustment.whenShown: '\(whenShown)' is not an item")
        }
        guard !bands.isEmpty else { throw fail("bands: at least one") }
        let sorted = bands.sorted { $0.min < $1.min }
        guard Set(bands.map(\.key)).count == bands.count else { throw fail("bands: keys unique") }
        for (index, band) in sorted.enumerated() {
            guard band.min <= band.max else { throw fail("bands.\(band.key): min above max") }
            guard ["none", "low", "moderate", "high"].contains(band.severity) else { throw fail("bands.\(band.key).severity: none, low, moderate or high") }
            if index > 0, band.min != sorted[index - 1].max + 1 { throw fail("bands.\(band.key): must start right after \(sorted[index - 1].key)") }
            if let hours = band.reassessHours, !(1...8760).contains(hours) { throw fail("bands.\(band.key).reassessHours: 1 to 8760") }
            for intervention in band.interventions ?? [] {
                let s = intervention.schedule
                switch s.kind {
                case "once": break
                case "every_hours": guard let h = s.everyHours, (1...168).contains(h) else { throw fail("bands.\(band.key): everyHours 1 to 168") }
                case "daily_at":
                    guard let times = s.times, !times.isEmpty, times.allSatisfy({ TaskSchedule.minutes($0) != nil }) else {
                        throw fail("bands.\(band.key): daily_at needs times like 08:00")
                    }
                default: throw fail("bands.\(band.key): schedule kind once, every_hours or daily_at")
                }
            }
        }
        let range = possibleRange
        guard sorted.first!.min <= range.lowerBound, sorted.last!.max >= range.upperBound else {
            throw fail("bands: must cover every possible total \(range.lowerBound)…\(range.upperBound)")
        }
        if let hours = admissionWithinHours, !(1...720).contains(hours) { throw fail("admissionWithinHours: 1 to 720") }
    }
}

/// Times of day as minutes since midnight.
enum TaskSchedule {
    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(m) else { return nil }
        return h * 60 + m
    }
}
