import Foundation
import RoundsDemo
import RoundsHL7
import RoundsStore

/// A believable HIS/LIS/pathology feed for the demo hospital (facility ARION): admissions to
/// free beds, transfers to the ICU, medication orders and changes, lab results (some critical),
/// pathology reports with a PDF, and discharges. Used by `rounds simulate`, `serve --demo`, the
/// kill test and the benchmarks. It keeps its own census, so the messages are consistent with
/// each other and with the demo seed (it only admits to beds the seed leaves free).
public struct FeedSimulator: Sendable {
    struct Place: Sendable, Hashable {
        var ward: String
        var bed: String
    }

    struct Inpatient: Sendable {
        var mrn: String
        var family: String
        var given: String
        var sex: String
        var birth: String
        var visit: String
        var place: Place
        var doctor: (id: String, family: String, given: String)
        var nurse: (id: String, family: String, given: String)
        var orders: [String] = []
        /// Only the simulator's own admissions are transferred and discharged; demo patients stay.
        var ownAdmission: Bool
    }

    static let facility = "ARION"
    static let team: [String: (doctor: (String, String, String), nurse: (String, String, String))] = [
        "LUNG": (("D001", "李", "明"), ("N012", "王", "芳")),
        "BREAST": (("D002", "赵", "敏"), ("N021", "周", "婷")),
        "GI": (("D003", "吴", "强"), ("N031", "冯", "雪")),
        "ICU": (("D009", "赵", "强"), ("N041", "韩", "梅")),
    ]
    /// Beds the demo seed leaves empty (LUNG 12 is kept for the sample admission).
    static let freeBeds: [Place] = (9...11).map { Place(ward: "LUNG", bed: "\($0)") }
        + (7...10).map { Place(ward: "BREAST", bed: "\($0)") }
        + (7...10).map { Place(ward: "GI", bed: "\($0)") }
        + (5...8).map { Place(ward: "ICU", bed: "\($0)") }

    static let families = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭"]
    static let womensNames = ["秀兰", "海燕", "玉兰", "丽娟", "春梅", "淑芬"]
    static let mensNames = ["建国", "志明", "国强", "晓东", "文华", "德胜"]
    static let drugs: [(code: String, name: String, dose: String, unit: String)] = [
        ("CISPLATIN", "顺铂", "75", "mg/m2"), ("PACLITAXEL", "紫杉醇", "175", "mg/m2"), ("ONDANSETRON", "昂丹司琼", "8", "mg"),
        ("CEFTRIAXONE", "头孢曲松", "2", "g"), ("ENOXAPARIN", "依诺肝素", "40", "mg"), ("MORPHINE", "吗啡", "5", "mg"),
    ]
    /// (LOINC, name, unit, reference range, normal low/high, critical low/high)
    static let labs: [(code: String, name: String, unit: String, range: String, low: Double, high: Double, critLow: Double, critHigh: Double)] = [
        // The names a Chinese LIS sends in OBX-3.2.
        ("2823-3", "血钾", "mmol/L", "3.5-5.3", 3.5, 5.3, 2.8, 6.2),
        ("2951-2", "血钠", "mmol/L", "137-147", 137, 147, 120, 160),
        ("718-7", "血红蛋白", "g/L", "115-150", 115, 150, 50, 200),
        ("777-3", "血小板", "10*9/L", "125-350", 125, 350, 20, 1000),
        ("2345-7", "血糖", "mmol/L", "3.9-6.1", 3.9, 6.1, 2.2, 25),
    ]

    private var random: SplitMix64
    private var inpatients: [Inpatient] = []
    private var free: [Place]
    private var sequence = 0
    private let runTag: String
    /// The run's tag as five digits, for MRNs.
    private var mrnTag: String {
        let digits = runTag.allSatisfy(\.isNumber) ? Int(runTag) ?? 0 : runTag.unicodeScalars.reduce(0) { ($0 * 31 + Int($1.value)) % 100_000 }
        return String(format: "%05d", digits % 100_000)
    }
    private var nextOrder = 1

