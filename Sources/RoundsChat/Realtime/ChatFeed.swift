import FluentKit
import RoundsDirectory
import SQLKit
import Foundation
import Logging
import RoundsCore
import RoundsStore

/// Pushes new messages, read receipts and typing to the open clients (WebSockets) of every
/// member of a group. When woken (`ChangeNotifier`, or every second regardless) it reads what
/// arrived recently and sends each item once to each connected member. Clients that were away
/// catch up through the messages API with `after=<last id seen>`.
public actor ChatFeed {
    /// What a client receives (JSON text frames).
    public struct Event: Codable, Sendable {
        public var type: String  // message, receipt, typing
        public var groupId: String
        public var message: Message?
        public var receipt: Receipt?
        public var staffId: String?
        public var name: String?
    }

    public struct Message: Codable, Sendable {
        public var id: String
        public var kind: String
        public var senderId: String?
        public var senderName: String
        public var text: String
        public var card: Card?
        public var replyToId: String?
        public var createdAt: Date
        public var editedAt: Date?
        public var recalled: Bool?
        public var mentions: [String]?
        public var attachmentId: String?

        init(_ m: ChatMessage) {
            id = m.id ?? ""; kind = m.kind; senderId = m.senderID; senderName = m.senderName; text = m.text
            card = m.card.flatMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }
            replyToId = m.replyToID; createdAt = m.createdAt; editedAt = m.editedAt
            recalled = m.recalledAt == nil ? nil : true
            mentions = m.mentions.map { $0.split(separator: " ").map(String.init) }
            attachmentId = m.attachmentID
        }
    }

    public struct Receipt: Codable, Sendable {
        public var messageId: String
        public var staffId: String
        public var name: String
        public var readAt: Date
    }

    public typealias Send = @Sendable (String) async -> Void

    private struct Client {
        var staffID: String
        var send: Send
    }

    private var clients: [UUID: Client] = [:]
    private var sentMessages: [String: Date] = [:]
    private var sentReceipts: [String: Date] = [:]
    /// The highest ids read so far, and when the whole window was last read.
    private var newestMessageSeen: String?
    private var newestReceiptSeen: String?
    private var lastFullLook: ContinuousClock.Instant?
    private let clock: any RoundsClock
    private let notifier: ChangeNotifier
    private let database: @Sendable () -> any Database
    private let logger: Logger
    /// How far back each look reaches: covers transactions that commit out of id order.
    private let window: TimeInterval = 10
    private var loop: Task<Void, Never>?
    private var deliveries: Task<Void, Never>?
    /// Wakes for new rows coalesce here: under load many arrive while one look is running, and
    /// one more look after it sees them all.
    private var deliveryKick: AsyncStream<Void>.Continuation?
    /// How often to look without being woken (a lost wake-up costs at most this).
    private let safetyTick: Duration

    public init(clock: any RoundsClock, notifier: ChangeNotifier, logger: Logger, safetyTick: Duration = .seconds(1),
                database: @escaping @Sendable () -> any Database) {
        self.clock = clock
        self.safetyTick = safetyTick
        self.notifier = notifier
        self.logger = logger
        self.database = database
    }

    public var connectedClients: Int { clients.count }

    /// Starts watching (idempotent).
    public func start() {
        guard loop == nil else { return }
        let (listenerID, wakes) = notifier.updates()
        let notifier = self.notifier, tick = safetyTick
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        deliveryKick = kick
        deliveries = Task { [weak self] in
            for await _ in kicks {
                guard let self else { break }
                await self.deliverIfAnyoneListens()
            }
        }
        loop = Task { [weak self] in
            // A regular look, in case a wake-up was lost.
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
        deliveryKick?.finish()
        let running = deliveries
        deliveries = nil
        await running?.value
        clients.removeAll()
    }

    @discardableResult
    public func connect(staffID: String, id: UUID = UUID(), send: @escaping Send) -> UUID {
        clients[id] = Client(staffID: staffID, send: send)
        return id
    }

    public func disconnect(_ id: UUID) {
        clients.removeValue(forKey: id)
    }

    private func wake(_ wake: Wake) async {
        if wake.isOutbox || wake.changedTableID != nil { return }  // for the outbox dispatcher and the table feed
        if wake.isTyping {
            await deliverTyping(wake.rawValue)
            return
        }
        if let messageID = wake.updatedMessageID {
            await deliverUpdate(messageID)
            return
        }
        deliveryKick?.yield()
    }

    private func deliverIfAnyoneListens() async {
        guard !clients.isEmpty else { return }
        do { try await deliverRecent() } catch { logger.warning("chat feed: \(error)") }
    }

    /// "typing:<groupId>:<staffId>:<name>", sent by a client; not stored.
    private func deliverTyping(_ payload: String) async {
        let parts = payload.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { return }
        let event = Event(type: "typing", groupId: parts[1], staffId: parts[2], name: parts[3])
        do {
            let members = Set(try await ChatMember.query(on: database()).filter(\.$groupID == parts[1]).all(\.$staffID))
            await send(event, to: members.subtracting([parts[2]]))
        } catch { logger.warning("chat feed typing: \(error)") }
    }

    /// A message changed (edited, recalled, a bot's card updated): every member's client redraws it.
    private func deliverUpdate(_ messageID: String) async {
        do {
            let db = database()
            guard let message = try await ChatMessage.find(messageID, on: db) else { return }
            let members = Set(try await ChatMember.query(on: db).filter(\.$groupID == message.groupID).all(\.$staffID))
            await send(Event(type: "update", groupId: message.groupID, message: Message(message)), to: members)
        } catch { logger.warning("chat feed card: \(error)") }
    }

    private func deliverRecent() async throws {
        let db = database()
        // Most looks read only what is newer than anything seen (cheap under load); about once a
        // second a look reads the whole window again, for rows whose transaction committed after
        // newer ones (ids are made before commit) or that another process made with a clock a
        // little behind. Ids first, whole rows only for what was not sent yet.
        let now = clock.now()
        let windowFloor = Self.idFloor(now.addingTimeInterval(-window))
        let tick = ContinuousClock.now  // a cadence, not clinical time: the wall clock even under a test clock
        let fullLook = lastFullLook.map { tick - $0 >= .seconds(1) } ?? true
        if fullLook { lastFullLook = tick }
        let messageFloor = fullLook ? windowFloor : max(windowFloor, newestMessageSeen ?? "")
        let receiptFloor = fullLook ? windowFloor : max(windowFloor, newestReceiptSeen ?? "")
        let limit = 5000
        let allMessageIDs = try await Self.ids(in: ChatMessage.schema, after: messageFloor, limit: limit, on: db)
        let allReceiptIDs = try await Self.ids(in: ChatReceipt.schema, after: receiptFloor, limit: limit, on: db)
        if let last = allMessageIDs.last { newestMessageSeen = max(newestMessageSeen ?? "", last) }
        if let last = allReceiptIDs.last { newestReceiptSeen = max(newestReceiptSeen ?? "", last) }
        // More than one look's worth arrived: look again straight after this one.
        if allMessageIDs.count == limit || allReceiptIDs.count == limit { deliveryKick?.yield() }
        let messageIDs = allMessageIDs.filter { sentMessages[$0] == nil }
        let receiptIDs = allReceiptIDs.filter { sentReceipts[$0] == nil }
        let messages = messageIDs.isEmpty ? [] : try await ChatMessage.query(on: db).filter(\.$id ~~ messageIDs).sort(\.$id).all()
        let receipts = receiptIDs.isEmpty ? [] : try await ChatReceipt.query(on: db).filter(\.$id ~~ receiptIDs).sort(\.$id).all()
        guard !messages.isEmpty || !receipts.isEmpty else { return prune() }
        let groupIDs = Set(messages.map(\.groupID)).union(receipts.map(\.groupID))
        let members = try await ChatMember.query(on: db).filter(\.$groupID ~~ Array(groupIDs)).all()
        var membersByGroup: [String: Set<String>] = [:]
        for m in members { membersByGroup[m.groupID, default: []].insert(m.staffID) }
        for message in messages {
            sentMessages[message.id!] = now
            await send(Event(type: "message", groupId: message.groupID, message: Message(message)), to: membersByGroup[message.groupID] ?? [])
        }
        if !receipts.isEmpty {
            let readers = try await Staff.query(on: db).filter(\.$id ~~ Array(Set(receipts.map(\.staffID)))).all()
            let names = Dictionary(readers.map { ($0.id!, $0.displayName) }, uniquingKeysWith: { a, _ in a })
            for receipt in receipts {
                sentReceipts[receipt.id!] = now
                let payload = Receipt(messageId: receipt.messageID, staffId: receipt.staffID, name: names[receipt.staffID] ?? "", readAt: receipt.readAt)
                await send(Event(type: "receipt", groupId: receipt.groupID, receipt: payload), to: membersByGroup[receipt.groupID] ?? [])
            }
        }
        prune()
    }

    private func send(_ event: Event, to staff: Set<String>) async {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(event) else { return }
        let text = String(decoding: data, as: UTF8.self)
        for client in clients.values where staff.contains(client.staffID) {
            await client.send(text)
        }
    }

    /// Forget what fell out of the window (it will not be read again).
    private func prune() {
        let limit = clock.now().addingTimeInterval(-2 * window)
        sentMessages = sentMessages.filter { $0.value > limit }
        sentReceipts = sentReceipts.filter { $0.value > limit }
    }

    /// The smallest UUIDv7 id of a moment: ids made after it sort above.
    static func ids(in table: String, after floor: String, limit: Int, on db: any Database) async throws -> [String] {
        guard let sql = db as? any SQLDatabase else { return [] }
        return try await sql.raw("SELECT id FROM \(ident: table) WHERE id > \(bind: floor) ORDER BY id LIMIT \(bind: limit)")
            .all().map { try $0.decode(column: "id", as: String.self) }
    }

    static func idFloor(_ date: Date) -> String { IDGenerator.floor(at: date) }
}
