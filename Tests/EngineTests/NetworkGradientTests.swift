import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// Whole networks' gradients: against central finite differences (in Double, with smoothed
/// spikes so that the network is differentiable), and between schedules that must agree.
final class NetworkGradientTests: XCTestCase {
    /// Every kind of layer with weights, both resets, LIF and IF, a residual block, both pools.
    /// (A detached reset is an approximation of the gradient by design, so finite differences of
    /// the forward cannot check it; the kernel tests check it against its own formula.)
    static let tinyYAML = """
        input: {channels: 2, height: 6, width: 6}
        timesteps: 3
        batch: 3
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard, surrogate: {type: atan, alpha: 2.0}}
        layers:
          - conv: {name: conv1, out: 4, kernel: 3, padding: 1, bias: true}
          - batchnorm: {name: bn1}
          - neuron: {name: lif1}
          - residual:
              name: block
              main:
                - conv: {name: conv, out: 4, kernel: 3, padding: 1}
                - batchnorm: {name: bn}
                - neuron: {name: sn, type: if, reset: soft, surrogate: {type: sigmoid, alpha: 4.0}}
              shortcut:
                - conv: {name: proj, out: 4, kernel: 1}
          - maxpool: {name: pool, kernel: 2}
          - neuron: {name: lif2, tau: 3.0}
          - avgpool: {name: pool2, kernel: 3}
          - flatten
          - linear: {name: fc, out: 3}
        """

    func batch(images count: Int, batch: Int, classes: Int, seed: UInt64) -> ([Double], [Int32]) {
        var random = SeededRandom(seed: seed)
        return ((0..<count).map { _ in random.uniform(-0.5, 1.5) }, (0..<batch).map { _ in Int32(random.nextInt(below: classes)) })
    }

    func testWholeNetworkGradientMatchesFiniteDifferences() throws {
        let profile = try ProfileLoader.parse(yaml: Self.tinyYAML, file: "tiny.yaml")
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        let (images, labels) = batch(images: trainer.imageValues, batch: trainer.batch, classes: profile.classes, seed: 11)
        // Every element of small tensors, a spread of the larger ones.
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 7)
        XCTAssertGreaterThan(check.checked, 50)
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
        print("whole-network finite differences: \(check.checked) entries, worst relative error \(check.worstRelative) at \(check.worst)")
    }

    /// Gradients of every parameter after one forward and backward.
    func gradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil, smooth: Bool = false,
                   seed: UInt64 = 5) throws -> [String: [Double]] {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                          allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = smooth
        let (images, labels) = batch(images: trainer.imageValues, batch: trainer.batch, classes: profile.classes, seed: seed)
        _ = try trainer.lossAndGradients(images: images, labels: labels)
        return trainer.parameterGradients
    }

    static func maxRelativeDifference(_ a: [String: [Double]], _ b: [String: [Double]]) -> Double {
        var worst = 0.0
        for (key, x) in a {
            guard let y = b[key] else { return .infinity }
            // The floor keeps a gradient that is zero in exact arithmetic (a conv bias before batch
            // norm, about 1e-18 in practice) from turning rounding noise into a large relative difference.
            let scale = max(x.map(abs).max() ?? 0, y.map(abs).max() ?? 0, 1e-6)
            for (u, v) in zip(x, y) { worst = max(worst, abs(u - v) / scale) }
        }
        return worst
    }

    func testCheckpointGradientsEqualBPTT() throws {
        let profile = try ProfileLoader.parse(yaml: Self.tinyYAML.replacingOccurrences(of: "timesteps: 3", with: "timesteps: 5"), file: "tiny.yaml")
        let reference = try gradients(profile, .bptt)
        for segment in [1, 2, 3, 5] {
            let difference = Self.maxRelativeDifference(reference, try gradients(profile, .checkpoint, segment: segment))
            XCTAssertLessThan(difference, 1e-9, "segment \(segment)")
        }
    }
}
