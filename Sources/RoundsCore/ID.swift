import Foundation

/// Makes UUIDv7-style ids: 48 bits of milliseconds first, so ids sort by creation time, which
/// keeps indexes tidy and lets "give me everything after id X" queries work.
public struct IDGenerator: Sendable {
    private let make: @Sendable () -> String

    public init(_ make: @escaping @Sendable () -> String) {
        self.make = make
    }

    public func next() -> String { make() }

    public static func uuidV7(clock: any RoundsClock = SystemClock()) -> IDGenerator {
        IDGenerator {
            let millis = UInt64(max(0, clock.now().timeIntervalSince1970 * 1000))
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<6 { bytes[i] = UInt8((millis >> (8 * (5 - UInt64(i)))) & 0xFF) }
            var random = SystemRandomNumberGenerator()
            for i in 6..<16 { bytes[i] = UInt8.random(in: 0...255, using: &random) }
            bytes[6] = (bytes[6] & 0x0F) | 0x70 // version 7
            bytes[8] = (bytes[8] & 0x3F) | 0x80 // RFC 4122 variant
            let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                   bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
            return uuid.uuidString.lowercased()
        }
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
