import Foundation

/// Where Rounds may send patient data on an administrator's say-so (alert connectors, the
/// outbound HL7 queue). The installation sets it (`--allow-destination`,
/// `ROUNDS_ALLOWED_DESTINATIONS`); an administrator then chooses only among those, so a
/// mistaken or malicious setting cannot send critical values to an arbitrary host or probe the
/// hospital network.
///
/// Entries: `host` (any port), `host:port`, `*.example.cn` (sub-domains, not the domain itself),
/// `10.20.0.0/16` (IPv4 network, any port) and `10.20.0.0/16:2575`.
public struct DestinationAllowList: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        enum Host: Sendable, Equatable {
            case name(String)
            case suffix(String)
            case network(UInt32, prefix: Int)
        }
        var host: Host
        var port: Int?
    }

    /// The public chat services' webhook hosts: what a hospital without its own list can use.
    public static let publicWebhooks = ["open.feishu.cn", "open.larksuite.com", "qyapi.weixin.qq.com"]
    public static let standard = try! DestinationAllowList(publicWebhooks)

    public private(set) var entries: [Entry]
    private let text: [String]

    public init(_ lines: [String]) throws {
        var entries: [Entry] = []
        var text: [String] = []
        for raw in lines {
            let line = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard !line.isEmpty else { continue }
            entries.append(try Self.parse(line))
            text.append(line)
        }
        self.entries = entries
        self.text = text
    }

    public var description: String { text.joined(separator: ", ") }

    /// This list and more entries.
    public func adding(_ lines: [String]) throws -> DestinationAllowList {
        try DestinationAllowList(text + lines)
    }

    static func parse(_ line: String) throws -> Entry {
        var hostPart = line
        var port: Int?
        // A trailing ":digits" is a port (IPv6 literals are not supported here).
        if let colon = line.lastIndex(of: ":") {
            let tail = line[line.index(after: colon)...]
            guard let p = Int(tail), (1...65535).contains(p) else { throw RoundsError.validation("allowed destination \(line): bad port") }
            port = p
            hostPart = String(line[..<colon])
        }
        guard !hostPart.isEmpty, hostPart.unicodeScalars.allSatisfy({ CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789.-*/").contains($0) }) else {
            throw RoundsError.validation("allowed destination \(line): a host name, *.domain or IPv4 network")
        }
        if hostPart.contains("/") {
            let parts = hostPart.split(separator: "/")
            guard parts.count == 2, let address = ipv4(String(parts[0])), let prefix = Int(parts[1]), (0...32).contains(prefix) else {
                throw RoundsError.validation("allowed destination \(line): a network is a.b.c.d/n")
            }
            return Entry(host: .network(address & mask(prefix), prefix: prefix), port: port)
        }
        if hostPart.hasPrefix("*.") {
            let suffix = String(hostPart.dropFirst(1))  // ".example.cn"
            guard suffix.count > 1, !suffix.dropFirst().contains("*") else { throw RoundsError.validation("allowed destination \(line): *.domain") }
            return Entry(host: .suffix(suffix), port: port)
        }
        guard !hostPart.contains("*") else { throw RoundsError.validation("allowed destination \(line): * only as *.domain") }
        return Entry(host: .name(hostPart), port: port)
    }

    /// Whether a host and port may be sent to. A host given as a name matches only that name
    /// (not its address), an address only its own entry or a network that holds it.
    public func permits(host rawHost: String, port: Int) -> Bool {
        var host = rawHost.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return false }
        let address = Self.ipv4(host)
        return entries.contains { entry in
            if let p = entry.port, p != port { return false }
            switch entry.host {
            case .name(let name): return name == host
            case .suffix(let suffix): return address == nil && host.hasSuffix(suffix)
            case .network(let network, let prefix): return address.map { $0 & Self.mask(prefix) == network } ?? false
            }
        }
    }

    /// Whether an http(s) address may be sent to (its host and its port, 80/443 by default).
    public func permits(url: String) -> Bool {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty else { return false }
        // A user-info part ("https://open.feishu.cn@evil.example/") is how hosts are disguised.
        guard components.user == nil, components.password == nil else { return false }
        return permits(host: host, port: components.port ?? (scheme == "https" ? 443 : 80))
    }

    static func ipv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << (32 - prefix)
    }
}
