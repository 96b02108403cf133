import FluentKit
import SQLKit

/// Lets one write transaction at a time into an SQLite database. SQLite has one writer; two
/// transactions that both read before writing end in SQLITE_BUSY instead of waiting, so the busy
/// parts of Rounds (HL7 intake, the outbox, escalation timers) take turns in-process. Waiters
/// marked urgent (anything carrying a critical value) go before the others; each kind in
/// arrival order.
public actor SQLiteWriteGate {
    public static let shared = SQLiteWriteGate()
    private var busy = false
    private var urgent: [CheckedContinuation<Void, Never>] = []
    private var routine: [CheckedContinuation<Void, Never>] = []

    public func acquire(urgent isUrgent: Bool = false) async {
        guard busy else { busy = true; return }
        await withCheckedContinuation { continuation in
            if isUrgent { urgent.append(continuation) } else { routine.append(continuation) }
        }
    }

    /// Someone with a critical value is waiting: a long holder should finish early.
    public var hasUrgentWaiters: Bool { !urgent.isEmpty }
    public var waitingCount: Int { urgent.count + routine.count }

    public func release() {
        if !urgent.isEmpty {
            urgent.removeFirst().resume()
        } else if !routine.isEmpty {
            routine.removeFirst().resume()
        } else {
            busy = false
        }
    }
}

extension SQLiteWriteGate {
    /// The gate writers to `db` take turns at: the shared one on SQLite, none elsewhere.
    public static func of(_ db: any Database) -> SQLiteWriteGate? {
        (db as? any SQLDatabase)?.dialect.name == "sqlite" ? shared : nil
    }

    /// Runs `body` holding the gate when `db` is SQLite, straight through otherwise.
    public static func serialised<T: Sendable>(_ db: any Database, urgent: Bool = false, _ body: () async throws -> T) async throws -> T {
        guard let gate = of(db) else { return try await body() }
        await gate.acquire(urgent: urgent)
        do {
            let result = try await body()
            await gate.release()
            return result
        } catch {
            await gate.release()
            throw error
        }
    }
}