    /// - Parameter seed: the same seed gives the same feed (tests); `runTag` keeps control ids
    ///   and new MRNs apart between runs against one database.
    public init(seed: UInt64, runTag: String) {
        random = SplitMix64(seed: seed)
        self.runTag = runTag
        free = Self.freeBeds
        // The demo seed's patients on the main hospital's wards (MRN20001…MRN20024).
        var n = 0
        for (ward, count) in [("LUNG", 8), ("BREAST", 6), ("GI", 6), ("ICU", 4)] {
            let team = Self.team[ward]!
            for bed in 1...count {
                n += 1
                let name = DemoSeed.patientName(n)
                inpatients.append(Inpatient(
                    mrn: String(format: "MRN2%04d", n), family: name.family, given: name.given, sex: n % 2 == 0 ? "F" : "M", birth: "",
                    visit: String(format: "V2026%05d", n), place: Place(ward: ward, bed: "\(bed)"),
                    doctor: team.doctor, nurse: team.nurse, ownAdmission: false))
            }
        }
    }

    /// The next message of the feed, as HL7 text (segments separated by CR).
    public mutating func next(at date: Date) -> String {
        sequence += 1
        let roll = random.unit()
        let own = inpatients.indices.filter { inpatients[$0].ownAdmission }
        if roll < 0.14, !free.isEmpty { return admit(at: date) }
        if roll < 0.22, !own.isEmpty { return discharge(own[random.below(own.count)], at: date) }
        if roll < 0.26, let i = own.randomElement(using: &random), inpatients[i].place.ward != "ICU",
           let icu = free.firstIndex(where: { $0.ward == "ICU" }) {
            return transfer(i, to: free.remove(at: icu), at: date)
        }
        let i = random.below(inpatients.count)
        if roll < 0.50 { return order(i, at: date) }
        if roll < 0.95 { return results(i, at: date) }
        return pathology(i, at: date)
    }

    // MARK: Messages

    private var controlID: String { "SIM\(runTag)\(String(format: "%07d", sequence))" }

    private func header(_ app: String, _ type: String, _ structure: String, at date: Date, version: String = "2.5") -> String {
        "MSH|^~\\&|\(app)|\(Self.facility)|ROUNDS|\(Self.facility)|\(HL7Builder.timestamp(date))||\(type)^\(structure)|\(controlID)|P|\(version)|||AL|NE||UNICODE UTF-8"
    }

    private func pid(_ p: Inpatient) -> String {
        let name = p.family.isEmpty ? "" : "\(p.family)^\(p.given)"
        return "PID|1||\(p.mrn)^^^\(Self.facility)^MR||\(name)||\(p.birth)|\(p.sex)"
    }

    private func pv1(_ p: Inpatient, prior: Place? = nil) -> String {
        let d = p.doctor
        let priorText = prior.map { "\($0.ward)^\($0.bed)^1^\(Self.facility)" } ?? ""
        return "PV1|1|I|\(p.place.ward)^\(p.place.bed)^1^\(Self.facility)|||\(priorText)|\(d.id)^\(d.family)^\(d.given)|||ONC||||1|||\(d.id)^\(d.family)^\(d.given)|IP|\(p.visit)"
    }

    private func rol(_ p: Inpatient) -> String {
        "ROL|1|AD|RT^Responsible Nurse|\(p.nurse.id)^\(p.nurse.family)^\(p.nurse.given)"
    }

    private mutating func admit(at date: Date) -> String {
        let place = free.remove(at: random.below(free.count))
        let team = Self.team[place.ward]!
        let number = String(format: "%06d", sequence)
        let year = 1940 + random.below(60)
        let sex = random.below(2) == 0 ? "M" : "F"
        let names = sex == "M" ? Self.mensNames : Self.womensNames
        // The hospital's one MRN style (MRN + digits): 3, the run's tag, the sequence.
        let p = Inpatient(mrn: "MRN3\(mrnTag)\(number)", family: Self.families[random.below(Self.families.count)],
                          given: names[random.below(names.count)], sex: sex,
                          birth: String(format: "%04d%02d%02d", year, 1 + random.below(12), 1 + random.below(28)),
                          visit: "V\(runTag)\(number)", place: place, doctor: team.doctor, nurse: team.nurse, ownAdmission: true)
        inpatients.append(p)
        return [header("HIS", "ADT^A01", "ADT_A01", at: date), "EVN|A01|\(HL7Builder.timestamp(date))", pid(p), pv1(p), rol(p)]
            .joined(separator: "\r")
    }

    private mutating func discharge(_ i: Int, at date: Date) -> String {
        let p = inpatients.remove(at: i)
        free.append(p.place)
        return [header("HIS", "ADT^A03", "ADT_A03", at: date), "EVN|A03|\(HL7Builder.timestamp(date))", pid(p),
                pv1(p) + String(repeating: "|", count: 26) + HL7Builder.timestamp(date)].joined(separator: "\r")
    }

