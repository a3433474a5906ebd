import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// Sequence inputs (`input: {features, perTimestep: true}`, [T, B, features] as SHD's spike trains):
/// gradients against finite differences, each timestep reading its own vector, schedules agreeing,
/// and the engine's allocations equal to the plan.
final class SequenceInputTests: XCTestCase {
    static let yaml = """
        input: {features: 7, perTimestep: true}
        timesteps: 3
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5}
        layers:
          - linear: {name: fc1, out: 6}
          - neuron: {name: lif1}
          - dropout: {name: drop, p: 0.25}
          - linear: {name: fc2, out: 3}
        """

    func lossAndGradients(_ profile: Profile, _ strategy: Strategy, inputs: [Double],
                          smooth: Bool = false) throws -> (loss: Double, gradients: [String: [Double]], trainer: Trainer<Double>) {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = smooth
        let labels: [Int32] = [1, 2]
        let loss = try trainer.lossAndGradients(images: inputs, labels: labels).loss
        let out = trainer.parameterGradients
        return (loss, out, trainer)
    }

    func inputs(_ count: Int, seed: UInt64) -> [Double] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.uniform(-0.5, 1.5) }
    }

    func testProfileShapes() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "seq.yaml")
        XCTAssertEqual(profile.inputShape, TensorShape([7]))
        XCTAssertTrue(profile.inputPerTimestep)
        XCTAssertEqual(profile.inputBatchShape(batch: 2, timesteps: 3), TensorShape([3, 2, 7]))
    }

    func testGradientsMatchFiniteDifferences() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "seq.yaml")
        let x = inputs(3 * 2 * 7, seed: 11)
        let (_, _, trainer) = try lossAndGradients(profile, .bptt, inputs: x, smooth: true)
        let check = try NetworkFiniteDifferences(trainer, images: x, labels: [1, 2], samplesPerTensor: 6)
        XCTAssertGreaterThan(check.checked, 20)
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)
    }

    /// A sequence repeating one vector trains as that vector fed still; a moving sequence does not.
    func testSequenceReadsOneVectorPerTimestep() throws {
        let sequence = try ProfileLoader.parse(yaml: Self.yaml, file: "seq.yaml")
        let still = try ProfileLoader.parse(yaml: Self.yaml.replacingOccurrences(of: ", perTimestep: true", with: ""), file: "still.yaml")
        let vector = inputs(2 * 7, seed: 21)
        for strategy in [Strategy.bptt, .sltt, .checkpoint] {
            let reference = try lossAndGradients(still, strategy, inputs: vector)
            let repeated = try lossAndGradients(sequence, strategy, inputs: vector + vector + vector)
            XCTAssertEqual(repeated.loss, reference.loss, accuracy: 1e-12, "\(strategy)")
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference.gradients, repeated.gradients), 1e-12, "\(strategy)")
            let moving = try lossAndGradients(sequence, strategy, inputs: vector + vector.map { 1 - $0 } + vector.map { $0 * 2 })
            // Surrogate gradients reach fc1 whether or not a neuron fires: they see every timestep's vector.
            XCTAssertGreaterThan(NetworkGradientTests.maxRelativeDifference(reference.gradients, moving.gradients), 1e-3, "\(strategy)")
        }
        let x = inputs(3 * 2 * 7, seed: 5)
        let bptt = try lossAndGradients(sequence, .bptt, inputs: x).gradients
        for segment in [1, 2] {
            let trainer = try Trainer<Double>(profile: sequence, strategy: .checkpoint, segment: segment,
                                              allocator: CountingAllocator(rounding: .exact), seed: 3)
            _ = try trainer.lossAndGradients(images: x, labels: [1, 2])
            var gradients: [String: [Double]] = [:]
            for (path, name) in trainer.trainableParameters { gradients[path + ":" + name] = trainer.gradient(path, name) }
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, gradients), 1e-9, "segment \(segment)")
        }
    }

    func testPlanEqualsMeasuredEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "seq.yaml")
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let allocator = CountingAllocator(rounding: .exact)
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, allocator: allocator)
            let x = inputs(trainer.imageValues, seed: 7).map { Float($0) }
            let labels: [Int32] = [0, 2]
            XCTAssertEqual(x.count, 3 * 2 * 7)
            _ = try trainer.step(images: x, labels: labels)
            let plan = try Planner.plan(profile, strategy: strategy, options: .init())
            let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
            XCTAssertNil(comparison.firstDifference, "\(strategy)")
            XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)")
        }
    }
}
