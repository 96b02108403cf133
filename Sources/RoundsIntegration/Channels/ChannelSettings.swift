import Foundation

/// How one sending system's messages are read: where its codes are, how they map to Rounds',
/// what it may send, and what happens when it names a ward, a member of staff or a patient
/// Rounds does not know. Edited by IT without code; the defaults are how Rounds reads a feed
/// no channel describes.
public struct ChannelSettings: Codable, Sendable, Equatable {
    /// What to do with a code or patient Rounds does not know.
    public enum Unknown: String, Codable, Sendable, CaseIterable {
        /// Create it (a ward is never created: wards are the organisation's; staff accounts that
        /// cannot sign in; patients without a stay).
        case create
        /// Store the message, answer AE, and wait in the mapping queue until it is mapped
        /// (or, for a patient, until the admission arrives).
        case queue
        /// Store the message as an error and answer AE.
        case refuse
    }

    /// Who is the attending doctor: PV1-7 (most feeds), or a ROL segment with an attending role.
    public enum AttendingSource: String, Codable, Sendable, CaseIterable {
        case pv1 = "PV1-7"
        case rol = "ROL"
    }

    /// The PL component holding the ward code (PL-1 point of care in most feeds; some send the
    /// ward as PL-4 facility-like text) and those tried for the bed, in order.
    public var wardComponent: Int = 1
    public var bedComponents: [Int] = [2, 3]
    /// The sender's ward codes → Rounds ward codes (`5N` → `LUNG`); a code not listed is used as is.
    public var wardCodes: [String: String] = [:]
    public var attendingSource: AttendingSource = .pv1
    /// ROL-3 codes meaning the attending doctor, when `attendingSource` is ROL.
    public var attendingRoleCodes: [String] = ["AT", "ATND", "ATT"]
    /// ROL-3 codes (or PV1 text) meaning the responsible nurse.
    public var nurseRoleCodes: [String] = ["RT", "RN", "NUR", "NURSE"]
    /// OBX-8 flags that make a result critical.
    public var criticalFlags: [String] = ["HH", "LL", "AA", ">", "<"]
    /// Message types the sender may send ("ORU", or "ORU^R01"); empty: every type Rounds reads.
    public var messageTypes: [String] = []
    public var unknownWard: Unknown = .queue
    public var unknownStaff: Unknown = .create
    public var unknownPatient: Unknown = .queue
    /// A port of its own: every message arriving there is this channel's, whatever its MSH-3/MSH-4
    /// (senders that cannot be told apart by their header). Opened when Rounds starts.
    public var listenPort: Int?

    public init() {}

    public init(from decoder: any Decoder) throws {
        // Every key optional: a channel saved by an older version reads with today's defaults.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ChannelSettings()
        wardComponent = try c.decodeIfPresent(Int.self, forKey: .wardComponent) ?? d.wardComponent
        bedComponents = try c.decodeIfPresent([Int].self, forKey: .bedComponents) ?? d.bedComponents
        wardCodes = try c.decodeIfPresent([String: String].self, forKey: .wardCodes) ?? d.wardCodes
        attendingSource = try c.decodeIfPresent(AttendingSource.self, forKey: .attendingSource) ?? d.attendingSource
        attendingRoleCodes = try c.decodeIfPresent([String].self, forKey: .attendingRoleCodes) ?? d.attendingRoleCodes
        nurseRoleCodes = try c.decodeIfPresent([String].self, forKey: .nurseRoleCodes) ?? d.nurseRoleCodes
        criticalFlags = try c.decodeIfPresent([String].self, forKey: .criticalFlags) ?? d.criticalFlags
        messageTypes = try c.decodeIfPresent([String].self, forKey: .messageTypes) ?? d.messageTypes
        unknownWard = try c.decodeIfPresent(Unknown.self, forKey: .unknownWard) ?? d.unknownWard
        unknownStaff = try c.decodeIfPresent(Unknown.self, forKey: .unknownStaff) ?? d.unknownStaff
        unknownPatient = try c.decodeIfPresent(Unknown.self, forKey: .unknownPatient) ?? d.unknownPatient
        listenPort = try c.decodeIfPresent(Int.self, forKey: .listenPort)
    }

    /// Problems a person can fix, in the words of the form; empty when the settings are usable.
    public func problems() -> [String] {
        var out: [String] = []
        if !(1...9).contains(wardComponent) { out.append("wardComponent must be 1–9") }
        if bedComponents.isEmpty || bedComponents.contains(where: { !(1...9).contains($0) }) { out.append("bedComponents must be 1–9") }
        if bedComponents.contains(wardComponent) { out.append("the ward and bed components must differ") }
        for (from, to) in wardCodes where from.trimmingCharacters(in: .whitespaces).isEmpty || to.trimmingCharacters(in: .whitespaces).isEmpty {
            out.append("ward code '\(from)' → '\(to)' needs both codes")
        }
        if unknownWard == .create { out.append("unknownWard cannot be create: add wards under Organisation") }
        if let port = listenPort, !(1024...65535).contains(port) { out.append("listenPort must be 1024–65535") }
        let known: Set<String> = ["ADT", "ORM", "OML", "OMG", "RDE", "OMP", "ORU", "MDM"]
        for type in messageTypes where !known.contains(String(type.uppercased().prefix { $0 != "^" })) {
            out.append("message type '\(type)' is not one Rounds reads")
        }
        return out
    }

    /// The Rounds ward code for the sender's code.
    func wardCode(_ code: String) -> String {
        let upper = code.uppercased()
        return (wardCodes.first { $0.key.uppercased() == upper }?.value ?? code).uppercased()
    }

    func allows(type: String, trigger: String) -> Bool {
        guard !messageTypes.isEmpty else { return true }
        return messageTypes.contains { allowed in
            let a = allowed.uppercased()
            return a == type || a == "\(type)^\(trigger)"
        }
    }
}
