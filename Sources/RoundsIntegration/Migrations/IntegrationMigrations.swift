import FluentKit

/// The integration engine's tables: HL7 messages, orders, results, reports, the critical-value
/// rules, the outbound queue (after the directory's, whose tables they refer to).
public enum IntegrationMigrations {
    public static var all: [any Migration] {
        [CreateIntegration(), SeedCriticalValueRules(), AddHL7Submitter(), AddMessageDetails(), CreateHL7Channels(), CreateHL7OutboundChannels()]
    }
}
