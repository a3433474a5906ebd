import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// Spiking transformers in the engine: conv1d, the token mean and Spikformer's attention products
/// against finite differences, a small transformer's gradients against finite differences and
/// between schedules, and its planned allocations against the engine's.
final class TransformerTests: XCTestCase {
    /// Every token layer: a stem, tokens, an SSA block (2 heads of 4 channels over 16 tokens), an
    /// SDSA block behind its shortcut neuron, an MLP block of conv1d, batch norm and neurons, the token mean and a head. No detached reset
    /// (finite differences cannot check that approximation; the neuron kernel tests do).
    static let yaml = """
        input: {channels: 2, height: 4, width: 4}
        timesteps: 3
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard, surrogate: {type: sigmoid, alpha: 4.0}}
        layers:
          - conv: {name: stem, out: 8, kernel: 3, padding: 1}
          - batchnorm: {name: stem_bn}
          - neuron: {name: stem_lif}
          - tokens
          - residual: {name: attn, main: [attention: {name: ssa, heads: 2, scale: 0.25, threshold: 0.3}]}
          - residual: {name: sd, main: [neuron: {name: shortcut_lif}, attention: {name: sdsa, kind: sdsa, heads: 2, threshold: 0.3}]}
          - residual:
              name: mlp
              main:
                - conv1d: {name: fc1, out: 12}
                - batchnorm: {name: fc1_bn}
                - neuron: {name: fc1_lif}
                - conv1d: {name: fc2, out: 8}
          - tokenmean
          - linear: {name: head, out: 3}
        """

    func profile() throws -> Profile { try ProfileLoader.parse(yaml: Self.yaml, file: "transformer.yaml") }

    // MARK: Kernels

