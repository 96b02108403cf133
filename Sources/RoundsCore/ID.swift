import Foundation

/// Makes UUIDv7-style ids: 48 bits of milliseconds first, so ids sort by creation time, which
/// keeps indexes tidy and lets "give me everything after id X" queries work.
public struct IDGenerator: Sendable {
    private let make: @Sendable () -> String

    public init(_ make: @escaping @Sendable () -> String) {
        self.make = make
    }

    public func next() -> String { make() }

    /// Ids are strictly increasing within a process, even within one millisecond (and with a
    /// frozen test clock): after the timestamp comes a 42-bit sequence that starts at a random
    /// value each millisecond and counts up (RFC 9562, method 2), then random bits.
    public static func uuidV7(clock: any RoundsClock = SystemClock()) -> IDGenerator {
        let state = MonotonicState()
        return IDGenerator {
            let (millis, sequence) = state.next(millis: UInt64(max(0, clock.now().timeIntervalSince1970 * 1000)))
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<6 { bytes[i] = UInt8((millis >> (8 * (5 - UInt64(i)))) & 0xFF) }
            bytes[6] = 0x70 | UInt8((sequence >> 38) & 0x0F)  // version 7 + sequence bits 41…38
            bytes[7] = UInt8((sequence >> 30) & 0xFF)
            bytes[8] = 0x80 | UInt8((sequence >> 24) & 0x3F)  // RFC variant + bits 29…24
            bytes[9] = UInt8((sequence >> 16) & 0xFF)
            bytes[10] = UInt8((sequence >> 8) & 0xFF)
            bytes[11] = UInt8(sequence & 0xFF)
            var random = SystemRandomNumberGenerator()
            for i in 12..<16 { bytes[i] = UInt8.random(in: 0...255, using: &random) }
            let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                   bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
            return uuid.uuidString.lowercased()
        }
    }

    /// The smallest UUIDv7 id of a moment: ids made after it sort above ("what came since").
    public static func floor(at date: Date) -> String {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        let hex = String(millis, radix: 16)
        let padded = String(repeating: "0", count: max(0, 12 - hex.count)) + hex
        return "\(padded.prefix(8))-\(padded.suffix(4))-0000-0000-000000000000"
    }

    /// Sequential ids for tests that compare whole values.
    public static func sequential(prefix: String = "id") -> IDGenerator {
        let counter = Counter()
        return IDGenerator { "\(prefix)-\(String(format: "%06d", counter.increment()))" }
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.withLock { value += 1; return value } }
}

/// The last (millisecond, sequence) handed out, so the next id sorts after it.
private final class MonotonicState: @unchecked Sendable {
    private let lock = NSLock()
    private var lastMillis: UInt64 = 0
    private var sequence: UInt64 = 0
    private static let maximum: UInt64 = (1 << 42) - 1

    func next(millis now: UInt64) -> (UInt64, UInt64) {
        lock.withLock {
            if now > lastMillis {
                lastMillis = now
                sequence = UInt64.random(in: 0..<(1 << 41))  // leaves room to count up
            } else if sequence < Self.maximum {
                sequence += 1  // same millisecond, or the clock stepped back
            } else {
                lastMillis += 1
                sequence = 0
            }
            return (lastMillis, sequence)
        }
    }
}
