import FluentKit
import SQLKit

/// Lets one write transaction at a time into an SQLite database (in arrival order). SQLite has
/// one writer; two transactions that both read before writing end in SQLITE_BUSY instead of
/// waiting, so the busy parts of Rounds (HL7 intake, escalation timers) take turns in-process.
public actor SQLiteWriteGate {
    public static let shared = SQLiteWriteGate()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public func acquire() async {
        guard busy else { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}

extension SQLiteWriteGate {
    /// Runs `body` holding the gate when `db` is SQLite, straight through otherwise.
    public static func serialised<T: Sendable>(_ db: any Database, _ body: () async throws -> T) async throws -> T {
        guard (db as? any SQLDatabase)?.dialect.name == "sqlite" else { return try await body() }
        await shared.acquire()
        do {
            let result = try await body()
            await shared.release()
            return result
        } catch {
            await shared.release()
            throw error
        }
    }
}
