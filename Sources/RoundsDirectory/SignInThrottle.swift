import Foundation
import NIOConcurrencyHelpers
import RoundsStore

/// Failed sign-ins, counted per client address and per (address, username). A lock is on a
/// username *from one address*: someone guessing elsewhere cannot lock a nurse out of her own
/// ward PC, and a username that does not exist locks exactly like one that does, so the answers
/// never tell which usernames exist. Kept in memory (a restart forgets; each process of a
/// scaled-out installation counts its own attempts).
public final class SignInThrottle: Sendable {
    /// Failures of one username from one address before it is locked there.
    public let perUsername: Int
    /// Failures from one address, any usernames, before the address must wait.
    public let perAddress: Int
    /// How far back failures count, and how long a lock lasts.
    public let window: TimeInterval
    private let failures = NIOLockedValueBox<[String: [Date]]>([:])

    public init(perUsername: Int = 5, perAddress: Int = 20, window: TimeInterval = 15 * 60) {
        self.perUsername = perUsername
        self.perAddress = perAddress
        self.window = window
    }

    public enum Verdict: Equatable, Sendable {
        case allowed
        /// This username from this address: wait `minutes`.
        case locked(minutes: Int)
        /// Too many failures from this address: wait `seconds`.
        case slowDown(seconds: Int)
    }

    public func verdict(username: String, address: String?, now: Date) -> Verdict {
        failures.withLockedValue { all in
            let address = Self.key(address)
            let byAddress = recent(all[address], now)
            if byAddress.count >= perAddress, let oldest = byAddress.first {
                return .slowDown(seconds: max(1, Int(oldest.addingTimeInterval(window).timeIntervalSince(now).rounded(.up))))
            }
            let byName = recent(all[address + "|" + username.lowercased()], now)
            if byName.count >= perUsername, let last = byName.last {
                return .locked(minutes: max(1, Int((last.addingTimeInterval(window).timeIntervalSince(now) / 60).rounded(.up))))
            }
            return .allowed
        }
    }

    /// Counts a failure; answers whether this one locked the username at this address.
    @discardableResult
    public func recordFailure(username: String, address: String?, now: Date) -> Bool {
        failures.withLockedValue { all in
            let address = Self.key(address), name = address + "|" + username.lowercased()
            all[address] = recent(all[address], now) + [now]
            let byName = recent(all[name], now) + [now]
            all[name] = byName
            if all.count > 100_000 { all = all.filter { !recent($0.value, now).isEmpty } }  // bounded memory under a spray
            return byName.count >= perUsername
        }
    }

    public func recordSuccess(username: String, address: String?) {
        failures.withLockedValue { all in _ = all.removeValue(forKey: Self.key(address) + "|" + username.lowercased()) }
    }

    private func recent(_ dates: [Date]?, _ now: Date) -> [Date] {
        (dates ?? []).filter { now.timeIntervalSince($0) < window }
    }

    private static func key(_ address: String?) -> String { address ?? "unknown" }
}
