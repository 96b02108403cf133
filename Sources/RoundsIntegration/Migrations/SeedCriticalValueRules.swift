import FluentKit
import Foundation

/// Default critical-value limits every installation starts with (editable afterwards):
/// the commonly published adult limits, per LOINC code and unit.
struct SeedCriticalValueRules: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.SeedCriticalValueRules" }

    static let defaults: [(code: String, name: String, unit: String, low: Double?, high: Double?)] = [
        ("2823-3", "Potassium 钾", "mmol/L", 2.8, 6.2),
        ("2951-2", "Sodium 钠", "mmol/L", 120, 160),
        ("2345-7", "Glucose 血糖", "mmol/L", 2.2, 22.2),
        ("718-7", "Hemoglobin 血红蛋白", "g/L", 50, nil),
        ("777-3", "Platelets 血小板", "10*9/L", 20, nil),
        ("6690-2", "WBC 白细胞", "10*9/L", 1.0, 30),
        ("17861-6", "Calcium 钙", "mmol/L", 1.6, 3.5),
        ("6301-6", "INR", "{INR}", nil, 5.0),
    ]

    func prepare(on database: any Database) async throws {
        for (index, rule) in Self.defaults.enumerated() {
            try await CriticalValueRule(id: "default-\(index + 1)", code: rule.code, name: rule.name, unit: rule.unit,
                                        low: rule.low, high: rule.high).create(on: database)
        }
    }

    func revert(on database: any Database) async throws {
        try await CriticalValueRule.query(on: database).filter(\.$id ~~ Self.defaults.indices.map { "default-\($0 + 1)" }).delete()
    }
}