    func testConv1DGradientsMatchFiniteDifferences() {
        let s = Conv1DShape(batch: 2, inChannels: 3, outChannels: 4, tokens: 5)
        var input = randomArray(30, seed: 1), weight = randomArray(12, seed: 2), bias = randomArray(4, seed: 3)
        let dOut = randomArray(40, seed: 4)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var out = [Double](repeating: 0, count: 40)
            conv1dForward(s, output: &out, input: x, weight: w, bias: b)
            return dot(out, dOut)
        }
        var dInput = [Double](repeating: 0, count: 30), dWeight = [Double](repeating: 0, count: 12), dBias = [Double](repeating: 0, count: 4)
        conv1dBackward(s, dInput: &dInput, dWeight: &dWeight, dBias: &dBias, dOutput: dOut, input: input, weight: weight)
        checkTensor("conv1d dInput", dInput, numericalGradient(&input) { loss($0, weight, bias) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("conv1d dWeight", dWeight, numericalGradient(&weight) { loss(input, $0, bias) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("conv1d dBias", dBias, numericalGradient(&bias) { loss(input, weight, $0) }, rtol: fdRtol, atol: fdAtol)
        // A 1-token conv1d is a linear layer.
        var out = [Double](repeating: 0, count: 8), linear = [Double](repeating: 0, count: 8)
        let one = Conv1DShape(batch: 2, inChannels: 3, outChannels: 4, tokens: 1)
        conv1dForward(one, output: &out, input: Array(input[0..<6]), weight: weight, bias: bias)
        linearForward(LinearShape(batch: 2, inFeatures: 3, outFeatures: 4), output: &linear, input: Array(input[0..<6]), weight: weight, bias: bias)
        checkTensor("conv1d as linear", out, linear, rtol: 1e-12, atol: 1e-12)
    }

    func testTokenMeanGradientMatchesFiniteDifferences() {
        var input = randomArray(24, seed: 5)
        let dOut = randomArray(4, seed: 6)
        var dInput = [Double](repeating: 0, count: 24)
        tokenMeanBackward(rows: 4, tokens: 6, dInput: &dInput, dOutput: dOut)
        checkTensor("tokenmean dInput", dInput, numericalGradient(&input) { x in
            var out = [Double](repeating: 0, count: 4)
            tokenMeanForward(rows: 4, tokens: 6, output: &out, input: x)
            return dot(out, dOut)
        }, rtol: fdRtol, atol: fdAtol)
    }

    func testAttentionProductsAreSpikformersAndTheirGradientsMatchFiniteDifferences() {
        let s = AttentionShape(batch: 2, heads: 3, width: 2, tokens: 4, scale: 0.125)
        let count = 2 * 6 * 4
        var q = randomArray(count, seed: 7), k = randomArray(count, seed: 8), v = randomArray(count, seed: 9)
        let dOut = randomArray(count, seed: 10)
        func run(_ q: [Double], _ k: [Double], _ v: [Double]) -> (output: [Double], map: [Double]) {
            var out = [Double](repeating: 0, count: count), map = [Double](repeating: 0, count: 2 * 3 * 16)
            attentionForward(s, output: &out, attention: &map, q: q, k: k, v: v)
            return (out, map)
        }
        // The products written out: attn[n][m] = scale Σ_d q[d][n] k[d][m], out[d][n] = Σ_m attn[n][m] v[d][m].
        let (out, _) = run(q, k, v)
        var reference = [Double](repeating: 0, count: count)
        for b in 0..<2 { for h in 0..<3 { for d in 0..<2 { for n in 0..<4 {
            let row = { (t: [Double], c: Int, i: Int) in t[b * 24 + (h * 2 + c) * 4 + i] }
            var sum = 0.0
            for m in 0..<4 {
                var a = 0.0
                for c in 0..<2 { a += row(q, c, n) * row(k, c, m) }
                sum += 0.125 * a * row(v, d, m)
            }
            reference[b * 24 + (h * 2 + d) * 4 + n] = sum
        } } } }
        checkTensor("attention output", out, reference, rtol: 1e-12, atol: 1e-12)
        let (_, map) = run(q, k, v)
        var dQ = [Double](repeating: 0, count: count), dK = dQ, dV = dQ, work = [Double](repeating: 0, count: 16)
        attentionBackward(s, dQ: &dQ, dK: &dK, dV: &dV, mapWork: &work, dOutput: dOut, attention: map, q: q, k: k, v: v)
        checkTensor("attention dq", dQ, numericalGradient(&q) { dot(run($0, k, v).output, dOut) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("attention dk", dK, numericalGradient(&k) { dot(run(q, $0, v).output, dOut) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("attention dv", dV, numericalGradient(&v) { dot(run(q, k, $0).output, dOut) }, rtol: fdRtol, atol: fdAtol)
    }

    func testSDSAProductsAndTheirGradientsMatchFiniteDifferences() {
        var k = randomArray(12, seed: 12), v = randomArray(12, seed: 13), q = randomArray(12, seed: 14), spikes = randomArray(3, seed: 15)
        let dSums = randomArray(3, seed: 16), dOut = randomArray(12, seed: 17)
        func sums(_ k: [Double], _ v: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: 3)
            columnSumForward(rows: 3, tokens: 4, sums: &out, k: k, v: v)
            return out
        }
        func gate(_ q: [Double], _ s: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: 12)
            gateForward(rows: 3, tokens: 4, output: &out, q: q, spikes: s)
            return out
        }
        var expected = [Double](repeating: 0, count: 3)
        for r in 0..<3 { for n in 0..<4 { expected[r] += k[r * 4 + n] * v[r * 4 + n] } }
        checkTensor("column sums", sums(k, v), expected, rtol: 1e-12, atol: 1e-12)
        var dK = [Double](repeating: 0, count: 12), dV = dK, dQ = dK, dSpikes = [Double](repeating: 0, count: 3)
        columnSumBackward(rows: 3, tokens: 4, dK: &dK, dV: &dV, dSums: dSums, k: k, v: v)
        checkTensor("column sums dk", dK, numericalGradient(&k) { dot(sums($0, v), dSums) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("column sums dv", dV, numericalGradient(&v) { dot(sums(k, $0), dSums) }, rtol: fdRtol, atol: fdAtol)
        gateBackward(rows: 3, tokens: 4, dQ: &dQ, dSpikes: &dSpikes, dOutput: dOut, q: q, spikes: spikes)
        checkTensor("gate dq", dQ, numericalGradient(&q) { dot(gate($0, spikes), dOut) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("gate dspikes", dSpikes, numericalGradient(&spikes) { dot(gate(q, $0), dOut) }, rtol: fdRtol, atol: fdAtol)
    }

    // MARK: The whole network

    func testWholeTransformerGradientMatchesFiniteDifferences() throws {
        let profile = try profile()
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        var random = SeededRandom(seed: 11)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 5)
        XCTAssertTrue(trainer.trainableParameters.contains { $0.path.hasSuffix("ssa/q_conv") })
        XCTAssertTrue(trainer.trainableParameters.contains { $0.path.hasSuffix("sdsa/k_conv") })
        XCTAssertGreaterThan(check.checked, 100)
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
        print("transformer finite differences: \(check.checked) entries, worst relative error \(check.worstRelative) at \(check.worst)")
    }

    func gradients(_ profile: Profile, _ strategy: Strategy, pathCut: Bool = false) throws -> (loss: Double, gradients: [String: [Double]]) {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, allocator: CountingAllocator(rounding: .exact), seed: 4)
        trainer.bpttWithTemporalPathCut = pathCut
        var random = SeededRandom(seed: 8)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 2) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let loss = try trainer.lossAndGradients(images: images, labels: labels).loss
        let out = trainer.parameterGradients
        return (loss, out)
    }

    func testSchedulesAgree() throws {
        let profile = try profile()
        let (bpttLoss, bptt) = try gradients(profile, .bptt)
        let (checkpointLoss, checkpoint) = try gradients(profile, .checkpoint)
        XCTAssertEqual(checkpointLoss, bpttLoss, accuracy: 1e-12)
        XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, checkpoint), 1e-9)
        let (slttLoss, sltt) = try gradients(profile, .sltt)
        let (cutLoss, cut) = try gradients(profile, .bptt, pathCut: true)
        XCTAssertEqual(slttLoss, cutLoss, accuracy: 1e-12)
        XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(sltt, cut), 1e-10)
        XCTAssertGreaterThan(NetworkGradientTests.maxRelativeDifference(sltt, bptt), 1e-3)
    }

    func testPlanMatchesTheEngineEveryStrategy() throws {
        let profile = try profile()
        for strategy in [Strategy.bptt, .sltt, .checkpoint] {
            try assertPlanMatches(profile, strategy)
        }
        try assertPlanMatches(profile, .checkpoint, timesteps: 5)
        // What the engine keeps for the attention: q, k, v and the scaled map, per timestep.
        let plan = try Planner.plan(profile, strategy: .bptt)
        let kept = plan.savedBytesByLayer { _ in true }.first { $0.layer == "attn/main/ssa" }?.bytes
        XCTAssertEqual(kept, 3 * (3 * 2 * 8 * 16 * 4) + 3 * 2 * 2 * 16 * 16 * 4)
        // SDSA keeps q, k, v and the spikes of the column sums.
        let keptSDSA = plan.savedBytesByLayer { _ in true }.first { $0.layer == "sd/main/sdsa" }?.bytes
        XCTAssertEqual(keptSDSA, 3 * (3 * 2 * 8 * 16 * 4) + 3 * 2 * 8 * 4)
    }

    /// Every allocation and free of a step as planned, and the same peak (PlannedVersusMeasuredTests' check).
    func assertPlanMatches(_ profile: Profile, _ strategy: Strategy, timesteps: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let allocator = CountingAllocator(rounding: .exact)
        let trainer = try Trainer<Float>(profile: profile, strategy: strategy, timesteps: timesteps, allocator: allocator)
        var random = SeededRandom(seed: 7)
        let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1.5)) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        XCTAssertTrue(try trainer.step(images: images, labels: labels).loss.isFinite, file: file, line: line)
        let plan = try Planner.plan(profile, strategy: strategy, options: .init(timesteps: timesteps))
        let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
        XCTAssertNil(comparison.firstDifference, "\(strategy)", file: file, line: line)
        XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)", file: file, line: line)
    }

    func testBundledSpikformerPlansOnTheEngine() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let spikformer = try ProfileLoader.load(path: root.appendingPathComponent("profiles/spikformer-4-384.yaml").path)
        let engine = try Planner.plan(spikformer, strategy: .bptt, options: .init(batch: 2, timesteps: 2))
        let pytorch = try Planner.plan(spikformer, strategy: .bptt, options: .init(batch: 2, timesteps: 2, runtime: .pytorchCPU))
        // The engine reads the heads in place and keeps no neuron temporaries: less than PyTorch keeps.
        XCTAssertLessThan(engine.activationBytes, pytorch.activationBytes)
        XCTAssertGreaterThan(engine.activationBytes, 0)
    }
}
