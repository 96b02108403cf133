import Foundation

/// Links that Rounds redirects to or puts on a button. Browsers drop tabs and newlines from a
/// URL and read a backslash as a slash, so "/\t/evil.example" and "/\\evil.example" leave the
/// site although they start with one slash: such links are refused outright, and what is left
/// is judged by the origin it resolves to.
public enum LinkCheck {
    private static let base = URL(string: "https://rounds.invalid/")!

    /// A path inside Rounds ("/patients/1?tab=results"), never anything that leaves the site.
    public static func isLocalPath(_ link: String) -> Bool {
        guard link.hasPrefix("/"), !link.hasPrefix("//"), hasOnlyPlainCharacters(link),
              let resolved = URL(string: link, relativeTo: base)?.absoluteURL else { return false }
        return resolved.scheme == "https" && resolved.host == base.host && resolved.port == nil && resolved.user == nil
    }

    /// An https:// link to another site (a bot's own pages), well formed and with a host.
    public static func isHTTPSLink(_ link: String) -> Bool {
        guard link.lowercased().hasPrefix("https://"), hasOnlyPlainCharacters(link),
              let url = URL(string: link), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty,
              url.user == nil else { return false }
        return true
    }

    /// No control characters, white space or backslashes anywhere.
    static func hasOnlyPlainCharacters(_ link: String) -> Bool {
        link.unicodeScalars.allSatisfy { s in
            !(s.value < 0x21 || s.value == 0x7F || s == "\\" || CharacterSet.whitespacesAndNewlines.contains(s)
              || CharacterSet.controlCharacters.contains(s))
        }
    }
}
