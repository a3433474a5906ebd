import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// The adaptive LIF (`neuron: {type: alif}`): the threshold rising with spikes, the kernel pair against
/// finite differences through time (v and the adaptation b carried), whole-network gradients,
/// checkpoint == bptt, and the engine's allocations equal to the plan under bptt, checkpoint and sltt.
final class AdaptiveNeuronTests: XCTestCase {
    static let yaml = """
        input: {features: 7, perTimestep: true}
        timesteps: 4
        batch: 2
        neuron: {type: alif, tau: 2.0, threshold: 0.5, rho: 0.7, beta: 0.6}
        layers:
          - linear: {name: fc1, out: 6}
          - neuron: {name: alif1}
          - linear: {name: fc2, out: 5}
          - neuron: {name: alif2, reset: soft, surrogate: sigmoid}
          - linear: {name: fc3, out: 3}
        """

    /// A constant input that fires the neuron at once: after the spike b = 1 - rho, so the threshold is
    /// threshold + beta (1 - rho), and it decays by rho each timestep without a spike.
    func testThresholdRisesWithEachSpikeAndDecays() {
        let spec = NeuronSpec(type: .alif, tau: 2.0, threshold: 1.0)
        var state: [Float] = [0, 0]  // v, b
        var spike: [Float] = [0], h: [Float] = [0], b: [Float] = [0]
        var spikes: [Float] = [], adaptations: [Float] = []
        for _ in 0..<4 {
            alifForward(spec, count: 1, spike: &spike, h: &h, b: &b, state: &state, input: [Float(2.2)])
            spikes.append(spike[0])
            adaptations.append(b[0])
        }
        // h = 1.1 >= 1: fires, b = 0.1; then h = 1.1 < 1 + 1.8 * 0.1 = 1.18: silent, b = 0.09;
        // h = 1.65 >= 1.162: fires; b = 0.9 * 0.09 + 0.1.
        XCTAssertEqual(spikes, [1, 0, 1, 0])
        XCTAssertEqual(adaptations[0], 0)
        XCTAssertEqual(adaptations[1], 0.1, accuracy: 1e-6)
        XCTAssertEqual(adaptations[2], 0.09, accuracy: 1e-6)
        XCTAssertEqual(adaptations[3], 0.9 * 0.09 + 0.1, accuracy: 1e-6)
        // beta 0 is a LIF: the same spikes as neuronForward.
        var lifV: [Float] = [0], lifSpike: [Float] = [0], lifH: [Float] = [0]
        var plain = NeuronSpec(type: .alif, tau: 2.0, threshold: 1.0)
        plain.beta = 0
        state = [0, 0]
        for _ in 0..<4 {
            alifForward(plain, count: 1, spike: &spike, h: &h, b: &b, state: &state, input: [Float(2.2)])
            neuronForward(NeuronSpec(type: .lif, tau: 2.0, threshold: 1.0), count: 1, spike: &lifSpike, h: &lifH, vNext: &lifV,
                          input: [Float(2.2)], v: lifV)
            XCTAssertEqual(spike, lifSpike)
            XCTAssertEqual(h, lifH)
        }
    }

