import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// Layer norm: the kernels against the definition and finite differences (with and without affine),
/// then a network with layer norms over a [C, H, W] map and over flat features: whole-network
/// gradients against finite differences, checkpoint and single steps against bptt, and the engine's
/// allocations against the plan under every strategy.
final class LayerNormTests: XCTestCase {
    func testForwardNormalisesEachRowAndKeepsItsStatistics() {
        // Row 0: mean 2.5, biased variance 1.25; row 1: constant, variance 0 (rstd = 1/sqrt(eps)).
        let s = LayerNormShape(rows: 2, features: 4)
        var y = [Double](repeating: .nan, count: 8), mean = [Double](repeating: .nan, count: 2), rstd = mean
        layerNormForward(s, output: &y, mean: &mean, rstd: &rstd, input: [1, 2, 3, 4, 7, 7, 7, 7], gamma: [1, 2, 1, 1],
                         beta: [0, 0, 0, 10], epsilon: 1e-5)
        XCTAssertEqual(mean, [2.5, 7])
        XCTAssertEqual(rstd[0], 1 / (1.25 + 1e-5).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(rstd[1], 1 / (1e-5).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(y[0], -1.5 * rstd[0], accuracy: 1e-12)
        XCTAssertEqual(y[1], 2 * -0.5 * rstd[0], accuracy: 1e-12)
        XCTAssertEqual(y[3], 1.5 * rstd[0] + 10, accuracy: 1e-12)
        XCTAssertEqual(Array(y[4...]), [0, 0, 0, 10])
    }

    func testBackwardMatchesFiniteDifferences() {
        for affine in [true, false] {
            let s = LayerNormShape(rows: 3, features: 10)
            var x = randomArray(30, seed: 91, low: -2, high: 3)
            var gamma = randomArray(10, seed: 92, low: 0.5, high: 1.5)
            var beta = randomArray(10, seed: 93)
            let dOut = randomArray(30, seed: 94)
            func loss(_ x: [Double], _ gamma: [Double], _ beta: [Double]) -> Double {
                var y = [Double](repeating: 0, count: 30), mean = [Double](repeating: 0, count: 3), rstd = mean
                layerNormForward(s, output: &y, mean: &mean, rstd: &rstd, input: x, gamma: affine ? gamma : nil,
                                 beta: affine ? beta : nil, epsilon: 1e-5)
                return dot(y, dOut)
            }
            var y = [Double](repeating: 0, count: 30), mean = [Double](repeating: 0, count: 3), rstd = mean
            layerNormForward(s, output: &y, mean: &mean, rstd: &rstd, input: x, gamma: affine ? gamma : nil, beta: affine ? beta : nil,
                             epsilon: 1e-5)
            var dX = [Double](repeating: .nan, count: 30)
            // Parameter gradients accumulate: start them at 1 and subtract it.
            var dGamma = [Double](repeating: 1, count: 10), dBeta = dGamma
            if affine {
                layerNormBackward(s, dInput: &dX, dGamma: &dGamma, dBeta: &dBeta, dOutput: dOut, input: x, gamma: gamma, mean: mean, rstd: rstd)
            } else {
                layerNormBackward(s, dInput: &dX, dGamma: nil, dBeta: nil, dOutput: dOut, input: x, gamma: nil, mean: mean, rstd: rstd)
            }
            let numX = numericalGradient(&x) { loss($0, gamma, beta) }
            checkTensor("layer norm dInput (affine \(affine))", dX, numX, rtol: fdRtol, atol: fdAtol)
            guard affine else { continue }
            checkTensor("layer norm dGamma", dGamma.map { $0 - 1 }, numericalGradient(&gamma) { loss(x, $0, beta) }, rtol: fdRtol, atol: fdAtol)
            checkTensor("layer norm dBeta", dBeta.map { $0 - 1 }, numericalGradient(&beta) { loss(x, gamma, $0) }, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// [rows, C, N] tokens: each token normalised over its C channels (stride N) as the same kernel
    /// over contiguous rows of the transposed [rows * N, C] values.
    func testTokensNormaliseEachTokensChannelsAsTheTransposedRows() {
        let rows = 2, channels = 3, tokens = 4
        let x = randomArray(rows * channels * tokens, seed: 81, low: -2, high: 3)
        let gamma = randomArray(channels, seed: 82, low: 0.5, high: 1.5), beta = randomArray(channels, seed: 83)
        var y = [Double](repeating: .nan, count: x.count), mean = [Double](repeating: .nan, count: rows * tokens), rstd = mean
        layerNormForward(LayerNormShape(rows: rows, features: channels, tokens: tokens), output: &y, mean: &mean, rstd: &rstd,
                         input: x, gamma: gamma, beta: beta, epsilon: 1e-5)
        // [r][c][n] -> [r][n][c]
        func transposed(_ v: [Double], _ a: Int, _ b: Int) -> [Double] {
            var out = v
            for r in 0..<rows { for i in 0..<a { for j in 0..<b { out[r * a * b + j * a + i] = v[r * a * b + i * b + j] } } }
            return out
        }
        var yT = [Double](repeating: .nan, count: x.count), meanT = mean, rstdT = mean
        layerNormForward(LayerNormShape(rows: rows * tokens, features: channels), output: &yT, mean: &meanT, rstd: &rstdT,
                         input: transposed(x, channels, tokens), gamma: gamma, beta: beta, epsilon: 1e-5)
        checkTensor("token layer norm output", y, transposed(yT, tokens, channels), rtol: 1e-12, atol: 1e-12)
        checkTensor("token layer norm mean", mean, meanT, rtol: 1e-12, atol: 1e-12)
        checkTensor("token layer norm rstd", rstd, rstdT, rtol: 1e-12, atol: 1e-12)
    }

    func testTokenBackwardMatchesFiniteDifferences() {
        for affine in [true, false] {
            let s = LayerNormShape(rows: 2, features: 5, tokens: 3), count = 30
            var x = randomArray(count, seed: 71, low: -2, high: 3)
            var gamma = randomArray(5, seed: 72, low: 0.5, high: 1.5)
            var beta = randomArray(5, seed: 73)
            let dOut = randomArray(count, seed: 74)
            func forward(_ x: [Double], _ gamma: [Double], _ beta: [Double]) -> (y: [Double], mean: [Double], rstd: [Double]) {
                var y = [Double](repeating: 0, count: count), mean = [Double](repeating: 0, count: s.groups), rstd = mean
                layerNormForward(s, output: &y, mean: &mean, rstd: &rstd, input: x, gamma: affine ? gamma : nil,
                                 beta: affine ? beta : nil, epsilon: 1e-5)
                return (y, mean, rstd)
            }
            let (_, mean, rstd) = forward(x, gamma, beta)
            var dX = [Double](repeating: .nan, count: count)
            var dGamma = [Double](repeating: 1, count: 5), dBeta = dGamma
            if affine {
                layerNormBackward(s, dInput: &dX, dGamma: &dGamma, dBeta: &dBeta, dOutput: dOut, input: x, gamma: gamma, mean: mean, rstd: rstd)
            } else {
                layerNormBackward(s, dInput: &dX, dGamma: nil, dBeta: nil, dOutput: dOut, input: x, gamma: nil, mean: mean, rstd: rstd)
            }
            checkTensor("token layer norm dInput (affine \(affine))", dX, numericalGradient(&x) { dot(forward($0, gamma, beta).y, dOut) },
                        rtol: fdRtol, atol: fdAtol)
            guard affine else { continue }
            checkTensor("token layer norm dGamma", dGamma.map { $0 - 1 }, numericalGradient(&gamma) { dot(forward(x, $0, beta).y, dOut) },
                        rtol: fdRtol, atol: fdAtol)
            checkTensor("token layer norm dBeta", dBeta.map { $0 - 1 }, numericalGradient(&beta) { dot(forward(x, gamma, $0).y, dOut) },
                        rtol: fdRtol, atol: fdAtol)
        }
    }

    /// A small token network: layer norms per token after a tokenizer conv, after conv1d and after
    /// spiking self-attention, before tokenmean.
    static let tokenYaml = """
        input: {channels: 2, height: 3, width: 3}
        timesteps: 3
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard}
        layers:
          - conv: {name: conv1, out: 4, kernel: 3, padding: 1}
          - tokens
          - layernorm: {name: ln1}
          - neuron: {name: lif1}
          - residual: {name: attn, main: [attention: {kind: ssa, heads: 2, scale: 0.5, threshold: 0.5}]}
          - layernorm: {name: ln2, affine: false, eps: 1.0e-6}
          - conv1d: {name: fc1, out: 6}
          - layernorm: {name: ln3}
          - neuron: {name: lif2}
          - tokenmean
          - linear: {name: head, out: 10}
        """

    func testTokenNetworkGradientMatchesFiniteDifferencesAndCheckpoint() throws {
        let profile = try ProfileLoader.parse(yaml: Self.tokenYaml, file: "layernorm-tokens.yaml")
        let ln1 = try XCTUnwrap(profile.allLayers.first { $0.path == "ln1" })
        guard case .layerNorm(let spec) = ln1.kind else { return XCTFail("\(ln1.kind)") }
        XCTAssertEqual(spec, LayerNormSpec(normalizedShape: TensorShape([4]), tokens: 9))
        XCTAssertEqual(LayerMemoryTable.declaration(for: ln1).saved.map(\.shape), [TensorShape([9]), TensorShape([9])])
        XCTAssertEqual(LayerMemoryTable.declaration(for: ln1).parameters.map(\.shape), [TensorShape([4]), TensorShape([4])])
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        var random = SeededRandom(seed: 11)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 7)
        XCTAssertTrue(check.checkedPaths.isSuperset(of: ["ln1", "ln3", "conv1", "fc1"]), "\(check.checkedPaths)")
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
        let reference = try gradients(profile, .bptt)
        XCTAssertNotNil(reference["ln3:weight"])
        for segment in [1, 2] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference, try gradients(profile, .checkpoint, segment: segment)),
                              1e-9, "segment \(segment)")
        }
    }

    static let yaml = """
        input: {channels: 2, height: 5, width: 5}
        timesteps: 3
        batch: 3
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard}
        layers:
          - conv: {name: conv1, out: 3, kernel: 3, padding: 1}
          - layernorm: {name: ln1}
          - neuron: {name: lif1}
          - conv: {name: conv2, out: 3, kernel: 3, padding: 1}
          - layernorm: {name: ln2, affine: false, eps: 1.0e-6}
          - neuron: {name: lif2}
          - flatten
          - linear: {name: fc1, out: 12}
          - layernorm: {name: ln3}
          - neuron: {name: lif3}
          - linear: {name: fc2, out: 10}
        """

    func testWholeNetworkGradientMatchesFiniteDifferences() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "layernorm.yaml")
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        var random = SeededRandom(seed: 11)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 7)
        XCTAssertTrue(check.checkedPaths.isSuperset(of: ["ln1", "ln3", "conv1", "conv2"]), "\(check.checkedPaths)")
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
    }

    func gradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil) throws -> [String: [Double]] {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                          allocator: CountingAllocator(rounding: .exact), seed: 3)
        var random = SeededRandom(seed: 5)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        _ = try trainer.lossAndGradients(images: images, labels: labels)
        return trainer.parameterGradients
    }

    func testCheckpointGradientsEqualBPTT() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "layernorm.yaml")
        let reference = try gradients(profile, .bptt)
        XCTAssertNotNil(reference["ln1:weight"])
        XCTAssertNil(reference["ln2:weight"])
        for segment in [1, 2, 3] {
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference, try gradients(profile, .checkpoint, segment: segment)),
                              1e-9, "segment \(segment)")
        }
    }

    /// The engine allocates what the plan declares, event by event, and peaks where it says.
    func testPlanEqualsMeasurementUnderEveryStrategy() throws {
        for yaml in [Self.yaml, Self.tokenYaml] {
            let profile = try ProfileLoader.parse(yaml: yaml, file: "layernorm.yaml")
            for strategy in [Strategy.bptt, .checkpoint, .sltt] {
                let allocator = CountingAllocator(rounding: .exact)
                let trainer = try Trainer<Float>(profile: profile, strategy: strategy, allocator: allocator)
                var random = SeededRandom(seed: 7)
                let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(-0.5, 1.5)) }
                let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
                let result = try trainer.step(images: images, labels: labels)
                XCTAssertTrue(result.loss.isFinite)
                let plan = try Planner.plan(profile, strategy: strategy, options: .init())
                let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
                XCTAssertNil(comparison.firstDifference, "\(strategy)")
                XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)")
            }
        }
    }

    /// What each runtime keeps: the engine and PyTorch the input and a float32 mean and rstd per
    /// sample and timestep; PyTorch's CPU backward also a [2 * threads, N] partials buffer.
    func testLayoutsDeclareInputAndStatistics() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "layernorm.yaml")
        let ln1 = try XCTUnwrap(profile.allLayers.first { $0.path == "ln1" })
        let engine = LayerMemoryTable.declaration(for: ln1)
        XCTAssertTrue(engine.keepsInput)
        XCTAssertEqual(engine.saved.map(\.name), ["mean", "rstd"])
        XCTAssertEqual(engine.parameters.map(\.shape), [TensorShape([3, 5, 5]), TensorShape([3, 5, 5])])
        let ln2 = try XCTUnwrap(profile.allLayers.first { $0.path == "ln2" })
        XCTAssertTrue(LayerMemoryTable.declaration(for: ln2).parameters.isEmpty)
        let cpu = PyTorchLayerTable.layout(for: ln1, device: .cpu)
        XCTAssertTrue(cpu.backward.contains { if case .allocatePerThread = $0 { return true }; return false })
        XCTAssertFalse(PyTorchLayerTable.layout(for: ln2, device: .cpu).backward.contains { if case .allocatePerThread = $0 { return true }; return false })
        XCTAssertFalse(PyTorchLayerTable.layout(for: ln1, device: .cuda).backward.contains { if case .allocatePerThread = $0 { return true }; return false })
        // The partials buffer grows with PyTorch's threads: 2 x threads x 75 floats for ln1.
        let one = try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU, cpuThreads: 1))
        let four = try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU, cpuThreads: 4))
        XCTAssertEqual(one.activationBytes, four.activationBytes)
        let partials = { (plan: MemoryPlan) in plan.tensors.filter { $0.descriptor.name == "gamma_beta.partials" }.map(\.bytes) }
        XCTAssertEqual(partials(one).max(), 2 * 1 * 75 * 4)
        XCTAssertEqual(partials(four).max(), 2 * 4 * 75 * 4)
    }

    /// CUDA's autocast runs layer_norm in float32 (and the next layers on its float32 output), which is not
    /// modelled: pytorch-cuda refuses it with that reason and the layer's path. The CPU's runs it in the half
    /// input's dtype: pytorch-cpu keeps float32 statistics for an affine norm (mixed-type kernel), half ones
    /// without affine, and reduces the weight gradients through a half buffer; the engine plans it too.
    func testAutocastIsRefusedOnCUDAOnly() throws {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "layernorm.yaml")
        XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCUDA, dtype: .bfloat16))) { error in
            XCTAssertTrue("\(error)".contains("layer norm 'ln1' under bfloat16 autocast"), "\(error)")
            XCTAssertTrue("\(error)".contains("--runtime pytorch-cpu"), "\(error)")
        }
        XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCUDA)))
        let cpu = try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU, dtype: .bfloat16))
        let statistics = { (layer: String) in
            Set(cpu.tensors.filter { $0.descriptor.layerPath == layer && ["mean", "rstd"].contains($0.descriptor.name) }.map(\.descriptor.dtype))
        }
        XCTAssertEqual(statistics("ln1"), [.float32])
        XCTAssertEqual(statistics("ln2"), [.bfloat16])
        XCTAssertEqual(statistics("ln3"), [.float32])
        let partials = cpu.tensors.filter { $0.descriptor.name == "gamma_beta.partials" }
        XCTAssertEqual(Set(partials.map(\.descriptor.layerPath)), ["ln1", "ln3"])
        XCTAssertEqual(Set(partials.map(\.descriptor.dtype)), [.bfloat16])
        XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .snnmem, dtype: .bfloat16)))
    }

    /// On [C, N] tokens PyTorch normalises a transposed view; what a conv2d makes of the transposed
    /// gradient `tokens` passes back to it was not measured: the PyTorch runtimes refuse ln1 naming
    /// both layers (TokenLayerNormLayoutTests has the neighbours that were); the engine plans it.
    func testTokensBesideUnmeasuredLayersAreRefusedOnThePyTorchRuntimesOnly() throws {
        let profile = try ProfileLoader.parse(yaml: Self.tokenYaml, file: "layernorm-tokens.yaml")
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: runtime))) { error in
                XCTAssertTrue("\(error)".contains("layer norm 'ln1' over [C, N] tokens"), "\(error)")
                XCTAssertTrue("\(error)".contains("through 'tokens' to 'conv1' (conv)"), "\(error)")
                XCTAssertTrue("\(error)".contains("--runtime snnmem"), "\(error)")
            }
        }
        XCTAssertNoThrow(try Planner.plan(profile, strategy: .sltt, options: .init(runtime: .snnmem)))
    }
}
