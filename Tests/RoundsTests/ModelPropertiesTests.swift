import FluentKit
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsDirectory
import RoundsIntegration
import RoundsMDT
import RoundsRoundNotes
import RoundsTables
import RoundsStore
import Testing

/// The hand-listed `properties` of every model (scripts/gen-model-properties) name exactly the
/// fields that reflection finds, in the same order: a field missing from a list would silently
/// not be stored or loaded.
@Suite struct ModelPropertiesTests {
    static let models: [any Model.Type] = RoundsStoreModels.all + RoundsDirectoryModels.all + RoundsIntegrationModels.all + RoundsTablesModels.all + RoundsAlertsModels.all + RoundsChatModels.all + RoundsClinicalModels.all + RoundsRoundNotesModels.all + RoundsMDTModels.all

    static func reflectedKeys(_ model: any Model) -> [[FieldKey]] {
        Mirror(reflecting: model).children.compactMap { ($0.value as? any AnyDatabaseProperty)?.keys }
    }

    @Test func everyModelIsListed() {
        #expect(Self.models.count >= 41)
    }

    @Test(arguments: ModelPropertiesTests.models.map { String(describing: $0) })
    func listedPropertiesMatchReflection(_ name: String) throws {
        let type = try #require(Self.models.first { String(describing: $0) == name })
        let model = type.init()
        let listed = model.properties.compactMap { ($0 as? any AnyDatabaseProperty)?.keys }
        #expect(listed == Self.reflectedKeys(model), "\(name): run scripts/gen-model-properties")
        #expect(model.properties.count == Mirror(reflecting: model).children.filter { $0.value is any AnyProperty }.count)
    }
}
