import Foundation
import Profiles
import XCTest

/// `forEachLayer` / `firstLayer(where:)` answer the planner's per-plan questions without listing
/// every layer: they must visit exactly `allLayers`, in its order, and stop where asked.
final class ProfileLayerVisitTests: XCTestCase {
    func bundledProfiles() throws -> [Profile] {
        let folder = BundledProfileTests.profilesFolder
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertFalse(files.isEmpty)
        return try files.map { try ProfileLoader.load(path: folder.appendingPathComponent($0).path) }
    }

    func testVisitsEveryLayerInAllLayersOrder() throws {
        for profile in try bundledProfiles() {
            var visited: [Layer] = []
            XCTAssertTrue(profile.forEachLayer { visited.append($0); return true }, profile.name)
            XCTAssertEqual(visited, profile.allLayers, profile.name)
        }
    }

    func testStopsAtTheFirstMatch() throws {
        for profile in try bundledProfiles() {
            let all = profile.allLayers
            for (index, layer) in all.enumerated() {
                // The first layer equal to this one, as `allLayers.first(where:)` finds it.
                let expected = all.firstIndex(of: layer)!
                var calls = 0
                let found = profile.firstLayer { calls += 1; return $0 == layer }
                XCTAssertEqual(found, layer, "\(profile.name) \(layer.path)")
                XCTAssertEqual(calls, expected + 1, "\(profile.name) \(layer.path): visited past the match")
                XCTAssertLessThanOrEqual(expected, index)
            }
            XCTAssertNil(profile.firstLayer { _ in false }, profile.name)
        }
    }
}
