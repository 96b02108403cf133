import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// A believable hospital group to try Rounds with: two hospitals, oncology wards and an ICU,
/// 52 beds, 24 staff with Chinese names, and admitted patients. Running it twice is harmless.
public struct DemoSeed: Sendable {
    public static let password = "rounds-demo"

    public struct Login: Sendable, Equatable {
        public var username: String
        public var displayName: String
        public var what: String
    }

    /// The logins printed by `rounds serve --demo`.
    public static let logins: [Login] = [
        Login(username: "admin", displayName: "系统管理员", what: "group administrator"),
        Login(username: "wang.fang", displayName: "王芳", what: "nurse, 肺癌中心"),
        Login(username: "li.ming", displayName: "李明", what: "doctor, 肺癌中心"),
        Login(username: "zhang.li", displayName: "张丽", what: "head nurse, 肺癌中心"),
        Login(username: "zhu.lin", displayName: "朱琳", what: "quality control, 总院"),
        Login(username: "hu.bin", displayName: "胡斌", what: "IT, 总院 (HL7 message store)"),
        Login(username: "qian.li", displayName: "钱莉", what: "laboratory, 检验科 (reports critical values)"),
    ]

    /// The name of demo patient n (MRN2000n), as family and given name: the feed simulator
    /// sends the same names in its messages.
    public static func patientName(_ n: Int) -> (family: String, given: String) {
        let families = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗"]
        // Even n are women, odd n men (as the seed records their sex): names to match.
        let women = ["秀英", "桂兰", "玉梅", "海燕", "淑珍", "丽华", "凤英", "红梅"]
        let men = ["志强", "德明", "建华", "国庆", "永刚", "春生", "振华", "宝山"]
        let givens = n % 2 == 0 ? women : men
        return (families[n % families.count], givens[(n / 2 * 3) % givens.count])
    }

    let clock: any RoundsClock
    let ids: IDGenerator
    let hasher: any PasswordHashing

    public init(clock: any RoundsClock, ids: IDGenerator, hasher: any PasswordHashing) {
        self.clock = clock
        self.ids = ids
        self.hasher = hasher
    }

