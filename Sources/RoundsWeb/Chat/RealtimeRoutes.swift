import Foundation
import RoundsChat
import RoundsCore
import RoundsDirectory
import RoundsStore
import RoundsTables
import Vapor

/// `/api/v1/ws`: a WebSocket per open client. The server pushes `message`, `receipt` and
/// `typing` events of the signed-in person's groups; the client may send
/// `{"type":"typing","groupId":"…"}`. After a reconnect the client catches up through
/// `GET /api/v1/groups/:id/messages?after=<last id seen>`. The server's first frame is
/// `{"type":"hello"}`: frames sent before it may be lost. An open grid then sends
/// `{"type":"watch","tableId":"…","records":[ids on its page]}` and then receives `records`
/// events of that table (see `TableFeed`); a refused watch gets `{"type":"closed"}`.
struct RealtimeRoutes {
    struct ClientFrame: Decodable {
        var type: String
        var groupId: String?
        var tableId: String?
        var records: [String]?
    }

    /// Cross-site WebSocket hijacking: the session cookie goes along with a socket opened by any
    /// page, so a browser's socket must come from a page of Rounds itself (refused before the
    /// upgrade, as an ordinary audited 403).
    struct SameOriginOnly: AsyncMiddleware {
        func respond(to req: Request, chainingTo next: any AsyncResponder) async throws -> Response {
            if let origin = req.headers.first(name: "Origin"), !RealtimeRoutes.isSameOrigin(origin, req) {
                try await req.rounds.audit.record("chat.ws.connect", entityType: "websocket", entityID: nil, outcome: .denied,
                                                  detail: "Origin \(origin.prefix(100))", context: req.context(), on: req.db)
                throw RoundsError.forbidden("WebSocket from another site (Origin \(origin.prefix(100)))")
            }
            return try await next.respond(to: req)
        }
    }

    /// The Origin names this server: the configured public address, or the Host the request came to.
    static func isSameOrigin(_ origin: String, _ req: Request) -> Bool {
        guard let url = URL(string: origin), let host = url.host?.lowercased() else { return false }
        let port = url.port.map { ":\($0)" } ?? ""
        let claimed = host + port
        if let publicURL = req.rounds.configuration.publicURL, let own = URL(string: publicURL), let ownHost = own.host?.lowercased(),
           claimed == ownHost + (own.port.map { ":\($0)" } ?? "") {
            return true
        }
        guard let hostHeader = req.headers.first(name: .host)?.lowercased() else { return false }
        // Some clients leave the port out of Host; the site must still be the same.
        return hostHeader == claimed || (!hostHeader.contains(":") && hostHeader == host)
    }

    func register(_ routes: any RoutesBuilder, registry: OpenAPIRegistry) {
        registry.add(.init(method: .GET, path: "/api/v1/ws",
                           summary: "WebSocket (upgrade): live message, receipt and typing events of my groups; send {\"type\":\"typing\",\"groupId\":…}; an open grid sends {\"type\":\"watch\",\"tableId\":…,\"records\":[…]} and receives that table's record changes as it may see them",
                           tag: "chat", body: nil, response: nil, responseIsArray: false, status: 101, query: [],
                           responseContentType: "application/json"))
        routes.grouped(SameOriginOnly()).webSocket("ws", maxFrameSize: .init(integerLiteral: 1 << 16), shouldUpgrade: { req in
            // Staff only (bots use the REST API); the sign-in check already ran.
            guard try req.context().principal.kind == .staff else { throw RoundsError.forbidden("WebSocket clients are people") }
            return [:]
        }, onUpgrade: { req, ws in
            guard let context = try? req.context() else { try? await ws.close(); return }
            let feed = req.application.chatFeed
            // A frame that arrives before its handler is registered (on the socket's event loop)
            // is lost: the handlers go first, and `hello` (sent after them, on the same loop)
            // tells the client it may now send (a grid's watch).
            let id = UUID()
            let chat = req.rounds.chat, tables = req.rounds.tables, tableFeed = req.application.tableFeed, db = req.db
            ws.onText { ws, text in
                guard let frame = try? JSONDecoder().decode(ClientFrame.self, from: Data(text.utf8)) else { return }
                switch frame.type {
                case "typing":
                    guard let groupID = frame.groupId else { return }
                    try? await chat.typing(groupID: groupID, context: context, on: db)
                case "watch":
                    guard let tableID = frame.tableId else { return }
                    // The same check (and audited refusal) as opening the grid.
                    guard (try? await tables.tableDetail(tableID, context: context, on: db)) != nil else {
                        try? await ws.send(TableFeed.text(.init(type: "closed", tableId: tableID)))
                        return
                    }
                    await tableFeed.watch(client: id, table: tableID, showing: frame.records ?? [], context: context) { text in
                        try? await ws.send(text)
                    }
                case "unwatch":
                    await tableFeed.unwatch(client: id)
                default:
                    return
                }
            }
            ws.onClose.whenComplete { _ in
                Task {
                    await feed.disconnect(id)
                    await tableFeed.unwatch(client: id)
                }
            }
            guard !ws.isClosed else { return }
            await feed.connect(staffID: context.principal.id, id: id) { text in
                try? await ws.send(text)
            }
            try? await ws.send(#"{"type":"hello"}"#)
        })
    }
}

extension Application {
    private struct ChatFeedKey: StorageKey { typealias Value = ChatFeed }

    private struct TableFeedKey: StorageKey { typealias Value = TableFeed }

    /// This process's feed of record changes to open grids.
    public var tableFeed: TableFeed {
        get {
            guard let feed = storage[TableFeedKey.self] else { fatalError("configure(_:_:) has not run") }
            return feed
        }
        set { storage[TableFeedKey.self] = newValue }
    }

    /// This process's realtime feed (one per app).
    public var chatFeed: ChatFeed {
        get {
            guard let feed = storage[ChatFeedKey.self] else { fatalError("configure(_:_:) has not run") }
            return feed
        }
        set { storage[ChatFeedKey.self] = newValue }
    }
}

/// Runs the realtime feed, and on PostgreSQL the LISTEN connection that wakes it when another
/// process commits a message.
final class RealtimeLifecycle: LifecycleHandler, @unchecked Sendable {
    let feed: ChatFeed
    let tableFeed: TableFeed
    let notifier: ChangeNotifier
    let postgresURL: String?
    private var listener: Task<Void, Never>?

    init(feed: ChatFeed, tableFeed: TableFeed, notifier: ChangeNotifier, postgresURL: String?) {
        self.feed = feed
        self.tableFeed = tableFeed
        self.notifier = notifier
        self.postgresURL = postgresURL
    }

    func didBootAsync(_ application: Application) async throws {
        await feed.start()
        await tableFeed.start()
        if let postgresURL { listener = notifier.listen(postgresURL: postgresURL, logger: application.logger) }
    }

    func shutdownAsync(_ application: Application) async {
        listener?.cancel()
        _ = await listener?.value
        await feed.stop()
        await tableFeed.stop()
    }
}
