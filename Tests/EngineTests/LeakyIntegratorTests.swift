import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// The leaky integrator readout (`neuron: {type: li}`): the kernel pair against finite differences
/// over T timesteps, whole-network gradients, checkpoint == bptt, and the engine's allocations equal
/// to the plan (it saves nothing, carries v and dL/dv).
final class LeakyIntegratorTests: XCTestCase {
    static let yaml = SequenceInputTests.yaml + "\n  - neuron: {name: readout, type: li, tau: 3.0}\n"

    /// L = sum_t sum_i w[t, i] * v_t[i] over T steps of the kernel; dL/dx by the backward loop.
    func testKernelPairMatchesFiniteDifferences() {
        let spec = NeuronSpec(type: .li, tau: 3.0)
        let (count, steps) = (5, 4)
        var random = SeededRandom(seed: 9)
        let x = (0..<(count * steps)).map { _ in random.uniform(-1, 1) }
        let w = (0..<(count * steps)).map { _ in random.uniform(-1, 1) }
        func loss(_ x: [Double]) -> Double {
            var v = [Double](repeating: 0, count: count), out = v, total = 0.0
            for t in 0..<steps {
                x.withUnsafeBufferPointer { xs in
                    leakyIntegratorForward(spec, count: count, output: &out, vNext: &v, input: xs.baseAddress! + t * count, v: v)
                }
                for i in 0..<count { total += w[t * count + i] * out[i] }
            }
            return total
        }
        var dx = [Double](repeating: 0, count: count * steps), dv = [Double](repeating: 0, count: count)
        for t in (0..<steps).reversed() {
            let dOut = Array(w[(t * count)..<((t + 1) * count)])
            var dIn = [Double](repeating: 0, count: count)
            let carried = dv
            leakyIntegratorBackward(spec, count: count, dInput: &dIn, dVPrevious: &dv, dOutput: dOut, dVNext: t == steps - 1 ? nil : carried)
            for i in 0..<count { dx[t * count + i] = dIn[i] }
        }
        for index in 0..<x.count {
            var plus = x, minus = x
            plus[index] += 1e-6
            minus[index] -= 1e-6
            XCTAssertEqual(dx[index], (loss(plus) - loss(minus)) / 2e-6, accuracy: 1e-8, "x[\(index)]")
        }
        // The first timestep's input reaches every later output: its gradient is not just w * gain.
        XCTAssertNotEqual(dx[0], w[0] / 3, accuracy: 1e-6)
    }

    func testNetworkGradientsAndSchedules() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "li.yaml")
        XCTAssertEqual(profile.layers.last?.outputShape, TensorShape([3]))
        var random = SeededRandom(seed: 4)
        let x = (0..<(3 * 2 * 7)).map { _ in random.uniform(-0.5, 1.5) }
        func run(_ strategy: Strategy, segment: Int? = nil, smooth: Bool) throws -> (Trainer<Double>, [String: [Double]]) {
            let trainer = try trainedForGradients(profile, strategy, segment: segment, smooth: smooth, images: x, labels: [0, 2])
            return (trainer, trainer.parameterGradients)
        }
        let (trainer, _) = try run(.bptt, smooth: true)
        let check = try NetworkFiniteDifferences(trainer, images: x, labels: [0, 2], samplesPerTensor: 5)
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)
        let bptt = try run(.bptt, smooth: false).1
        for segment in [1, 2] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, try run(.checkpoint, segment: segment, smooth: false).1), 1e-9)
        }
    }

    func testPlanEqualsMeasuredEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "li.yaml")
        XCTAssertTrue(LayerMemoryTable.declaration(for: profile.layers.last!).saved.isEmpty)
        try assertStepsMatchPlan(profile, labels: [1, 0])
    }
}
