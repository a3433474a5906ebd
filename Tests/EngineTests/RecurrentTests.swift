import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// The recurrent spiking layer (`recurrent: {out, neuron}`): the kernel pair against finite differences
/// over T timesteps (input, both weight blocks, bias), whole-network gradients, checkpoint == bptt,
/// SLTT's cut, and the engine's allocations equal to the plan under bptt, checkpoint and sltt.
final class RecurrentTests: XCTestCase {
    static let yaml = """
        input: {features: 5, perTimestep: true}
        timesteps: 4
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5}
        layers:
          - recurrent: {name: rec1, out: 6}
          - linear: {name: fc, out: 3}
          - neuron: {name: readout, type: li, tau: 2.0}
        """

    /// L = sum_t sum_i w[t, i] * s_t[i] over T steps of the kernel with smoothed spikes; every
    /// gradient by the backward loop against central differences.
    func testKernelPairMatchesFiniteDifferences() {
        for reset in [ResetMode.hard, .soft] {
            var spec = NeuronSpec(type: .lif, tau: 2.0)
            spec.threshold = 0.4
            spec.reset = reset
            let shape = RecurrentShape(batch: 2, inFeatures: 3, outFeatures: 4)
            let steps = 4, n = shape.outCount
            var random = SeededRandom(seed: 17)
            let x = (0..<(steps * shape.batch * shape.inFeatures)).map { _ in random.uniform(-1, 2) }
            let weight0 = (0..<(shape.outFeatures * shape.weightColumns)).map { _ in random.uniform(-0.8, 0.8) }
            let bias0 = (0..<shape.outFeatures).map { _ in random.uniform(-0.2, 0.2) }
            let w = (0..<(steps * n)).map { _ in random.uniform(-1, 1) }
            let inCount = shape.batch * shape.inFeatures

            func loss(_ x: [Double], _ weight: [Double], _ bias: [Double]) -> Double {
                var state = [Double](repeating: 0, count: 2 * n), spike = [Double](repeating: 0, count: n)
                var h = spike, sPrevious = spike, current = spike, total = 0.0
                for t in 0..<steps {
                    x.withUnsafeBufferPointer { xs in
                        recurrentForward(shape, neuron: spec, smooth: true, spike: &spike, h: &h, sPrevious: &sPrevious,
                                         current: &current, state: &state, input: xs.baseAddress! + t * inCount,
                                         weight: weight, bias: bias)
                    }
                    for i in 0..<n { total += w[t * n + i] * spike[i] }
                }
                return total
            }
            // Forward keeping h and s_{t-1} per timestep, then backward from the last timestep.
            var state = [Double](repeating: 0, count: 2 * n), spike = [Double](repeating: 0, count: n), current = spike
            var hs = [[Double]](), sPrevs = [[Double]]()
            for t in 0..<steps {
                var h = spike, sPrevious = spike
                x.withUnsafeBufferPointer { xs in
                    recurrentForward(shape, neuron: spec, smooth: true, spike: &spike, h: &h, sPrevious: &sPrevious, current: &current,
                                     state: &state, input: xs.baseAddress! + t * inCount, weight: weight0, bias: bias0)
                }
                hs.append(h)
                sPrevs.append(sPrevious)
            }
            var dx = [Double](repeating: 0, count: x.count), dWeight = [Double](repeating: 0, count: weight0.count)
            var dBias = [Double](repeating: 0, count: bias0.count), dState = [Double](repeating: 0, count: 2 * n)
            for t in (0..<steps).reversed() {
                var dIn = [Double](repeating: 0, count: inCount), dCurrent = [Double](repeating: 0, count: n)
                let dSpike = Array(w[(t * n)..<((t + 1) * n)])
                x.withUnsafeBufferPointer { xs in
                    recurrentBackward(shape, neuron: spec, smooth: true, dInput: &dIn, dWeight: &dWeight, dBias: &dBias,
                                      dCurrent: &dCurrent, dState: &dState, dSpike: dSpike, h: hs[t], sPrevious: sPrevs[t],
                                      input: xs.baseAddress! + t * inCount, weight: weight0)
                }
                for i in 0..<inCount { dx[t * inCount + i] = dIn[i] }
            }
            func check(_ name: String, _ values: [Double], _ analytic: [Double], _ perturbed: ([Double]) -> Double) {
                for index in values.indices {
                    var plus = values, minus = values
                    plus[index] += 1e-6
                    minus[index] -= 1e-6
                    let numeric = (perturbed(plus) - perturbed(minus)) / 2e-6
                    XCTAssertEqual(analytic[index], numeric, accuracy: 1e-6 * max(1, abs(numeric)), "\(reset) \(name)[\(index)]")
                }
            }
            check("x", x, dx) { loss($0, weight0, bias0) }
            check("weight", weight0, dWeight) { loss(x, $0, bias0) }
            check("bias", bias0, dBias) { loss(x, weight0, $0) }
            // The recurrent columns carry gradient (s_{t-1} is not zero after the first timestep).
            let recurrentColumns = (0..<shape.outFeatures).flatMap { o in (shape.inFeatures..<shape.weightColumns).map { o * shape.weightColumns + $0 } }
            XCTAssertGreaterThan(recurrentColumns.map { abs(dWeight[$0]) }.max()!, 1e-3)
        }
    }

