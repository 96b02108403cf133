import FluentKit
import Foundation
import Logging
import RoundsCore
import RoundsStore

/// Pushes record changes to the grids open on a table, so one nurse sees another's edit without
/// reloading. Woken by `Wake.tableChanged` (NOTIFY across processes on PostgreSQL) and every
/// second regardless, it reads the cell changes of the last few seconds it has not sent yet and
/// sends each watcher those records read as that watcher: their row rule and hidden fields
/// apply, and a patient table's push is an audited read like any other.
public actor TableFeed {
    /// What a grid receives (JSON text frames): `records` (its rows as they are now), `added`
    /// (how many new records it may see), `closed` (it may no longer read the table).
    public struct Event: Codable, Sendable, Equatable {
        public var type: String  // records, closed
        public var tableId: String
        public var records: [TablesService.LiveRecord]?
        /// Records the grid showed that the watcher may no longer see (moved outside their row
        /// rule): it removes them. Only ids the grid already had, so nothing else is told.
        public var hidden: [String]?
        /// Who made the changes.
        public var by: [String]?
        /// New records it may see that the grid does not show (it offers a reload).
        public var added: Int?

        public init(type: String, tableId: String, records: [TablesService.LiveRecord]? = nil, hidden: [String]? = nil, by: [String]? = nil,
                    added: Int? = nil) {
            self.type = type; self.tableId = tableId; self.records = records; self.hidden = hidden; self.by = by; self.added = added
        }
    }

    public typealias Send = @Sendable (String) async -> Void

    private struct Watcher {
        var tableID: String
        var context: RequestContext
        var send: Send
        /// The records this grid has shown (its page, and what was pushed since).
        var known: Set<String>
    }

    private var watchers: [UUID: Watcher] = [:]
    private var sent: [String: Date] = [:]
    private var pending = Set<String>()
    private let tables: TablesService
    private let notifier: ChangeNotifier
    private let database: @Sendable () -> any Database
    private let logger: Logger
    private let safetyTick: Duration
    /// How far back each look reaches: covers transactions that commit out of id order.
    private let window: TimeInterval = 10
    private var loop: Task<Void, Never>?
    private var deliveries: Task<Void, Never>?
    private var kick: AsyncStream<Void>.Continuation?

    public init(tables: TablesService, notifier: ChangeNotifier, logger: Logger, safetyTick: Duration = .seconds(1),
                database: @escaping @Sendable () -> any Database) {
        self.tables = tables
        self.notifier = notifier
        self.logger = logger
        self.safetyTick = safetyTick
        self.database = database
    }

    public var watching: Int { watchers.count }

    public func start() {
        guard loop == nil else { return }
        let (listenerID, wakes) = notifier.updates()
        let notifier = self.notifier, tick = safetyTick
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.kick = kick
        deliveries = Task { [weak self] in
            for await _ in kicks {
                guard let self else { break }
                await self.deliverPending()
            }
        }
        loop = Task { [weak self] in
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    notifier.broadcastLocally(.catchUp)
                }
            }
            for await wake in wakes {
                guard let self else { break }
                await self.wake(wake)
            }
            ticker.cancel()
            notifier.stop(listenerID)
        }
    }

    /// Stops, after the look in hand has finished: it reads the database, which is closed next.
    public func stop() async {
        loop?.cancel()
        loop = nil
        kick?.finish()
        let running = deliveries
        deliveries = nil
        await running?.value
        watchers.removeAll()
    }

    /// A client's grid follows one table (a second watch from the same client replaces the first);
    /// `showing` is the records on its page.
    public func watch(client: UUID, table tableID: String, showing: [String], context: RequestContext, send: @escaping Send) {
        watchers[client] = Watcher(tableID: tableID, context: context, send: send, known: Set(showing.prefix(TablesService.maximumBatch)))
    }

    public func unwatch(client: UUID) {
        watchers.removeValue(forKey: client)
    }

    private func wake(_ wake: Wake) {
        if let tableID = wake.changedTableID {
            guard watchers.values.contains(where: { $0.tableID == tableID }) else { return }
            pending.insert(tableID)
        } else if wake == .catchUp {
            pending.formUnion(watchers.values.map(\.tableID))
        } else {
            return
        }
        if !pending.isEmpty { kick?.yield() }
    }

    private func deliverPending() async {
        let tableIDs = pending
        pending.removeAll()
        guard !tableIDs.isEmpty else { return }
        do { try await deliver(Array(tableIDs)) } catch { logger.warning("table feed: \(error)") }
    }

    private func deliver(_ tableIDs: [String]) async throws {
        let db = database()
        let now = tables.clock.now()
        let limit = 5000
        let changes = try await CellChange.query(on: db)
            .filter(\.$id > IDGenerator.floor(at: now.addingTimeInterval(-window)))
            .filter(\.$tableID ~~ tableIDs)
            .sort(\.$id).limit(limit).all()
        if changes.count == limit { kick?.yield() }
        let fresh = changes.filter { sent[$0.id!] == nil }
        for change in fresh { sent[change.id!] = now }
        defer { prune(now) }
        guard !fresh.isEmpty else { return }
        for tableID in tableIDs {
            let mine = fresh.filter { $0.tableID == tableID }
            guard !mine.isEmpty else { continue }
            var recordIDs: [String] = []
            for change in mine where !recordIDs.contains(change.recordID) { recordIDs.append(change.recordID) }
            for (client, watcher) in watchers where watcher.tableID == tableID {
                do {
                    // The grid's own rows in full (in slices: a bulk change arrives as several
                    // frames); records it does not show only counted, as it may see them.
                    let shows = recordIDs.filter { watcher.known.contains($0) }
                    for start in stride(from: 0, to: shows.count, by: 200) {
                        let slice = Array(shows[start..<min(start + 200, shows.count)])
                        let records = try await tables.liveRecords(table: tableID, ids: slice, context: watcher.context, on: db)
                        let shown = Set(records.map(\.id))
                        let hidden = slice.filter { !shown.contains($0) }
                        watchers[client]?.known.subtract(hidden)
                        await watcher.send(Self.text(Event(type: "records", tableId: tableID, records: records, hidden: hidden,
                                                           by: Self.actors(mine, of: Set(slice)))))
                    }
                    let others = recordIDs.filter { !watcher.known.contains($0) }
                    if !others.isEmpty {
                        let added = try await tables.visibleCount(table: tableID, ids: others, context: watcher.context, on: db)
                        if added > 0 {
                            await watcher.send(Self.text(Event(type: "added", tableId: tableID, by: Self.actors(mine, of: Set(others)), added: added)))
                        }
                    }
                } catch {
                    // No longer allowed to read the table (role removed, table deleted): the grid stops following it.
                    watchers.removeValue(forKey: client)
                    await watcher.send(Self.text(Event(type: "closed", tableId: tableID)))
                }
            }
        }
    }

    static func actors(_ changes: [CellChange], of records: Set<String>) -> [String] {
        var by: [String] = []
        for change in changes where records.contains(change.recordID) && !by.contains(change.actorName) { by.append(change.actorName) }
        return by
    }

    public static func text(_ event: Event) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private func prune(_ now: Date) {
        let limit = now.addingTimeInterval(-2 * window)
        if sent.count > 10_000 || sent.values.contains(where: { $0 < limit }) {
            sent = sent.filter { $0.value > limit }
        }
    }
}
