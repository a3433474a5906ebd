import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// A network with the DVS/VGG layers (dropout, uneven and upsampling adaptive pooling, voting, PLIF):
/// whole-network gradients against finite differences, schedules that must agree, and the
/// engine's allocations against the plan under every strategy.
final class DVSNetworkTests: XCTestCase {
    static let yaml = """
        input: {channels: 2, height: 5, width: 5}
        timesteps: 3
        batch: 3
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard}
        layers:
          - conv: {name: conv1, out: 3, kernel: 3, padding: 1}
          - batchnorm: {name: bn1}
          - neuron: {name: lif1}
          - neuron: {name: plif1, type: plif, tau: 2.0}
          - adaptiveavgpool: {name: down, output: [3, 2]}
          - adaptiveavgpool: {name: up, output: [4, 4]}
          - flatten
          - dropout: {name: drop1, p: 0.5}
          - linear: {name: fc1, out: 12}
          - neuron: {name: plif2, type: plif, tau: 3.0, reset: soft, decayInput: false}
          - dropout: {name: drop2, p: 0.25}
          - linear: {name: fc2, out: 12}
          - voting: {name: vote, size: 4}
        """

    func batch(_ trainer: Trainer<Double>, classes: Int, seed: UInt64) -> ([Double], [Int32]) {
        var random = SeededRandom(seed: seed)
        return ((0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) },
                (0..<trainer.batch).map { _ in Int32(random.nextInt(below: classes)) })
    }

    /// The same network fed event frames: [T, B, 2, 5, 5], a different frame at each timestep.
    static var framesYAML: String {
        yaml.replacingOccurrences(of: "input: {channels: 2, height: 5, width: 5}", with: "input: {channels: 2, height: 5, width: 5, perTimestep: true}")
    }

    func testWholeNetworkGradientMatchesFiniteDifferences() throws {
        try assertGradientsMatchFiniteDifferences(yaml: Self.yaml)
        try assertGradientsMatchFiniteDifferences(yaml: Self.framesYAML)
    }

    func assertGradientsMatchFiniteDifferences(yaml: String) throws {
        let profile = try ProfileLoader.parse(yaml: yaml, file: "dvs.yaml")
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        let (images, labels) = batch(trainer, classes: profile.classes, seed: 11)
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 7)
        XCTAssertGreaterThan(check.checked, 30)
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
    }

    func gradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil, images: [Double]? = nil) throws -> [String: [Double]] {
        try lossAndGradients(profile, strategy, segment: segment, images: images).gradients
    }

    func lossAndGradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil,
                          images given: [Double]? = nil) throws -> (loss: Double, gradients: [String: [Double]]) {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                          allocator: CountingAllocator(rounding: .exact), seed: 3)
        var (images, labels) = batch(trainer, classes: profile.classes, seed: 5)
        if let given {
            // Labels of their own seed: the same for still and moving inputs of any size.
            var random = SeededRandom(seed: 6)
            images = given
            labels = labels.map { _ in Int32(random.nextInt(below: profile.classes)) }
        }
        let loss = try trainer.lossAndGradients(images: images, labels: labels).loss
        let out = trainer.parameterGradients
        return (loss, out)
    }

    /// Frames that repeat one image train exactly as that image does; other frames change the loss.
    /// (Had a timestep read the wrong frame in forward or backward, the two would part.)
    func testEventFramesEqualARepeatedImage() throws {
        let still = try ProfileLoader.parse(yaml: Self.yaml, file: "dvs.yaml")
        let frames = try ProfileLoader.parse(yaml: Self.framesYAML, file: "frames.yaml")
        XCTAssertEqual(frames.inputBatchShape(batch: 3, timesteps: 3), TensorShape([3, 3, 2, 5, 5]))
        var random = SeededRandom(seed: 21)
        let image = (0..<(3 * 50)).map { _ in random.uniform(-0.5, 1.5) }
        for strategy in [Strategy.bptt, .sltt, .checkpoint] {
            let reference = try lossAndGradients(still, strategy, images: image)
            let repeated = try lossAndGradients(frames, strategy, images: image + image + image)
            XCTAssertEqual(repeated.loss, reference.loss, accuracy: 1e-12, "\(strategy)")
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference.gradients, repeated.gradients), 1e-12, "\(strategy)")
            let moving = try lossAndGradients(frames, strategy, images: image + image.map { $0 * 0.5 } + image.map { 1 - $0 })
            XCTAssertNotEqual(moving.loss, reference.loss, "\(strategy)")
        }
        // Checkpointed frames recompute from the frames they saw.
        let bptt = try gradients(frames, .bptt)
        for segment in [1, 2] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, try gradients(frames, .checkpoint, segment: segment)), 1e-9)
        }
    }

    /// Checkpoint's recomputation draws the masks the forward drew: its gradients are bptt's.
    func testCheckpointGradientsEqualBPTT() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "dvs.yaml")
        let reference = try gradients(profile, .bptt)
        XCTAssertFalse(reference.isEmpty)
        for segment in [1, 2, 3] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference, try gradients(profile, .checkpoint, segment: segment)),
                              1e-9, "segment \(segment)")
        }
    }

    /// One mask for all timesteps: the dropped features get no gradient at any timestep, so a
    /// dropped input of fc1 leaves its whole weight column at zero.
    func testDropoutMaskIsSharedOverTimesteps() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml.replacingOccurrences(of: "batch: 3", with: "batch: 1"), file: "dvs.yaml")
        let grads = try gradients(profile, .bptt)
        let weight = grads["fc1:weight"]!  // [12, 48]
        let zeroColumns = (0..<48).filter { column in (0..<12).allSatisfy { weight[$0 * 48 + column] == 0 } }
        XCTAssertGreaterThan(zeroColumns.count, 8)  // p = 0.5 over 48 inputs
        XCTAssertLessThan(zeroColumns.count, 40)
    }
}