    func gradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil, x: [Double]) throws -> [String: [Double]] {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                          allocator: CountingAllocator(rounding: .exact), seed: 3)
        _ = try trainer.lossAndGradients(images: x, labels: [0, 2])
        return trainer.parameterGradients
    }

    func testNetworkGradientsAndSchedules() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "rec.yaml")
        XCTAssertEqual(profile.layers.first?.outputShape, TensorShape([6]))
        var random = SeededRandom(seed: 4)
        let x = (0..<(4 * 2 * 5)).map { _ in random.uniform(-0.5, 1.5) }
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        let check = try NetworkFiniteDifferences(trainer, images: x, labels: [0, 2], samplesPerTensor: 8)
        XCTAssertTrue(check.checkedPaths.contains("rec1"))
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)

        let bptt = try gradients(profile, .bptt, x: x)
        for segment in [1, 2, 3] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, try gradients(profile, .checkpoint, segment: segment, x: x)), 1e-9,
                              "segment \(segment)")
        }
        // SLTT cuts the temporal path: another gradient, but the recurrent weight still learns
        // from each timestep's own term dI_t s_{t-1}^T.
        let sltt = try gradients(profile, .sltt, x: x)
        XCTAssertGreaterThan(NetworkGradientTests.maxRelativeDifference(bptt, sltt), 1e-3)
        XCTAssertGreaterThan(sltt["rec1:weight"]!.map(abs).max()!, 0)
    }

    func testPlanEqualsMeasuredEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "rec.yaml")
        let declaration = LayerMemoryTable.declaration(for: profile.layers[0])
        XCTAssertEqual(declaration.saved.map(\.name), ["sPrevious", "h"])
        XCTAssertTrue(declaration.keepsInput)
        try assertStepsMatchPlan(profile, labels: [1, 0])
    }

    /// BPTT keeps, for every timestep, s_{t-1} and h ([B, 6] each); the input x_t it also keeps is the
    /// network's input sequence, counted there.
    func testBPTTKeepsEveryTimestepsFedBackSpikes() throws {
        for timesteps in [4, 8] {
            let profile = try ProfileLoader.parse(yaml: Self.yaml.replacingOccurrences(of: "timesteps: 4", with: "timesteps: \(timesteps)"),
                                                  file: "rec.yaml")
            let plan = try Planner.plan(profile, strategy: .bptt, options: .init())
            let saved = plan.savedBytesByLayer.first { $0.layer == "rec1" }?.bytes
            XCTAssertEqual(saved, timesteps * 2 * (6 + 6) * 4, "T = \(timesteps)")
        }
    }

    /// The bundled SHD network (recurrent LIF 256 on 700 channels, li readout) at T = 3, batch 2: the
    /// engine allocates what the snnmem plan says under every schedule that applies.
    func testBundledSHDNetworkPlanEqualsMeasured() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let profile = try ProfileLoader.load(path: root.appendingPathComponent("profiles/shd-recurrent.yaml").path)
        XCTAssertEqual(profile.inputShape, TensorShape([700]))
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let allocator = CountingAllocator(rounding: .exact)
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: 2, timesteps: 3, allocator: allocator)
            var random = SeededRandom(seed: 12)
            // SHD's inputs are spikes: 0 or 1 per channel and timestep.
            let spikes = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1) < 0.1 ? 1 : 0) }
            _ = try trainer.step(images: spikes, labels: [3, 17])
            let plan = try Planner.plan(profile, strategy: strategy, options: .init(batch: 2, timesteps: 3))
            let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
            XCTAssertNil(comparison.firstDifference, "\(strategy)")
            XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)")
        }
    }
}
