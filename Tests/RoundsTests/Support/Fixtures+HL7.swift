import Foundation

/// HL7 sample files: our own fixtures (copies of the shared reference messages plus our own).
enum HL7Fixtures {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/hl7")
    }

    /// The shared reference set, beside the repository (present in CI and on developer machines).
    static var sharedDirectory: URL? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/samples/hl7")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".hl7") }.sorted()
    }

    static func expected() throws -> [String: [String: String]] {
        try JSONDecoder().decode([String: [String: String]].self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
    }
}
