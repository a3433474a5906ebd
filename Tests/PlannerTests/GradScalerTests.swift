import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// float16 autocast trains with `torch.amp.GradScaler`: its two persistent scalars, the scaled
/// loss in backward and `unscale_`'s scalars before the optimizer step, held to what PyTorch
/// allocated in the committed float16 measurements (bfloat16 has no scaler).
final class GradScalerTests: XCTestCase {
    struct Measurement: Decodable {
        struct Allocation: Decodable {
            var bytes: Int
            var phase: String
        }
        var profileFile: String
        var strategy: String
        var segment: Int?
        var batch: Int
        var timesteps: Int
        var dtype: String
        var liveAtStart: [String: Int]
        var allocations: [Allocation]?
    }

    static func fixtures(dtype: String) throws -> [(String, Measurement)] {
        let folder = PyTorchFixtureTests.folder
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix("-\(dtype).json") }.sorted().map {
            ($0, try JSONDecoder().decode(Measurement.self, from: Data(contentsOf: folder.appendingPathComponent($0))))
        }
    }

    func plan(_ m: Measurement) throws -> MemoryPlan {
        let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(m.profileFile).path)
        return try Planner.plan(profile, strategy: try XCTUnwrap(Strategy(rawValue: m.strategy)),
                                options: .init(batch: m.batch, timesteps: m.timesteps, segment: m.segment, runtime: .pytorchCPU,
                                               dtype: try XCTUnwrap(DType(rawValue: m.dtype))))
    }

    func scalerBytes(_ plan: MemoryPlan) -> Int {
        plan.tensors.filter { $0.persistent && $0.descriptor.layerPath == "grad_scaler" }.reduce(0) { $0 + $1.bytes }
    }

    func testPersistentScalarsEqualTheMeasuredScalers() throws {
        let fixtures = try Self.fixtures(dtype: "float16")
        XCTAssertGreaterThanOrEqual(fixtures.count, 12)
        for (file, m) in fixtures {
            let measured = try XCTUnwrap(m.liveAtStart["gradScaler"], file)
            XCTAssertEqual(scalerBytes(try plan(m)), measured, file)
        }
        for (file, m) in try Self.fixtures(dtype: "bfloat16") {
            XCTAssertNil(m.liveAtStart["gradScaler"], file)
            XCTAssertEqual(scalerBytes(try plan(m)), 0, "\(file): bfloat16 trains without a scaler")
        }
    }

    /// The optimizer phase opens with `unscale_`: the plan's first allocations and frees there are
    /// PyTorch's, byte for byte, up to the first optimizer temporary.
    func testUnscaleOpensTheOptimizerPhaseAsMeasured() throws {
        var compared = 0
        for (file, m) in try Self.fixtures(dtype: "float16") {
            guard let allocations = m.allocations else { continue }
            let plan = try plan(m)
            let planned = plan.events.filter {
                if case .optimizerStep = $0.phase { return true }
                return false
            }.prefix(11).map { $0.kind == .allocate ? $0.bytes : -$0.bytes }
            let measured = allocations.filter { $0.phase == "optimizer" }.prefix(11).map(\.bytes)
            XCTAssertEqual(Array(planned), Array(measured), file)
            XCTAssertEqual(measured, [8, 8, -8, 4, -8, 4, 4, 4, -4, -4, -4], file)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 0, "no float16 fixture carries its allocation stream")
    }
}
