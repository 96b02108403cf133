import FluentKit

/// The store's own migrations (outbox, files, audit log). The capabilities' follow, in the order
/// of `RoundsCapabilities.all`: the directory first, because the others refer to its tables.
public enum RoundsMigrations {
    public static var all: [any Migration] {
        [CreateOutbox(), AddOutboxDelivery(), CreateAuditLog(), HardenAuditLog()]
    }
}
