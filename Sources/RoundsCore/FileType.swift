import Foundation

/// The file types Rounds lets a browser open (reports and photos), recognised by their bytes.
/// Anything else — HTML, scripts, SVG, or bytes that are not what the sender declared — is kept
/// as `application/octet-stream` and only ever downloaded, so an HL7 payload or an upload can
/// never run in a clinician's session.
public enum FileType {
    public static let previewable = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]
    public static let opaque = "application/octet-stream"

    /// Whether the first bytes are those of `contentType` (one of `previewable`).
    public static func bytes(_ data: Data, are contentType: String) -> Bool {
        let b = [UInt8](data.prefix(12))
        func starts(_ magic: [UInt8]) -> Bool { b.count >= magic.count && Array(b.prefix(magic.count)) == magic }
        switch contentType {
        case "image/png": return starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        case "image/jpeg": return starts([0xFF, 0xD8, 0xFF])
        case "image/gif": return starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8))
        case "image/webp": return starts(Array("RIFF".utf8)) && b.count >= 12 && Array(b[8..<12]) == Array("WEBP".utf8)
        case "application/pdf": return starts(Array("%PDF-".utf8))
        default: return false
        }
    }

    /// The type to store and serve for bytes declared as `declared`: the declared type when it is
    /// previewable and the bytes agree, otherwise `opaque`.
    public static func verified(_ declared: String, _ data: Data) -> String {
        let type = declared.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return previewable.contains(type) && bytes(data, are: type) ? type : opaque
    }
}
