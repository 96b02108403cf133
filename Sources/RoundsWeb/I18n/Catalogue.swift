import Foundation
import RoundsCore

/// All UI strings, one JSON file per language under Resources/i18n. Templates receive the
/// whole table of the request's language as `t`.
public struct Catalogue: Sendable {
    public let tables: [RoundsCore.Locale: [String: String]]

    public static func load() throws -> Catalogue {
        var tables: [RoundsCore.Locale: [String: String]] = [:]
        for locale in RoundsCore.Locale.allCases {
            let root = WebResources.root
            guard let url = WebResources.url("i18n/\(locale.rawValue).json") else {
                throw RoundsError.badRequest("missing catalogue \(root.appendingPathComponent("i18n/\(locale.rawValue).json").path)")
            }
            tables[locale] = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        }
        return Catalogue(tables: tables)
    }

    public func table(_ locale: RoundsCore.Locale) -> [String: String] {
        tables[locale] ?? tables[.default] ?? [:]
    }

    public func text(_ key: String, _ locale: RoundsCore.Locale) -> String {
        table(locale)[key] ?? key
    }
}

/// Files shipped inside the module: templates, catalogues, CSS and JS.
public enum WebResources {
    public static var root: URL {
        Bundle.module.url(forResource: "Resources", withExtension: nil) ?? Bundle.module.bundleURL.appendingPathComponent("Resources")
    }

    public static func url(_ relative: String) -> URL? {
        let url = root.appendingPathComponent(relative)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
}
