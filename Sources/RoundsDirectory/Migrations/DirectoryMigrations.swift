import FluentKit

/// The directory's tables: organisation, staff and roles, tokens, patients and stays, sessions.
public enum DirectoryMigrations {
    public static var all: [any Migration] {
        [CreateOrganisation(), CreateStaff(), CreatePatients(), CreateWebSessions(), AddStaffContact(), AddStaffNotices()]
    }
}
