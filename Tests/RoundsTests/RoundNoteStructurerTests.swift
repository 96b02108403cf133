import Foundation
@testable import RoundsRoundNotes
import Testing

/// The rule-based structurer on dictated ward-round transcripts (as a recogniser writes them:
/// commas, few full stops, numbers in words), each with the sections a doctor would file.
@Suite struct RoundNoteStructurerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var transcript: String
        var complaint: String = ""
        var examination: String = ""
        var investigations: String = ""
        var diagnosis: String = ""
        var plan: String = ""
        var testDescription: String { String(transcript.prefix(24)) }
    }

    static let cases: [Case] = [
        Case(transcript: "患者今日诉咳嗽较前减轻，无发热，查体体温三十六度八，双肺呼吸音粗，右下肺可闻及少许湿啰音，辅助检查血常规白细胞十二点五，诊断社区获得性肺炎，计划继续头孢曲松抗感染，三天后复查血常规",
             complaint: "患者今日诉咳嗽较前减轻，无发热。", examination: "体温36.8℃，双肺呼吸音粗，右下肺可闻及少许湿啰音。",
             investigations: "血常规白细胞12.5×10⁹/L。", diagnosis: "社区获得性肺炎。", plan: "继续头孢曲松抗感染，3天后复查血常规。"),
        Case(transcript: "主诉：胸闷气短两天。查体：血压一百四十比九十毫米汞柱，心率八十八次每分，双下肢轻度水肿。诊断：慢性心力衰竭急性加重。计划：呋塞米二十毫克静推，记出入量。",
             complaint: "胸闷气短2天。", examination: "血压140/90mmHg，心率88次/分，双下肢轻度水肿。", diagnosis: "慢性心力衰竭急性加重。",
             plan: "呋塞米20毫克静推，记出入量。"),
        Case(transcript: "病情变化，患者夜间出现发热，最高体温三十八度五，伴寒战，查体神志清，咽部充血，辅助检查降钙素原零点八，考虑导管相关血流感染，处理：抽血培养，拔除中心静脉导管，予万古霉素一克每十二小时一次",
             complaint: "患者夜间出现发热，最高体温38.5℃，伴寒战。", examination: "神志清，咽部充血。", investigations: "降钙素原0.8ng/mL。",
             diagnosis: "考虑导管相关血流感染。", plan: "抽血培养，拔除中心静脉导管，予万古霉素1克每12小时1次。"),
        Case(transcript: "患者术后第二天，切口无渗出，诉切口疼痛可忍受，体温三十七度二，脉搏七十六次，血常规血红蛋白一百零五克每升，诊断肺癌术后，计划继续镇痛，明日拔除引流管",
             complaint: "患者术后第2天。", examination: "切口无渗出，诉切口疼痛可忍受，体温37.2℃，脉搏76次/分。", investigations: "血常规血红蛋白105g/L。",
             diagnosis: "肺癌术后。", plan: "继续镇痛，明日拔除引流管。"),
        Case(transcript: "一般情况可，饮食睡眠尚可，大小便正常。查体血氧饱和度百分之九十五，呼吸二十次每分。诊断慢性阻塞性肺疾病急性加重期。计划继续雾化吸入，低流量吸氧。",
             complaint: "一般情况可，饮食睡眠尚可，大小便正常。", examination: "血氧饱和度95%，呼吸20次/分。", diagnosis: "慢性阻塞性肺疾病急性加重期。",
             plan: "继续雾化吸入，低流量吸氧。"),
        Case(transcript: "患者诉乏力，纳差，辅助检查血钾六点九毫摩尔每升，肌酐三百二十微摩尔每升，诊断慢性肾脏病五期，高钾血症，计划予葡萄糖酸钙十毫升静推，胰岛素加葡萄糖静滴，急请肾内科会诊",
             complaint: "患者诉乏力，纳差。", investigations: "血钾6.9mmol/L，肌酐320μmol/L。", diagnosis: "慢性肾脏病5期，高钾血症。",
             plan: "予葡萄糖酸钙10毫升静推，胰岛素加葡萄糖静滴，急请肾内科会诊。"),
        Case(transcript: "今日情况：腹痛较前缓解，已排气。专科查体：腹软，右下腹轻压痛，无反跳痛。影像学检查：腹部CT示阑尾周围脓肿较前缩小。诊断：阑尾周围脓肿。治疗方案：继续抗感染，逐步恢复流质饮食。",
             complaint: "腹痛较前缓解，已排气。", examination: "腹软，右下腹轻压痛，无反跳痛。", investigations: "腹部CT示阑尾周围脓肿较前缩小。",
             diagnosis: "阑尾周围脓肿。", plan: "继续抗感染，逐步恢复流质饮食。"),
        Case(transcript: "患者无不适主诉，查体心律齐，各瓣膜听诊区未闻及杂音，心电图窦性心律，诊断冠心病稳定型心绞痛，计划明日出院，门诊随访",
             complaint: "患者无不适主诉。", examination: "心律齐，各瓣膜听诊区未闻及杂音。", investigations: "心电图窦性心律。",
             diagnosis: "冠心病稳定型心绞痛。", plan: "明日出院，门诊随访。"),
        Case(transcript: "化疗后第五天，患者诉恶心，食欲差，血常规白细胞一点八，血小板六十五，考虑骨髓抑制，予粒细胞集落刺激因子皮下注射，监测血常规",
             complaint: "化疗后第5天，患者诉恶心，食欲差。", investigations: "血常规白细胞1.8×10⁹/L，血小板65×10⁹/L。", diagnosis: "考虑骨髓抑制。",
             plan: "予粒细胞集落刺激因子皮下注射，监测血常规。"),
        Case(transcript: "患者血糖控制欠佳，空腹血糖十一点二，餐后血糖十六，诊断二型糖尿病，计划胰岛素加量两个单位，继续监测血糖",
             complaint: "患者血糖控制欠佳。", investigations: "空腹血糖11.2mmol/L，餐后血糖16mmol/L。", diagnosis: "2型糖尿病。",
             plan: "胰岛素加量两个单位，继续监测血糖。"),
        Case(transcript: "患者意识清楚，言语含糊较前好转，查体右侧肢体肌力四级，头颅核磁示左侧基底节区急性梗死，诊断脑梗死，计划继续抗血小板聚集，康复科会诊",
             complaint: "患者意识清楚，言语含糊较前好转。", examination: "右侧肢体肌力四级。", investigations: "头颅核磁示左侧基底节区急性梗死。",
             diagnosis: "脑梗死。", plan: "继续抗血小板聚集，康复科会诊。"),
        Case(transcript: "主诉无发热，咳痰减少。实验室检查C反应蛋白十五毫克每升，降钙素原零点零五。诊断肺炎好转。建议停用静脉抗生素，改为口服莫西沙星四百毫克每日一次。",
             complaint: "无发热，咳痰减少。", investigations: "C反应蛋白15mg/L，降钙素原0.05ng/mL。", diagnosis: "肺炎好转。",
             plan: "停用静脉抗生素，改为口服莫西沙星400毫克每日1次。"),
        Case(transcript: "患者诉头晕，血压一百六十/一百，心率七十二，诊断高血压三级很高危，计划加用氨氯地平五毫克每日一次",
             complaint: "患者诉头晕。", examination: "血压160/100mmHg，心率72次/分。", diagnosis: "高血压三级很高危。", plan: "加用氨氯地平5毫克每日1次。"),
        Case(transcript: "患者今晨呕血约二百毫升，查体血压九十比六十，心率一百一十次每分，血红蛋白七十八，诊断上消化道出血，处理：禁食，奥美拉唑静滴，急诊胃镜",
             complaint: "患者今晨呕血约200毫升。", examination: "血压90/60mmHg，心率110次/分。", investigations: "血红蛋白78g/L。", diagnosis: "上消化道出血。",
             plan: "禁食，奥美拉唑静滴，急诊胃镜。"),
        Case(transcript: "胸片提示右侧胸腔积液较前增多，查体右下肺呼吸音减低，诊断恶性胸腔积液，拟行胸腔穿刺置管引流",
             examination: "右下肺呼吸音减低。", investigations: "胸片提示右侧胸腔积液较前增多。", diagnosis: "恶性胸腔积液。", plan: "拟行胸腔穿刺置管引流。"),
        Case(transcript: "患者一般情况好，诉伤口疼痛减轻，伤口敷料干燥，体温三十六度五，诊断乳腺癌改良根治术后，计划换药，观察引流量",
             complaint: "患者一般情况好，诉伤口疼痛减轻。", examination: "伤口敷料干燥，体温36.5℃。", diagnosis: "乳腺癌改良根治术后。", plan: "换药，观察引流量。"),
        Case(transcript: "体格检查：T三十七度，P八十次每分，R十八次每分，BP一百二十比七十五。诊断：肺结节待查。计划：完善PET-CT检查。",
             examination: "T37℃，P80次/分，R18次/分，BP120/75mmHg。", diagnosis: "肺结节待查。", plan: "完善PET-CT检查。"),
        Case(transcript: "患者自诉睡眠差，焦虑，查体未见明显异常，诊断焦虑状态，计划请心理科会诊，必要时予阿普唑仑零点四毫克睡前口服",
             complaint: "患者自诉睡眠差，焦虑。", examination: "未见明显异常。", diagnosis: "焦虑状态。", plan: "请心理科会诊，必要时予阿普唑仑0.4毫克睡前口服。"),
        Case(transcript: "Patient reports less cough today, no fever. Examination: temperature 37.1 degrees, pulse 84, lungs with mild crackles. Potassium 3.2. Diagnosis: community acquired pneumonia. Plan: continue amoxicillin 500 mg three times a day.",
             complaint: "Patient reports less cough today, no fever.", examination: "Temperature 37.1 ℃, pulse 84/min, lungs with mild crackles.",
             investigations: "Potassium 3.2 mmol/L.", diagnosis: "Community acquired pneumonia.", plan: "Continue amoxicillin 500 mg three times a day."),
        Case(transcript: "病情：黄疸较前消退，皮肤瘙痒减轻。检验结果：总胆红素较前下降，白蛋白三十二克每升。诊断：胆总管结石术后。医嘱：继续保肝治疗，明天复查肝功能。",
             complaint: "黄疸较前消退，皮肤瘙痒减轻。", investigations: "总胆红素较前下降，白蛋白32g/L。", diagnosis: "胆总管结石术后。", plan: "继续保肝治疗，明天复查肝功能。"),
        Case(transcript: "患者诉气促明显，不能平卧，查体血氧八十九，双肺满布湿啰音，诊断急性左心衰，予呋塞米四十毫克静推，吗啡三毫克皮下注射，高流量吸氧",
             complaint: "患者诉气促明显，不能平卧。", examination: "血氧89%，双肺满布湿啰音。", diagnosis: "急性左心衰。",
             plan: "予呋塞米40毫克静推，吗啡3毫克皮下注射，高流量吸氧。"),
        Case(transcript: "患者病情稳定，血钠一百二十八，考虑抗利尿激素分泌失调综合征，计划限制入水量，复查电解质",
             complaint: "患者病情稳定。", investigations: "血钠128mmol/L。", diagnosis: "考虑抗利尿激素分泌失调综合征。", plan: "限制入水量，复查电解质。"),
    ]

    @Test(arguments: cases)
    func dictationIsFiledInTheSectionsADoctorWouldUse(_ c: Case) {
        let s = RuleStructurer().structure(c.transcript).sections
        #expect(s.complaint == c.complaint, "complaint")
        #expect(s.examination == c.examination, "examination")
        #expect(s.investigations == c.investigations, "investigations")
        #expect(s.diagnosis == c.diagnosis, "diagnosis")
        #expect(s.plan == c.plan, "plan")
    }

    @Test func spokenNumbersAreReadAsDoctorsSayThem() {
        let cases: [(String, Double?)] = [("三十八点五", 38.5), ("一百二", 120), ("一百二十", 120), ("一百零五", 105), ("两千", 2000), ("十五", 15),
                                         ("六点九", 6.9), ("零点零五", 0.05), ("三千五", 3500), ("一百四", 140), ("九十五", 95), ("38.5", 38.5),
                                         ("一万二", 12000), ("二三十", nil), ("点五", nil), ("百", nil), ("", nil)]
        for (text, value) in cases { #expect(ChineseNumerals.value(text) == value, "\(text)") }
    }

    @Test func valuesAreFoundWithTheirUnits() {
        let result = RuleStructurer().structure("体温三十八度五，血压一百三十比八十，血钾六点九，血氧饱和度百分之九十二")
        #expect(result.findings.map { "\($0.name) \($0.value) \($0.unit)" } == ["体温 38.5 ℃", "血压 130/80 mmHg", "血钾 6.9 mmol/L", "血氧饱和度 92 %"])
        #expect(result.findings.map(\.section) == [.examination, .examination, .investigations, .investigations])
        #expect(RuleStructurer().structure("Potassium is 6.9, temperature was 38.2 degrees.").findings.map { "\($0.name) \($0.value) \($0.unit)" }
                == ["Potassium 6.9 mmol/L", "temperature 38.2 ℃"])
        // What only looks like a vital sign stays as written: a stage, a gene, a resection, a vitamin.
        for text in ["分期T2N1M0", "p53阳性", "R0切除", "维生素K1 10mg口服"] {
            let r = RuleStructurer().structure(text)
            #expect(r.findings.isEmpty && NoteSection.allCases.map { r.sections[$0] }.joined() == text + "。", "\(text) → \(r.sections)")
        }
        // Words that look like numbers stay words.
        #expect(RuleStructurer().structure("一般情况可，一过性头晕").sections.complaint == "一般情况可，一过性头晕。")
    }
}
