import Foundation
@testable import RoundsClinical
import RoundsCore
import Testing

/// The shipped instruments against the reference vectors in shared/samples/scales (copied into
/// Fixtures/scales), the scoring rules, and the checks on answers and on new definitions.
@Suite struct InstrumentTests {
    struct Vectors: Decodable {
        struct Band: Decodable { var band: String; var min: Int; var max: Int }
        struct Case: Decodable {
            var age: Int?
            var answers: [String: String]
            var total: Int
            var band: String
            var final_screening_required: Bool?
        }
        var instrument: String
        var items: [String: [String: Int]]
        var bands: [Band]
        var cases: [Case]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/scales")

    static func shipped(_ code: String) throws -> Instrument {
        try #require(try ShippedInstruments.all().first { $0.code == code })
    }

    @Test(arguments: ["morse", "braden", "nrs2002", "barthel"])
    func shippedInstrumentsMatchTheReferenceVectors(_ file: String) throws {
        let vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("\(file).json")))
        let instrument = try Self.shipped(vectors.instrument)
        try instrument.validate()
        // Same items, option keys and points; same bands.
        #expect(Dictionary(uniqueKeysWithValues: instrument.items.map { item in
            (item.key, Dictionary(uniqueKeysWithValues: item.options.map { ($0.key, $0.points) }))
        }) == vectors.items)
        #expect(instrument.bands.map { "\($0.key) \($0.min)-\($0.max)" } == vectors.bands.map { "\($0.band) \($0.min)-\($0.max)" })
        for (index, c) in vectors.cases.enumerated() {
            let score = try instrument.score(c.answers, age: c.age)
            #expect(score.total == c.total, "case \(index)")
            #expect(score.band.key == c.band, "case \(index)")
            if let required = c.final_screening_required {
                #expect(score.shownItems.contains("nutrition_status") == required, "case \(index)")
            }
        }
    }

    @Test func everyShippedInstrumentIsValidAndBilingual() throws {
        let all = try ShippedInstruments.all()
        #expect(Set(all.map(\.code)) == ["morse-fall-scale", "braden-scale", "nrs-2002", "barthel-index", "caprini-vte", "pain-nrs"])
        for instrument in all {
            try instrument.validate()
            #expect(instrument.items.allSatisfy { $0.label.en != nil && $0.options.allSatisfy { $0.label.en != nil } }, "\(instrument.code)")
        }
    }

    @Test func capriniAndPainEdgeCases() throws {
        let caprini = try Self.shipped("caprini-vte")
        #expect(try caprini.score(["age": "up_to_40"], age: nil).band.key == "very_low")
        #expect(try caprini.score(["age": "41_60", "minor_surgery": "yes"], age: nil).total == 2)
        let high = try caprini.score(["age": "75_plus", "hip_pelvis_leg_fracture": "yes", "malignancy": "yes"], age: nil)
        #expect(high.total == 10 && high.band.key == "high" && high.band.isHighRisk)
        #expect(try caprini.score(["age": "61_74", "history_of_vte": "no", "central_venous_access": "yes"], age: nil).band.key == "moderate")
        let pain = try Self.shipped("pain-nrs")
        #expect(try pain.score(["score": "0"], age: nil).band.key == "none")
        #expect(try pain.score(["score": "3"], age: nil).band.key == "mild")
        #expect(try pain.score(["score": "4"], age: nil).band.key == "moderate")
        #expect(try pain.score(["score": "10"], age: nil).band.reassessHours == 1)
    }

    @Test func nrs2002AgeCountsOnlyInTheFinalScreening() throws {
        let nrs = try Self.shipped("nrs-2002")
        let allNo = ["initial_bmi_below_20_5": "no", "initial_weight_loss_3_months": "no", "initial_reduced_intake_last_week": "no", "initial_severely_ill": "no"]
        // 85 years old but no initial "yes": no final screening, no age point.
        #expect(try nrs.score(allNo, age: 85).total == 0)
        // Answers to hidden final items are dropped, not scored.
        let dropped = try nrs.score(allNo.merging(["nutrition_status": "severe"]) { a, _ in a }, age: 85)
        #expect(dropped.total == 0 && dropped.answers["nutrition_status"] == nil)
        var yes = allNo
        yes["initial_severely_ill"] = "yes"
        // Final screening shown: its items are now required.
        #expect(throws: RoundsError.self) { try nrs.score(yes, age: 85) }
        #expect(try nrs.score(yes.merging(["nutrition_status": "absent", "disease_severity": "moderate"]) { a, _ in a }, age: 69).total == 2)
        #expect(try nrs.score(yes.merging(["nutrition_status": "absent", "disease_severity": "moderate"]) { a, _ in a }, age: 70).total == 3)
    }

    @Test func badAnswersNameTheItem() throws {
        let morse = try Self.shipped("morse-fall-scale")
        var answers = ["history_of_falling": "no", "secondary_diagnosis": "no", "ambulatory_aid": "none_bedrest_nurse", "iv_access": "no",
                       "gait": "weak"]
        do { _ = try morse.score(answers, age: nil); Issue.record("missing item accepted") } catch let e as RoundsError {
            #expect(e.status == 422 && e.detail == "answers.mental_status: required")
        }
        answers["mental_status"] = "confused"
        do { _ = try morse.score(answers, age: nil); Issue.record("unknown option accepted") } catch let e as RoundsError {
            #expect(e.status == 422 && e.detail?.hasPrefix("answers.mental_status: 'confused' is not an option") == true)
        }
        answers["mental_status"] = "oriented"
        answers["shoe_size"] = "42"
        do { _ = try morse.score(answers, age: nil); Issue.record("unknown item accepted") } catch let e as RoundsError {
            #expect(e.status == 422 && e.detail == "answers.shoe_size: not an item of morse-fall-scale")
        }
    }

    static func custom(rule: String = "max_of_group", bands: [Instrument.Band]? = nil, showIf: [Instrument.Answer]? = nil) -> Instrument {
        func option(_ key: String, _ points: Int) -> Instrument.Option { .init(key: key, label: .init(zh: key), points: points) }
        let grades = [option("none", 0), option("some", 1), option("much", 3)]
        return Instrument(
            code: "delirium-check", version: 1, title: .init(zh: "谵妄筛查", en: "Delirium check"), category: "other",
            items: [.init(key: "attention", label: .init(zh: "注意力"), required: true, group: "mind", showIf: nil, options: grades),
                    .init(key: "orientation", label: .init(zh: "定向力"), required: true, group: "mind", showIf: showIf, options: grades),
                    .init(key: "agitation", label: .init(zh: "躁动"), required: false, group: nil, showIf: nil, options: grades)],
            scoring: .init(rule: rule, ageAdjustment: nil),
            bands: bands ?? [.init(key: "low", min: 0, max: 2, label: .init(zh: "低"), severity: "low", reassessHours: 24, interventions: nil),
                             .init(key: "high", min: 3, max: 6, label: .init(zh: "高"), severity: "high", reassessHours: 8,
                                   interventions: [.init(title: .init(zh: "每4小时观察意识"), schedule: .init(kind: "every_hours", everyHours: 4), durationHours: 48)])],
            admissionWithinHours: nil, reassessAfterEvents: nil)
    }

    @Test func maxOfGroupCountsTheWorstOfAGroup() throws {
        let instrument = Self.custom()
        try instrument.validate()
        #expect(try instrument.score(["attention": "much", "orientation": "some"], age: nil).total == 3)
        #expect(try instrument.score(["attention": "some", "orientation": "some", "agitation": "much"], age: nil).total == 4)
        #expect(try Self.custom(rule: "sum").score(["attention": "much", "orientation": "some"], age: nil).total == 4)
    }

    @Test func definitionsAreCheckedBeforeTheyAreStored() throws {
        func detail(_ instrument: Instrument) -> String? {
            do { try instrument.validate(); return nil } catch let e as RoundsError { return e.detail } catch { return "\(error)" }
        }
        let gap = [Instrument.Band(key: "low", min: 0, max: 1, label: .init(zh: "低"), severity: "low", reassessHours: 24, interventions: nil),
                   Instrument.Band(key: "high", min: 3, max: 6, label: .init(zh: "高"), severity: "high", reassessHours: 8, interventions: nil)]
        #expect(detail(Self.custom(bands: gap)) == "bands.high: must start right after low")
        let short = [Instrument.Band(key: "all", min: 0, max: 3, label: .init(zh: "全"), severity: "low", reassessHours: 24, interventions: nil)]
        #expect(detail(Self.custom(bands: short)) == "bands: must cover every possible total 0…6")
        #expect(detail(Self.custom(showIf: [.init(item: "agitation", option: "much")]))?.hasPrefix("items[1].showIf") == true)
        var badCode = Self.custom()
        badCode.code = "Bad Code"
        #expect(detail(badCode)?.hasPrefix("code:") == true)
        var badSchedule = Self.custom()
        badSchedule.bands[1].interventions = [.init(title: .init(zh: "x"), schedule: .init(kind: "daily_at", times: ["25:00"]), durationHours: nil)]
        #expect(detail(badSchedule) == "bands.high: daily_at needs times like 08:00")
    }

    @Test func theFHIRQuestionnaireCarriesItemsConditionsAndPoints() throws {
        let nrs = try Self.shipped("nrs-2002").questionnaire()
        #expect(nrs.resourceType == "Questionnaire" && nrs.url == "urn:rounds:instrument:nrs-2002" && nrs.version == "1")
        let final = try #require(nrs.item.first { $0.linkId == "nutrition_status" })
        #expect(final.enableWhen?.count == 4 && final.enableBehavior == "any")
        #expect(final.answerOption?.last?.valueCoding.extension?.first?.valueDecimal == 3)
        #expect(nrs.item.last?.linkId == "band" && nrs.item.contains { $0.linkId == "total" && $0.readOnly == true })
    }
}
