import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// The PyTorch runtimes held to PyTorch itself: each fixture is one training step of a bundled
/// profile built layer for layer in PyTorch + SpikingJelly and measured by the project's Python
/// package (`scripts/pytorch-fixtures.sh` regenerates them). The plan must keep the same bytes
/// for backward, layer by layer, and reach the measured step peak within 1%.
final class PyTorchFixtureTests: XCTestCase {
    struct Measurement: Decodable {
        struct LayerBytes: Decodable {
            var layer: String
            var bytes: Int
        }
        var schema: String
        var profile: String
        var profileFile: String
        var runtime: String
        var strategy: String
        var segment: Int?
        var batch: Int
        var timesteps: Int
        var savedBytes: Int
        /// sltt: the timestep whose saved tensors are listed (each timestep keeps its own, one at a time).
        var savedTimestep: Int?
        var savedByLayer: [LayerBytes]
        var stepPeakBytes: Int
    }

    static let folder = Fixtures.repositoryRoot.appendingPathComponent("Tests/PlannerTests/Fixtures/pytorch")

    static func measurements() throws -> [(file: String, measurement: Measurement)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            return (name, try JSONDecoder().decode(Measurement.self, from: data))
        }
    }

    func plan(_ m: Measurement) throws -> MemoryPlan {
        let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(m.profileFile).path)
        let runtime = try XCTUnwrap(Runtime(rawValue: m.runtime), "unknown runtime \(m.runtime)")
        let strategy = try XCTUnwrap(Strategy(rawValue: m.strategy), "unknown strategy \(m.strategy)")
        return try Planner.plan(profile, strategy: strategy, options: .init(batch: m.batch, timesteps: m.timesteps, segment: m.segment,
                                                                             runtime: runtime))
    }

    func testEveryExpressibleBundledProfileHasFixturesAtTwoPoints() throws {
        let all = try Self.measurements().map(\.measurement)
        for name in ["cifarnet", "vgg11", "vgg13", "resnet19", "resnet18", "sew-resnet34", "digits"] {
            let points = Set(all.filter { $0.profile == name && $0.strategy == "bptt" }.map { "\($0.timesteps)x\($0.batch)" })
            XCTAssertGreaterThanOrEqual(points.count, 2, "\(name): bptt fixtures at \(points.sorted())")
            XCTAssertTrue(all.contains { $0.profile == name && $0.strategy == "sltt" }, "\(name): no sltt fixture")
            XCTAssertTrue(all.contains { $0.profile == name && $0.strategy == "checkpoint" }, "\(name): no checkpoint fixture")
        }
    }

    func testSavedBytesPerLayerEqualPyTorchs() throws {
        for (file, m) in try Self.measurements() {
            let plan = try plan(m)
            let counted = plan.savedBytesSeenByHooks(timestep: m.savedTimestep)
            let planned = Dictionary(uniqueKeysWithValues: counted.map { ($0.layer, $0.bytes) })
            let measured = Dictionary(m.savedByLayer.map { ($0.layer, $0.bytes) }, uniquingKeysWith: +)
            XCTAssertFalse(measured.isEmpty, file)
            for layer in Set(planned.keys).union(measured.keys).sorted() where (planned[layer] ?? 0) != (measured[layer] ?? 0) {
                XCTFail("\(file): layer \(layer) keeps \(planned[layer] ?? 0) B planned, \(measured[layer] ?? 0) B measured")
            }
            XCTAssertEqual(counted.reduce(0) { $0 + $1.bytes }, m.savedBytes, "\(file): saved bytes in all")
        }
    }

    func testStepPeakWithinOnePercentOfPyTorchs() throws {
        for (file, m) in try Self.measurements() {
            let plan = try plan(m)
            let error = Double(plan.peakBytes - m.stepPeakBytes) / Double(m.stepPeakBytes)
            XCTAssertLessThanOrEqual(abs(error), 0.01,
                                     "\(file): planned peak \(plan.peakBytes) B, measured \(m.stepPeakBytes) B (\(error * 100)%)")
        }
    }
}
