import Foundation
import RoundsCore

/// Where the data lives. SQLite is the zero-set-up default (one file); a `postgres://` URL
/// selects PostgreSQL for production and multi-node installations.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// `DATABASE_URL` wins when set; otherwise the SQLite file at `sqlitePath`.
    public static func resolve(databaseURL: String?, sqlitePath: String) -> DatabaseLocation {
        if let url = databaseURL, !url.isEmpty { return .postgres(url: url) }
        return .sqlite(path: sqlitePath)
    }

    public var isPostgres: Bool { if case .postgres = self { true } else { false } }

    /// Safe to log: the password is masked.
    public var description: String {
        switch self {
        case .sqlite(let path): return "SQLite \(path)"
        case .postgres(let url):
            guard var parts = URLComponents(string: url) else { return "PostgreSQL" }
            if parts.password != nil { parts.password = "***" }
            return "PostgreSQL \(parts.string ?? "")"
        }
    }
}

extension DatabaseLocation {
    /// The SQLite file holds patient data: readable and writable by the server's own user only
    /// (SQLite gives its -wal and -shm files the same permissions). An existing file that others
    /// could read is tightened.
    public static func restrictToOwner(_ path: String) throws {
        let files = FileManager.default
        if !files.fileExists(atPath: path) {
            guard files.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw DatabaseFileError(description: "cannot create the database file \(path)")
            }
        } else {
            try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        }
        for suffix in ["-wal", "-shm"] where files.fileExists(atPath: path + suffix) {
            try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path + suffix)
        }
    }
}

struct DatabaseFileError: Error, CustomStringConvertible {
    var description: String
}
