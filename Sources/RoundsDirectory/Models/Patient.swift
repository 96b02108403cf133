import FluentKit
import Foundation
import RoundsCore

public final class Patient: Model, @unchecked Sendable {
    public static let schema = "patients"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "hospital_id") public var hospitalID: String
    /// Medical record number, unique within a hospital.
    @Field(key: "mrn") public var mrn: String
    @Field(key: "name") public var name: String
    @Enum(key: "gender") public var gender: Gender
    /// yyyy-MM-dd; a date without a time zone.
    @OptionalField(key: "birth_date") public var birthDate: String?
    @OptionalField(key: "allergies") public var allergies: String?
    @Field(key: "created_at") public var createdAt: Date
    /// Set when the HIS merged this record into another (ADT^A40); the survivor's id.
    @OptionalField(key: "merged_into") public var mergedInto: String?

    public init() {}
    public init(id: String, hospitalID: String, mrn: String, name: String, gender: Gender,
                birthDate: String?, allergies: String? = nil, createdAt: Date) {
        self.id = id; self.hospitalID = hospitalID; self.mrn = mrn; self.name = name
        self.gender = gender; self.birthDate = birthDate; self.allergies = allergies; self.createdAt = createdAt
    }
}

/// One stay: where the patient lies and who is responsible.
public final class Encounter: Model, @unchecked Sendable {
    public static let schema = "encounters"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "hospital_id") public var hospitalID: String
    @OptionalField(key: "visit_number") public var visitNumber: String?
    @Field(key: "ward_id") public var wardID: String
    @OptionalField(key: "bed_id") public var bedID: String?
    @OptionalField(key: "attending_id") public var attendingID: String?
    @OptionalField(key: "nurse_id") public var nurseID: String?
    @Enum(key: "status") public var status: EncounterStatus
    @Field(key: "admitted_at") public var admittedAt: Date
    @OptionalField(key: "discharged_at") public var dischargedAt: Date?

    public init() {}
    public init(id: String, patientID: String, hospitalID: String, visitNumber: String?, wardID: String,
                bedID: String?, attendingID: String?, nurseID: String?, admittedAt: Date) {
        self.id = id; self.patientID = patientID; self.hospitalID = hospitalID; self.visitNumber = visitNumber
        self.wardID = wardID; self.bedID = bedID; self.attendingID = attendingID; self.nurseID = nurseID
        self.status = .active; self.admittedAt = admittedAt; self.dischargedAt = nil
    }
}
