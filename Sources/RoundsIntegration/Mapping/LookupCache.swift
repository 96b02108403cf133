import FluentKit
import Foundation
import NIOConcurrencyHelpers
import RoundsDirectory

/// The organisation as the mapping reads it for every message (hospitals, wards, beds, staff by
/// HIS id), kept for a few seconds instead of read per message: an edit in another process shows
/// within `lifetime`, one in this process at once (`invalidate`). Only what exists is cached: a
/// code that is not found is looked up again next time, so a ward added for a waiting message is
/// seen by its release.
public final class LookupCache: Sendable {
    struct Snapshot: Sendable {
        var hospitals: [HospitalRow]
        var loaded: ContinuousClock.Instant
    }
    struct HospitalRow: Sendable {
        var id: String
        var code: String
        var name: String
        var hl7Facility: String?
    }
    private let hospitals = NIOLockedValueBox<Snapshot?>(nil)
    /// "hospital id|CODE" → ward id; "ward id|label" → bed id; "hl7 id" → staff id.
    private let entries = NIOLockedValueBox<[String: (id: String, at: ContinuousClock.Instant)]>([:])
    let lifetime: Duration

    public init(lifetime: Duration = .seconds(5)) { self.lifetime = lifetime }

    public func invalidate() {
        hospitals.withLockedValue { $0 = nil }
        entries.withLockedValue { $0 = [:] }
    }

    private func hospitalRows(on db: any Database, fresh: Bool = false) async throws -> [HospitalRow] {
        let now = ContinuousClock.now
        if !fresh, let s = hospitals.withLockedValue({ $0 }), now - s.loaded < lifetime { return s.hospitals }
        let rows = try await Hospital.query(on: db).all().map { HospitalRow(id: $0.id!, code: $0.code, name: $0.name, hl7Facility: $0.hl7Facility) }
        hospitals.withLockedValue { $0 = Snapshot(hospitals: rows, loaded: now) }
        return rows
    }

    /// The hospital a facility name means (its HL7 facility, else its code; the only hospital when
    /// there is one). A miss reads the hospitals again before it is a miss: a facility just set
    /// by IT is seen at once.
    func hospital(facility names: [String], soleHospital: Bool, on db: any Database) async throws -> HospitalRow? {
        for fresh in [false, true] {
            let rows = try await hospitalRows(on: db, fresh: fresh)
            for name in names {
                if let m = rows.first(where: { $0.hl7Facility?.caseInsensitiveCompare(name) == .orderedSame })
                    ?? rows.first(where: { $0.code.caseInsensitiveCompare(name) == .orderedSame }) {
                    return m
                }
            }
            if soleHospital, rows.count == 1 { return rows[0] }
        }
        return nil
    }

    /// The id cached under `key`, or `load`'s answer (cached when there is one).
    func id(_ key: String, load: () async throws -> String?) async throws -> String? {
        let now = ContinuousClock.now
        if let hit = entries.withLockedValue({ $0[key] }), now - hit.at < lifetime { return hit.id }
        guard let id = try await load() else { return nil }
        entries.withLockedValue { entries in
            if entries.count > 50_000 { entries.removeAll(keepingCapacity: true) }
            entries[key] = (id, now)
        }
        return id
    }
}
