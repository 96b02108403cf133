import Foundation

/// Time is a dependency: services ask the clock instead of calling `Date()`, so tests of
/// lock-outs, reminders and escalations run without sleeping.
public protocol RoundsClock: Sendable {
    func now() -> Date
}

public struct SystemClock: RoundsClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock tests move by hand.
public final class TestClock: RoundsClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date = Date(timeIntervalSince1970: 1_795_000_000)) {
        current = start
    }

    public func now() -> Date {
        lock.withLock { current }
    }

    public func advance(by seconds: TimeInterval) {
        lock.withLock { current = current.addingTimeInterval(seconds) }
    }
}
