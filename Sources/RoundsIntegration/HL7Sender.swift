import Foundation
import NIOCore
import NIOSSL
import RoundsHL7

/// Sends HL7 messages to an MLLP peer from the command line (`rounds send-hl7`, `rounds
/// simulate`) and from the demo server's own feed: one connection, reopened after a failure,
/// each message resent until it is acknowledged — what a well-behaved HIS interface does.
public struct HL7Sender: Sendable {
    public var host: String
    public var port: Int
    public var tls: NIOSSLContext?
    public var timeoutSeconds: Int64 = 30
    /// Attempts per message before giving up on it (0 = forever).
    public var maximumAttempts = 5

    public init(host: String, port: Int, tls: NIOSSLContext? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// One acknowledged message.
    public struct Result: Sendable {
        public var index: Int
        public var controlID: String
        public var ackCode: String
        public var text: String?
        public var attempts: Int
        public var acknowledgement: [UInt8]
    }

    /// Sends each message produced by `next` (nil ends the run), calling `done` with each ACK.
    /// Throws only when a message could not be delivered after `maximumAttempts`.
    public func run(next: () async -> [UInt8]?, done: (Result) async -> Void) async throws {
        var pending = await next()
        var index = 0
        var attempts = 0
        while pending != nil {
            do {
                try await MLLPClient.withConnection(host: host, port: port, tls: tls, serverHostname: tls == nil ? nil : host,
                                                    timeout: .seconds(timeoutSeconds)) { session in
                    while let message = pending {
                        attempts += 1
                        let ack = try await session.send(message)
                        await done(Self.describe(ack, index: index, message: message, attempts: attempts))
                        attempts = 0
                        index += 1
                        pending = await next()
                    }
                }
            } catch {
                if maximumAttempts > 0 && attempts >= maximumAttempts {
                    throw HL7SenderError(index: index, attempts: attempts, underlying: "\(error)")
                }
                // The peer hung up or is restarting: wait a little and send the same message again.
                try await Task.sleep(for: .milliseconds(min(2000, 100 * (1 << min(attempts, 5)))))
            }
        }
    }

    static func describe(_ ack: [UInt8], index: Int, message: [UInt8], attempts: Int) -> Result {
        let sent = try? HL7Message.parse(bytes: message).0
        let parsed = try? HL7Message.parse(bytes: ack).0
        let text = parsed.flatMap { $0["ERR-8"] ?? $0["MSA-3"] }
        return Result(index: index, controlID: sent?.controlID ?? "?", ackCode: parsed?["MSA-1"] ?? "??",
                      text: text?.isEmpty == true ? nil : text, attempts: attempts, acknowledgement: ack)
    }

    /// Splits a file into messages: each starts at a line beginning with "MSH"; LF and CRLF
    /// line ends become the CR that HL7 requires. Works on bytes, so GB 18030 text is untouched.
    public static func messages(inFile bytes: [UInt8]) -> [[UInt8]] {
        var normalised: [UInt8] = []
        normalised.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1; continue }  // CRLF → CR (the LF is taken next)
            normalised.append(b == 0x0A ? 0x0D : b)
            i += 1
        }
        var messages: [[UInt8]] = []
        var current: [UInt8] = []
        var lineStart = 0
        for (position, byte) in normalised.enumerated() {
            if position == lineStart, normalised[position...].starts(with: Array("MSH".utf8)), !current.isEmpty {
                messages.append(current)
                current = []
            }
            current.append(byte)
            if byte == 0x0D { lineStart = position + 1 }
        }
        if !current.isEmpty { messages.append(current) }
        // Drop blank lines between messages and trailing separators beyond one CR.
        return messages.compactMap { message in
            var m = message
            while m.count >= 2, m[m.count - 1] == 0x0D, m[m.count - 2] == 0x0D { m.removeLast() }
            let content = m.filter { $0 != 0x0D && $0 != 0x20 }
            return content.isEmpty ? nil : m
        }
    }
}

public struct HL7SenderError: Error, CustomStringConvertible {
    public var index: Int
    public var attempts: Int
    public var underlying: String
    public var description: String { "message \(index + 1) was not acknowledged after \(attempts) attempts: \(underlying)" }
}
