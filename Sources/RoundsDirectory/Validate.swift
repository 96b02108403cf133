import Foundation
import RoundsCore
import RoundsStore

/// Input checks shared by the services; each failure names the field.
public enum Validate {
    public static func text(_ value: String, field: String, max: Int) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw RoundsError.validation("\(field): required") }
        guard trimmed.count <= max else { throw RoundsError.validation("\(field): at most \(max) characters") }
        return trimmed
    }

    public static func code(_ value: String, field: String) throws -> String {
        let trimmed = try text(value, field: field, max: 32)
        guard trimmed.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw RoundsError.validation("\(field): letters, digits, - and _ only")
        }
        return trimmed.uppercased()
    }

    public static func username(_ value: String) throws -> String {
        let trimmed = try text(value, field: "username", max: 40).lowercased()
        guard trimmed.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else {
            throw RoundsError.validation("username: letters, digits, '.', '-' and '_' only")
        }
        return trimmed
    }

    public static func isoDate(_ value: String?, field: String) throws -> String? {
        guard let value, !value.isEmpty else { return nil }
        let parts = value.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1900...2200).contains(y), (1...12).contains(m), (1...31).contains(d) else {
            throw RoundsError.validation("\(field): a date as YYYY-MM-DD")
        }
        return value
    }
}