    private mutating func transfer(_ i: Int, to place: Place, at date: Date) -> String {
        let prior = inpatients[i].place
        free.append(prior)
        inpatients[i].place = place
        let team = Self.team[place.ward]!
        inpatients[i].doctor = team.doctor
        inpatients[i].nurse = team.nurse
        let p = inpatients[i]
        return [header("HIS", "ADT^A02", "ADT_A02", at: date), "EVN|A02|\(HL7Builder.timestamp(date))", pid(p), pv1(p, prior: prior), rol(p)]
            .joined(separator: "\r")
    }

    private mutating func order(_ i: Int, at date: Date) -> String {
        var p = inpatients[i]
        let drug = Self.drugs[random.below(Self.drugs.count)]
        let control: String, placer: String
        if let existing = p.orders.first, random.below(3) == 0 {
            control = random.below(2) == 0 ? "XO" : "DC"
            placer = existing
            if control == "DC" { p.orders.removeFirst() }
        } else {
            control = "NW"
            placer = "SIM\(runTag)O\(nextOrder)"
            nextOrder += 1
            p.orders.append(placer)
        }
        inpatients[i] = p
        let d = p.doctor, n = p.nurse
        let ts = HL7Builder.timestamp(date)
        return [header("HIS", "ORM^O01", "ORM_O01", at: date, version: "2.4"), pid(p), pv1(p),
                "ORC|\(control)|\(placer)^HIS|||||^Q8H^^\(ts)||\(ts)|\(n.id)^\(n.family)^\(n.given)||\(d.id)^\(d.family)^\(d.given)",
                "RXO|\(drug.code)^\(drug.name)^LOCAL|\(drug.dose)||\(drug.unit)"].joined(separator: "\r")
    }

    private mutating func results(_ i: Int, at date: Date) -> String {
        let p = inpatients[i]
        let d = p.doctor
        let ts = HL7Builder.timestamp(date)
        var segments = [header("LIS", "ORU^R01", "ORU_R01", at: date, version: "2.5.1"), pid(p), pv1(p),
                        "OBR|1|SIM\(runTag)L\(sequence)^HIS|LAB\(runTag)\(sequence)^LIS|PANEL^Chemistry panel^L|||\(ts)|||||||||\(d.id)^\(d.family)^\(d.given)||||||\(ts)|||F"]
        let critical = random.unit() < 0.05
        for (n, lab) in Self.labs.shuffled(using: &random).prefix(1 + random.below(3)).enumerated() {
            var value = lab.low + (lab.high - lab.low) * random.unit() * 1.2
            var flag = value > lab.high ? "H" : "N"
            if critical && n == 0 {
                value = random.below(2) == 0 ? lab.critHigh * 1.1 : lab.critLow * 0.9
                flag = value > lab.high ? "HH" : "LL"
            }
            segments.append("OBX|\(n + 1)|NM|\(lab.code)^\(lab.name)^LN||\(String(format: "%.1f", value))|\(lab.unit)|\(lab.range)|\(flag)|||F|||\(ts)")
        }
        return segments.joined(separator: "\r")
    }

    private func pathology(_ i: Int, at date: Date) -> String {
        let p = inpatients[i]
        let ts = HL7Builder.timestamp(date)
        return [header("PATH", "MDM^T02", "MDM_T02", at: date), "EVN|T02|\(ts)", pid(p), pv1(p),
                "TXA|1|PN^Pathology report|AP|\(ts)|D021^陈^静|||||||DOC\(runTag)\(sequence)||||||AU",
                "OBX|1|TX|22634-0^病理报告^LN||穿刺活检：慢性炎症，未见恶性肿瘤细胞。~Biopsy: chronic inflammation, no malignancy.||||||F",
                "OBX|2|ED|PDF^Report PDF||^application^pdf^Base64^\(Self.samplePDF)|||"].joined(separator: "\r")
    }

    /// A minimal valid PDF, base64.
    static let samplePDF = "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZy9QYWdlcyAyIDAgUj4+ZW5kb2JqIDIgMCBvYmo8PC9UeXBlL1BhZ2VzL0tpZHNbXS9Db3VudCAwPj5lbmRvYmoKdHJhaWxlcjw8L1Jvb3QgMSAwIFI+PgolJUVPRgo="
}

/// A small, fast, seedable random generator (SplitMix64), so a feed can be replayed exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}