    /// Returns false when the database already holds an organisation (nothing is changed).
    @discardableResult
    public func run(on db: any Database) async throws -> Bool {
        if try await HospitalGroup.query(on: db).count() > 0 { return false }
        let now = clock.now()
        // Everyone shares the demo password: hash it once, not 24 times.
        let passwordHash = try await hasher.hash(Self.password)
        try await db.transaction { tx in
            let group = HospitalGroup(id: ids.next(), name: "华康医疗集团", createdAt: now)
            try await group.create(on: tx)
            let main = Hospital(id: ids.next(), groupID: group.id!, code: "HK01", name: "华康医院（总院）", createdAt: now)
            main.hl7Facility = "ARION"  // what the demo HIS and the sample messages call it
            let east = Hospital(id: ids.next(), groupID: group.id!, code: "HK02", name: "华康医院东院", createdAt: now)
            try await main.create(on: tx)
            try await east.create(on: tx)

            func department(_ hospital: Hospital, _ code: String, _ name: String, _ kind: DepartmentKind,
                            parent: Department? = nil, beds: Int = 0) async throws -> Department {
                let d = Department(id: ids.next(), hospitalID: hospital.id!, parentID: parent?.id, code: code,
                                   name: name, kind: kind, createdAt: now)
                try await d.create(on: tx)
                for n in stride(from: 1, through: beds, by: 1) {
                    try await Bed(id: ids.next(), wardID: d.id!, label: "\(n)", sortOrder: n).create(on: tx)
                }
                return d
            }
            let oncology = try await department(main, "ONC", "肿瘤内科", .department)
            let lung = try await department(main, "LUNG", "肺癌中心", .ward, parent: oncology, beds: 12)
            let breast = try await department(main, "BREAST", "乳腺癌中心", .ward, parent: oncology, beds: 10)
            let gi = try await department(main, "GI", "胃肠肿瘤中心", .ward, parent: oncology, beds: 10)
            let icu = try await department(main, "ICU", "重症医学科 ICU", .ward, beds: 8)
            let medicalAffairs = try await department(main, "YWC", "医务处", .department)
            let quality = try await department(main, "ZKB", "质控办", .department)
            let it = try await department(main, "XXK", "信息科", .department)
            let lab = try await department(main, "JYK", "检验科", .department)
            let cardio = try await department(east, "CARD", "心内科病区", .ward, beds: 8)
            let emergency = try await department(east, "EDOBS", "急诊观察室", .ward, beds: 4)
            let eastOffice = try await department(east, "YZB", "院长办公室", .department)

            var staffByName: [String: Staff] = [:]
            func person(_ username: String, _ name: String, _ roles: [(Department, Role)], superuser: Bool = false,
                        hl7: String? = nil) async throws {
                let s = Staff(id: ids.next(), username: username, displayName: name, employeeNo: hl7,
                              passwordHash: passwordHash, isSuperuser: superuser, createdAt: now)
                s.hl7ID = hl7
                // Made-up contact details (reserved example domain, 1380000xxxx numbers) for the connectors.
                s.mobile = String(format: "1380000%04d", staffByName.count + 1)
                s.email = "\(username)@huakang.example"
                try await s.create(on: tx)
                for (d, role) in roles {
                    try await StaffRole(id: ids.next(), staffID: s.id!, departmentID: d.id!, hospitalID: d.hospitalID, role: role).create(on: tx)
                }
                staffByName[username] = s
            }
            try await person("admin", "系统管理员", [], superuser: true)
            try await person("li.ming", "李明", [(lung, .doctor)], hl7: "D001")
            try await person("chen.jing", "陈静", [(lung, .doctor)], hl7: "D021")
            try await person("zhang.li", "张丽", [(lung, .headNurse)], hl7: "N007")
            try await person("wang.fang", "王芳", [(lung, .nurse)], hl7: "N012")
            try await person("liu.yang", "刘洋", [(lung, .nurse)], hl7: "N013")
            try await person("zhao.min", "赵敏", [(breast, .doctor)], hl7: "D002")
            try await person("sun.lin", "孙琳", [(breast, .headNurse)], hl7: "N020")
            try await person("zhou.ting", "周婷", [(breast, .nurse)], hl7: "N021")
            try await person("wu.qiang", "吴强", [(gi, .doctor)], hl7: "D003")
            try await person("zheng.hong", "郑红", [(gi, .headNurse)], hl7: "N030")
            try await person("feng.xue", "冯雪", [(gi, .nurse)], hl7: "N031")
            try await person("he.wei", "何伟", [(icu, .doctor)], hl7: "D008")
            try await person("xu.jing", "许静", [(icu, .headNurse)], hl7: "N040")
            try await person("han.mei", "韩梅", [(icu, .nurse)], hl7: "N041")
            try await person("zhao.qiang", "赵强", [(icu, .doctor)], hl7: "D009")
            try await person("yang.guang", "杨光", [(oncology, .consultant)], hl7: "D010")
            try await person("ma.jun", "马军", [(medicalAffairs, .medicalAffairs)])
            try await person("zhu.lin", "朱琳", [(quality, .qualityControl)])
            try await person("hu.bin", "胡斌", [(it, .it)])
            try await person("qian.li", "钱莉", [(lab, .laboratory)])
            try await person("gao.feng", "高峰", [(cardio, .doctor), (emergency, .doctor)], hl7: "E001")
            try await person("lin.xiao", "林晓", [(cardio, .nurse)], hl7: "E101")
            try await person("luo.jie", "罗杰", [(eastOffice, .administrator)])

            // Patients: (ward, doctor, nurse, how many). Beds from 1 upwards; LUNG bed 12 stays
            // free for the sample HL7 admission of 王建国.
            let allergies = [nil, nil, "青霉素", nil, "磺胺类", nil, nil, "头孢类"]
            var n = 0
            for (ward, doctor, nurse, count) in [(lung, "li.ming", "wang.fang", 8), (breast, "zhao.min", "zhou.ting", 6),
                                                 (gi, "wu.qiang", "feng.xue", 6), (icu, "he.wei", "han.mei", 4),
                                                 (cardio, "gao.feng", "lin.xiao", 4)] {
                let beds = try await Bed.query(on: tx).filter(\.$wardID == ward.id!).sort(\.$sortOrder).all()
                for i in 0..<count {
                    n += 1
                    let birthYear = 1940 + (n * 7) % 50
                    let patient = Patient(id: ids.next(), hospitalID: ward.hospitalID, mrn: String(format: "MRN2%04d", n),
                                          name: Self.patientName(n).family + Self.patientName(n).given,
                                          gender: n % 2 == 0 ? .female : .male,
                                          birthDate: String(format: "%04d-%02d-%02d", birthYear, 1 + n % 12, 1 + (n * 5) % 28),
                                          allergies: allergies[n % allergies.count], createdAt: now)
                    try await patient.create(on: tx)
                    try await Encounter(id: ids.next(), patientID: patient.id!, hospitalID: ward.hospitalID,
                                        visitNumber: String(format: "V2026%05d", n), wardID: ward.id!, bedID: beds[i].id,
                                        attendingID: staffByName[doctor]?.id, nurseID: staffByName[nurse]?.id,
                                        admittedAt: now.addingTimeInterval(-Double(n) * 9_000)).create(on: tx)
                }
            }
            try await AuditLog(clock: clock, ids: ids).record(
                "demo.seed", entityType: "hospital_group", entityID: group.id, detail: "demo organisation created",
                actorKind: "system", actorID: nil, actorName: "rounds serve --demo", clientAddress: nil, on: tx)
        }
        return true
    }
}
