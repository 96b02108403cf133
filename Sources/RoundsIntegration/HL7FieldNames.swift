/// Standard names of the segments and fields Rounds reads, for the message viewer.
public enum HL7FieldNames {
    public static let segments: [String: String] = [
        "MSH": "Message Header", "EVN": "Event Type", "PID": "Patient Identification", "PV1": "Patient Visit",
        "PV2": "Patient Visit – Additional", "AL1": "Allergy Information", "ROL": "Role", "MRG": "Merge Patient Information",
        "ORC": "Common Order", "OBR": "Observation Request", "OBX": "Observation/Result", "NTE": "Notes and Comments",
        "RXO": "Pharmacy/Treatment Order", "RXE": "Pharmacy/Treatment Encoded Order", "TXA": "Transcription Document Header",
        "MSA": "Message Acknowledgment", "ERR": "Error", "NK1": "Next of Kin", "DG1": "Diagnosis", "IN1": "Insurance",
    ]

    static let fields: [String: [Int: String]] = [
        "MSH": [1: "Field Separator", 2: "Encoding Characters", 3: "Sending Application", 4: "Sending Facility",
                5: "Receiving Application", 6: "Receiving Facility", 7: "Date/Time of Message", 8: "Security", 9: "Message Type",
                10: "Message Control ID", 11: "Processing ID", 12: "Version ID", 15: "Accept Acknowledgment Type",
                16: "Application Acknowledgment Type", 17: "Country Code", 18: "Character Set"],
        "EVN": [1: "Event Type Code", 2: "Recorded Date/Time", 5: "Operator ID", 6: "Event Occurred"],
        "PID": [1: "Set ID", 2: "Patient ID (external)", 3: "Patient Identifier List", 5: "Patient Name", 6: "Mother's Maiden Name",
                7: "Date/Time of Birth", 8: "Administrative Sex", 10: "Race", 11: "Patient Address", 13: "Phone – Home",
                18: "Patient Account Number", 19: "SSN", 28: "Nationality", 29: "Death Date and Time", 30: "Death Indicator"],
        "PV1": [1: "Set ID", 2: "Patient Class", 3: "Assigned Patient Location", 4: "Admission Type", 6: "Prior Patient Location",
                7: "Attending Doctor", 8: "Referring Doctor", 9: "Consulting Doctor", 10: "Hospital Service", 14: "Admit Source",
                17: "Admitting Doctor", 18: "Patient Type", 19: "Visit Number", 36: "Discharge Disposition", 44: "Admit Date/Time",
                45: "Discharge Date/Time"],
        "PV2": [3: "Admit Reason", 8: "Expected Admit Date/Time", 9: "Expected Discharge Date/Time"],
        "AL1": [1: "Set ID", 2: "Allergen Type Code", 3: "Allergen Code/Description", 4: "Allergy Severity", 5: "Allergy Reaction"],
        "ROL": [1: "Role Instance ID", 2: "Action Code", 3: "Role", 4: "Role Person"],
        "MRG": [1: "Prior Patient Identifier List", 5: "Prior Visit Number", 7: "Prior Patient Name"],
        "ORC": [1: "Order Control", 2: "Placer Order Number", 3: "Filler Order Number", 5: "Order Status", 7: "Quantity/Timing",
                9: "Date/Time of Transaction", 10: "Entered By", 11: "Verified By", 12: "Ordering Provider", 13: "Enterer's Location"],
        "OBR": [1: "Set ID", 2: "Placer Order Number", 3: "Filler Order Number", 4: "Universal Service Identifier", 5: "Priority",
                7: "Observation Date/Time", 16: "Ordering Provider", 22: "Results Rpt/Status Chng", 24: "Diagnostic Serv Sect ID",
                25: "Result Status"],
        "OBX": [1: "Set ID", 2: "Value Type", 3: "Observation Identifier", 4: "Observation Sub-ID", 5: "Observation Value", 6: "Units",
                7: "References Range", 8: "Abnormal Flags", 11: "Observation Result Status", 14: "Date/Time of the Observation",
                16: "Responsible Observer"],
        "NTE": [1: "Set ID", 2: "Source of Comment", 3: "Comment"],
        "RXO": [1: "Requested Give Code", 2: "Requested Give Amount – Minimum", 3: "Requested Give Amount – Maximum",
                4: "Requested Give Units", 5: "Requested Dosage Form"],
        "RXE": [1: "Quantity/Timing", 2: "Give Code", 3: "Give Amount – Minimum", 5: "Give Units", 6: "Give Dosage Form"],
        "TXA": [1: "Set ID", 2: "Document Type", 3: "Document Content Presentation", 4: "Activity Date/Time", 5: "Primary Activity Provider",
                9: "Originator", 12: "Unique Document Number", 17: "Document Completion Status"],
        "MSA": [1: "Acknowledgment Code", 2: "Message Control ID", 3: "Text Message"],
        "ERR": [1: "Error Code and Location", 3: "HL7 Error Code", 4: "Severity", 8: "User Message"],
    ]

    public static func name(_ segment: String, _ field: Int) -> String {
        fields[segment]?[field] ?? ""
    }
}