    /// L = sum_t sum_i w[t, i] * s_t[i] over T steps of the smoothed kernel; dL/dx by the backward loop,
    /// dL/dv and dL/db carried in one buffer. Both resets, both surrogates (a detached reset is not the
    /// forward's derivative; python/tests/test_alif.py holds it to autograd's).
    func testKernelPairMatchesFiniteDifferences() {
        var specs: [NeuronSpec] = []
        for reset in [ResetMode.hard, .soft] {
            for surrogate in [SurrogateKind.atan, .sigmoid] {
                var spec = NeuronSpec(type: .alif, tau: 3.0, threshold: 0.4, vReset: -0.2, reset: reset, surrogate: surrogate)
                spec.rho = 0.6
                spec.beta = 0.9
                specs.append(spec)
            }
        }
        let (count, steps) = (5, 5)
        for spec in specs {
            var random = SeededRandom(seed: 11)
            let x = (0..<(count * steps)).map { _ in random.uniform(-1, 2) }
            let w = (0..<(count * steps)).map { _ in random.uniform(-1, 1) }
            func run(_ x: [Double]) -> (loss: Double, h: [Double], b: [Double]) {
                var state = [Double](repeating: 0, count: 2 * count)
                for i in 0..<count { state[i] = neuronInitialPotential(spec) }
                var spike = [Double](repeating: 0, count: count), total = 0.0
                var hs = [Double](repeating: 0, count: count * steps), bs = hs
                for t in 0..<steps {
                    var h = [Double](repeating: 0, count: count), b = h
                    x.withUnsafeBufferPointer { xs in
                        alifForward(spec, count: count, smooth: true, spike: &spike, h: &h, b: &b, state: &state,
                                    input: xs.baseAddress! + t * count)
                    }
                    for i in 0..<count { total += w[t * count + i] * spike[i]; hs[t * count + i] = h[i]; bs[t * count + i] = b[i] }
                }
                return (total, hs, bs)
            }
            let forward = run(x)
            var dx = [Double](repeating: 0, count: count * steps), dState = [Double](repeating: 0, count: 2 * count)
            for t in (0..<steps).reversed() {
                var dIn = [Double](repeating: 0, count: count)
                alifBackward(spec, count: count, smooth: true, dInput: &dIn, dState: &dState, dSpike: Array(w[(t * count)..<((t + 1) * count)]),
                             h: Array(forward.h[(t * count)..<((t + 1) * count)]), b: Array(forward.b[(t * count)..<((t + 1) * count)]))
                for i in 0..<count { dx[t * count + i] = dIn[i] }
            }
            for index in 0..<x.count {
                var plus = x, minus = x
                plus[index] += 1e-6
                minus[index] -= 1e-6
                XCTAssertEqual(dx[index], (run(plus).loss - run(minus).loss) / 2e-6, accuracy: 1e-7, "\(spec) x[\(index)]")
            }
            // The adaptation carries gradient: with beta = 0 the early inputs' gradients differ.
            var lif = spec
            lif.beta = 0
            var dStateLIF = [Double](repeating: 0, count: 2 * count), dIn = [Double](repeating: 0, count: count)
            alifBackward(lif, count: count, smooth: true, dInput: &dIn, dState: &dStateLIF, dSpike: Array(w[0..<count]),
                         h: Array(forward.h[0..<count]), b: Array(forward.b[0..<count]))
            XCTAssertEqual(dStateLIF[count..<(2 * count)].reduce(0) { $0 + abs($1) }, 0, "beta 0: no gradient reaches b")
        }
    }

    func testNetworkGradientsAndSchedules() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "alif.yaml")
        var random = SeededRandom(seed: 4)
        let x = (0..<(4 * 2 * 7)).map { _ in random.uniform(-0.5, 1.5) }
        func run(_ strategy: Strategy, segment: Int? = nil, smooth: Bool) throws -> (Trainer<Double>, [String: [Double]]) {
            let trainer = try trainedForGradients(profile, strategy, segment: segment, smooth: smooth, images: x, labels: [0, 2])
            return (trainer, trainer.parameterGradients)
        }
        let (trainer, _) = try run(.bptt, smooth: true)
        let check = try NetworkFiniteDifferences(trainer, images: x, labels: [0, 2], samplesPerTensor: 6)
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)
        XCTAssertEqual(check.checkedPaths, ["fc1", "fc2", "fc3"])
        let bptt = try run(.bptt, smooth: false).1
        XCTAssertGreaterThan(bptt["fc1:weight"]!.reduce(0) { $0 + abs($1) }, 0, "spikes reach fc1")
        for segment in [1, 3] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, try run(.checkpoint, segment: segment, smooth: false).1), 1e-9)
        }
    }

    func testPlanEqualsMeasuredEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "alif.yaml")
        let declaration = LayerMemoryTable.declaration(for: profile.layers[1])
        XCTAssertEqual(declaration.saved.map(\.name), ["h", "b"])
        XCTAssertEqual(declaration.forwardState.first?.shape, TensorShape([2, 6]))
        try assertStepsMatchPlan(profile, labels: [1, 0])
    }
}
