import FluentKit

/// Every migration of the store, in order. Later modules append their own after these.
public enum RoundsMigrations {
    public static var all: [any Migration] {
        [CreateOrganisation(), CreateStaff(), CreatePatients(), CreateAuditLog(), CreateWebSessions(), CreateIntegration(), SeedCriticalValueRules(), AddOutboxDelivery(), AddStaffContact(), HardenAuditLog(), AddStaffNotices(), AddHL7Submitter()]
    }
}
