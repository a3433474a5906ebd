import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// Memory-saving schedules must compute what they claim: checkpoint, revsnn and trevsnn the
/// gradients of the same network with every activation stored; SLTT those of BPTT with the
/// temporal path cut. Reversible inputs must be reconstructed, not approximated.
final class ScheduleAgreementTests: XCTestCase {
    static let reversibleYAML = PlannedVersusMeasuredTests.reversibleYAML

    static let trevYAML = """
        input: {channels: 2, height: 8, width: 8}
        timesteps: 3
        batch: 2
        neuron: {type: lif, threshold: 0.5, surrogate: {type: atan, alpha: 2.0}}
        optimizer: {type: adam}
        layers:
          - conv: {name: stem, out: 4, kernel: 3, padding: 1}
          - batchnorm: {name: stem_bn}
          - trevsnn:
              name: trev
              kernel: 3
              expansion: 2
              alpha: 0.5
              layerScale: 0.5
              classes: 3
              levels:
                - {channels: 4, blocks: 1}
                - {channels: 6, blocks: 1}
                - {channels: 8, blocks: 0}
        """

    func gradients<T: EngineScalar>(_ type: T.Type, _ profile: Profile, _ strategy: Strategy, pathCut: Bool = false,
                                    observer: ((String, Bool, [T]) -> Void)? = nil) throws -> (loss: Double, gradients: [String: [Double]]) {
        let trainer = try Trainer<T>(profile: profile, strategy: strategy, allocator: CountingAllocator(rounding: .exact), seed: 4)
        trainer.bpttWithTemporalPathCut = pathCut
        trainer.stateObserver = observer
        var random = SeededRandom(seed: 8)
        let images = (0..<trainer.imageValues).map { _ in T(random.uniform(-0.5, 2)) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let loss = try trainer.lossAndGradients(images: images, labels: labels).loss
        var out: [String: [Double]] = [:]
        for (path, name) in trainer.trainableParameters { out[path + ":" + name] = trainer.gradient(path, name).map { Double($0) } }
        return (loss, out)
    }

    /// The largest difference of any gradient entry, relative to its tensor's largest entry.
    static func maxRelativeDifference(_ a: [String: [Double]], _ b: [String: [Double]]) -> Double {
        NetworkGradientTests.maxRelativeDifference(a, b)
    }

    func testRevSNNGradientsEqualBPTT() throws {
        let profile = try ProfileLoader.parse(yaml: Self.reversibleYAML, file: "reversible.yaml")
        for precision in ["double", "float"] {
            let (bpttLoss, bptt) = precision == "double" ? try gradients(Double.self, profile, .bptt) : try gradients(Float.self, profile, .bptt)
            let (revLoss, rev) = precision == "double" ? try gradients(Double.self, profile, .revsnn) : try gradients(Float.self, profile, .revsnn)
            let difference = Self.maxRelativeDifference(bptt, rev)
            XCTAssertLessThan(difference, precision == "double" ? 1e-10 : 1e-4, precision)
            XCTAssertEqual(bpttLoss, revLoss, accuracy: 1e-5 * abs(bpttLoss))
            XCTAssertGreaterThan(bptt.values.map { $0.map(abs).max() ?? 0 }.max() ?? 0, 0, "gradients are not all zero")
            print("revsnn vs bptt (\(precision)): max relative gradient difference \(difference)")
        }
    }

    func testRevSNNReconstructsBlockInputs() throws {
        let profile = try ProfileLoader.parse(yaml: Self.reversibleYAML, file: "reversible.yaml")
        var forward: [String: [Float]] = [:]
        var worst = 0.0
        var checked = 0
        _ = try gradients(Float.self, profile, .revsnn) { key, rebuilt, values in
            if !rebuilt { forward[key] = values; return }
            guard let original = forward[key] else { return XCTFail("no forward value for \(key)") }
            let scale = Double(original.map(abs).max() ?? 0) + 1e-12
            for (a, b) in zip(original, values) { worst = max(worst, Double(abs(a - b)) / scale) }
            checked += 1
        }
        XCTAssertEqual(checked, 2 * 3, "x1 and x2 of the three blocks (two in one stage, one in the other)")
        XCTAssertLessThan(worst, 1e-5)
        print("revsnn reconstruction: worst relative error \(worst) over \(checked) tensors")
    }

    func testTRevSNNGradientsEqualBPTTAndStatesAreReconstructed() throws {
        let profile = try ProfileLoader.parse(yaml: Self.trevYAML, file: "trev.yaml")
        let (bpttLoss, bptt) = try gradients(Double.self, profile, .bptt)
        let (trevLoss, trev) = try gradients(Double.self, profile, .trevsnn)
        XCTAssertEqual(bpttLoss, trevLoss, accuracy: 1e-12)
        XCTAssertLessThan(Self.maxRelativeDifference(bptt, trev), 1e-10)
        XCTAssertNotNil(bptt["col0/trev/level0:alpha"], "alphas are learned per column")

        let (_, bpttFloat) = try gradients(Float.self, profile, .bptt)
        var forward: [String: [Float]] = [:]
        var worst = 0.0
        var checked = 0
        let (_, trevFloat) = try gradients(Float.self, profile, .trevsnn) { key, rebuilt, values in
            if !rebuilt { forward[key] = values; return }
            guard let original = forward[key] else { return XCTFail("no forward value for \(key)") }
            let scale = Double(original.map(abs).max() ?? 0) + 1e-12
            for (a, b) in zip(original, values) { worst = max(worst, Double(abs(a - b)) / scale) }
            checked += 1
        }
        XCTAssertEqual(checked, 3 * 2, "three levels of columns 0 and 1 are rebuilt")
        XCTAssertLessThan(worst, 1e-4, "division by alpha amplifies rounding")
        let floatDifference = Self.maxRelativeDifference(bpttFloat, trevFloat)
        XCTAssertLessThan(floatDifference, 1e-4)
        print("trevsnn reconstruction (float32): worst relative error \(worst); gradients vs bptt \(floatDifference)")
    }

    func testSLTTEqualsBPTTWithTheTemporalPathCut() throws {
        let profile = try ProfileLoader.parse(yaml: NetworkGradientTests.tinyYAML, file: "tiny.yaml")
        let (slttLoss, sltt) = try gradients(Double.self, profile, .sltt)
        let (cutLoss, cut) = try gradients(Double.self, profile, .bptt, pathCut: true)
        XCTAssertEqual(slttLoss, cutLoss, accuracy: 1e-12)
        XCTAssertLessThan(Self.maxRelativeDifference(sltt, cut), 1e-10)
        // And SLTT is not BPTT: the temporal path carries gradient.
        let (_, full) = try gradients(Double.self, profile, .bptt)
        XCTAssertGreaterThan(Self.maxRelativeDifference(sltt, full), 1e-3)
    }

    func testTRevSNNPlanMatchesMeasurement() throws {
        let profile = try ProfileLoader.parse(yaml: Self.trevYAML, file: "trev.yaml")
        for strategy in [Strategy.bptt, .trevsnn] {
            let allocator = CountingAllocator(rounding: .exact)
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, allocator: allocator)
            var random = SeededRandom(seed: 2)
            _ = try trainer.step(images: (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1)) },
                                 labels: (0..<trainer.batch).map { _ in Int32(random.nextInt(below: 3)) })
            let plan = try Planner.plan(profile, strategy: strategy)
            let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
            XCTAssertNil(comparison.firstDifference, "\(strategy)")
            XCTAssertEqual(comparison.measuredPeakBytes, plan.peakBytes)
        }
    }

    /// Recomputation must not update batch-norm running statistics a second time.
    func testRunningStatisticsAreUpdatedOncePerStep() throws {
        func runningStatistics(_ profile: Profile, _ strategy: Strategy) throws -> [Double] {
            let trainer = try Trainer<Double>(profile: profile, strategy: strategy, allocator: CountingAllocator(rounding: .exact), seed: 4)
            var random = SeededRandom(seed: 8)
            let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 2) }
            let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
            _ = try trainer.lossAndGradients(images: images, labels: labels)
            return profile.allLayers.flatMap { layer -> [Double] in
                guard case .batchNorm = layer.kind else { return [] }
                return trainer.parameter(layer.path, "runningMean") + trainer.parameter(layer.path, "runningVar")
            }
        }
        let reversible = try ProfileLoader.parse(yaml: Self.reversibleYAML, file: "reversible.yaml")
        let reference = try runningStatistics(reversible, .bptt)
        XCTAssertTrue(reference.contains { $0 != 0 && $0 != 1 }, "the statistics moved")
        for strategy in [Strategy.checkpoint, .revsnn] {
            let statistics = try runningStatistics(reversible, strategy)
            XCTAssertEqual(statistics.count, reference.count)
            for (a, b) in zip(statistics, reference) { XCTAssertEqual(a, b, accuracy: 1e-12, "\(strategy)") }
        }
    }
}
