import Allocator
import CKernels
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// The convolutions' spike products (`SpikeProducts`): forward and weight gradient from the input's
/// nonzeros give the dense GEMM's results (to the order of the additions) on the bundled networks'
/// conv shapes, per-sample and grouped, at every instruction-set level this processor has; the path
/// is taken only where it applies and pays; its scratch is released with its thread.
final class SpikeProductsTests: XCTestCase {
    /// CIFARNet's conv2 and conv3 (per sample on the lanes), its conv4 (8x8: 4 samples a GEMM) and
    /// VGG-11's 4x4 and 2x2 convs (grouped), at small batches; one with a bias.
    static let shapes: [(name: String, shape: Conv2DShape, bias: Bool)] = [
        ("cifarnet conv2 64->128 32x32", Conv2DShape(batch: 2, inChannels: 64, outChannels: 128, height: 32, width: 32, kernel: 3, padding: 1), true),
        ("cifarnet conv3 128->256 16x16", Conv2DShape(batch: 3, inChannels: 128, outChannels: 256, height: 16, width: 16, kernel: 3, padding: 1), false),
        ("cifarnet conv4 256->256 8x8 (grouped)", Conv2DShape(batch: 5, inChannels: 256, outChannels: 256, height: 8, width: 8, kernel: 3, padding: 1), false),
        ("vgg11 conv6 512->512 4x4 (grouped)", Conv2DShape(batch: 3, inChannels: 512, outChannels: 512, height: 4, width: 4, kernel: 3, padding: 1), false),
        ("vgg11 conv8 512->512 2x2 (grouped)", Conv2DShape(batch: 2, inChannels: 512, outChannels: 512, height: 2, width: 2, kernel: 3, padding: 1), true),
    ]

    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in Float(random.uniform(-1, 1)) }
    }

    /// Spikes: 1 with probability `density`, else 0; `pooled` gives 2x2-average-pooled spikes instead
    /// (0, 0.25, 0.5, 0.75 or 1).
    static func spikes(_ count: Int, density: Double, pooled: Bool = false, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            guard pooled else { return random.uniform(0, 1) < density ? 1 : 0 }
            return Float((0..<4).filter { _ in random.uniform(0, 1) < density }.count) / 4
        }
    }

    struct Results {
        var output: [Float], dInput: [Float], dWeight: [Float], dBias: [Float]
    }

    /// Forward and backward of `s` on `input` with the spike products in `mode`.
    static func run(_ s: Conv2DShape, input: [Float], bias: Bool, mode: SpikeProducts.Mode) -> Results {
        let weight = values(s.weightCount, seed: 11), biasValues = values(s.outChannels, seed: 12)
        let dOutput = values(s.outputCount, seed: 13)
        var output = [Float](repeating: .nan, count: s.outputCount), dInput = [Float](repeating: .nan, count: s.inputCount)
        var dWeight = values(s.weightCount, seed: 14), dBias = values(s.outChannels, seed: 15)  // accumulated into
        var workspace = [Float](repeating: .nan, count: s.workspaceCount)
        SpikeProducts.withMode(mode) {
            biasValues.withUnsafeBufferPointer { biasPointer in
                conv2dForward(s, output: &output, input: input, weight: weight, bias: bias ? biasPointer.baseAddress : nil,
                              workspace: &workspace)
            }
            dBias.withUnsafeMutableBufferPointer { dBiasPointer in
                conv2dBackward(s, dInput: &dInput, dWeight: &dWeight, dBias: bias ? dBiasPointer.baseAddress : nil, dOutput: dOutput,
                               input: input, weight: weight, workspace: &workspace)
            }
        }
        return Results(output: output, dInput: dInput, dWeight: dWeight, dBias: dBias)
    }

    /// Runs `s` with the path off and always taken, and compares; asserts that the second run took
    /// the path for forward and weight gradient, and the first did not.
    func assertAgrees(_ name: String, _ s: Conv2DShape, input: [Float], bias: Bool, file: StaticString = #filePath, line: UInt = #line) {
        let before = SpikeProducts.statistics
        let dense = Self.run(s, input: input, bias: bias, mode: .off)
        let afterDense = SpikeProducts.statistics
        XCTAssertEqual(afterDense, before, "\(name): the dense run does not count or take the path", file: file, line: line)
        let sparse = Self.run(s, input: input, bias: bias, mode: .always)
        let after = SpikeProducts.statistics
        XCTAssertEqual(after.forwardSparseCalls, before.forwardSparseCalls + 1, "\(name): forward took the path", file: file, line: line)
        XCTAssertEqual(after.weightGradientSparseCalls, before.weightGradientSparseCalls + 1, "\(name): the weight gradient took the path",
                       file: file, line: line)
        // Float sums of up to Cin*9 terms in another order: relative to each tensor's scale.
        func compare(_ what: String, _ a: [Float], _ b: [Float]) {
            let scale = Double(b.map { abs($0) }.max() ?? 1)
            checkTensor("\(name) \(what)", a.map(Double.init), b.map(Double.init), rtol: 1e-5, atol: 2e-6 * max(scale, 1),
                        file: file, line: line)
        }
        compare("output", sparse.output, dense.output)
        compare("dWeight", sparse.dWeight, dense.dWeight)
        compare("dInput", sparse.dInput, dense.dInput)
        compare("dBias", sparse.dBias, dense.dBias)
    }

    func testSpikeProductsAgreeWithTheDenseGEMMOnTheBundledShapes() {
        for (index, entry) in Self.shapes.enumerated() {
            let input = Self.spikes(entry.shape.inputCount, density: 0.08, seed: UInt64(20 + index))
            assertAgrees(entry.name, entry.shape, input: input, bias: entry.bias)
        }
    }

    /// Average-pooled spikes (CIFARNet's conv3 and conv4 read them): values other than 0 and 1.
    func testPooledSpikesAgreeWithTheDenseGEMM() {
        for entry in [Self.shapes[1], Self.shapes[3]] {
            let input = Self.spikes(entry.shape.inputCount, density: 0.05, pooled: true, seed: 31)
            XCTAssertTrue(input.contains(0.25) || input.contains(0.75), "holds values between 0 and 1")
            assertAgrees(entry.name + " pooled", entry.shape, input: input, bias: entry.bias)
        }
    }

    /// Other stride-1 shapes the kernels take: pointwise (no im2col; T-RevSNN's 1x1 convs), unpadded,
    /// a 5x5 window wider than part of the map, a batch of one.
    func testOtherStrideOneShapesAgree() {
        let shapes = [
            ("1x1 pointwise 32->64 @8x8", Conv2DShape(batch: 3, inChannels: 32, outChannels: 64, height: 8, width: 8, kernel: 1)),
            ("3x3 unpadded 16->32 @9x9", Conv2DShape(batch: 2, inChannels: 16, outChannels: 32, height: 9, width: 9, kernel: 3)),
            ("5x5 pad 2 16->16 @3x12", Conv2DShape(batch: 2, inChannels: 16, outChannels: 16, height: 3, width: 12, kernel: 5, padding: 2)),
            ("3x3 pad 1 16->48 @12x12, batch 1", Conv2DShape(batch: 1, inChannels: 16, outChannels: 48, height: 12, width: 12, kernel: 3, padding: 1)),
        ]
        for (index, (name, shape)) in shapes.enumerated() {
            assertAgrees(name, shape, input: Self.spikes(shape.inputCount, density: 0.15, seed: UInt64(60 + index)), bias: index % 2 == 0)
        }
    }

    /// AVX-512, AVX2 and the baseline kernels (those this processor has), as SNNMEM_ISA selects them.
    func testEveryInstructionSetLevelAgrees() {
        defer { _ = snn_kernels_set_level(snn_kernels_best_level()) }
        let levels = [SNN_KERNELS_BASELINE, SNN_KERNELS_AVX2, SNN_KERNELS_AVX512].filter { $0.rawValue <= snn_kernels_best_level().rawValue }
        XCTAssertTrue(levels.contains(SNN_KERNELS_BASELINE))
        for level in levels {
            XCTAssertTrue(snn_kernels_set_level(level))
            let name = String(cString: snn_kernels_level_name(level))
            for entry in [Self.shapes[0], Self.shapes[2]] {
                let input = Self.spikes(entry.shape.inputCount, density: 0.1, seed: 41)
                assertAgrees("\(name) \(entry.name)", entry.shape, input: input, bias: entry.bias)
            }
        }
    }

    /// A dense input (an image) is counted and left to the GEMM; shapes the kernels do not take are
    /// not even counted.
    func testDenseInputsAndOtherShapesKeepTheGEMM() {
        let s = Self.shapes[0].shape
        let image = (0..<s.inputCount).map { Float($0 % 7 + 1) / 8 }
        let before = SpikeProducts.statistics
        let dense = Self.run(s, input: image, bias: false, mode: .whenCheaper)
        let after = SpikeProducts.statistics
        XCTAssertEqual(after.forwardCalls, before.forwardCalls + 1)
        XCTAssertEqual(after.forwardSparseCalls, before.forwardSparseCalls, "every input nonzero: the dense GEMM is cheaper")
        XCTAssertEqual(after.weightGradientSparseCalls, before.weightGradientSparseCalls)
        XCTAssertFalse(dense.output.contains { $0.isNaN })
        for other in [Conv2DShape(batch: 2, inChannels: 16, outChannels: 32, height: 8, width: 8, kernel: 3, stride: 2, padding: 1),
                      Conv2DShape(batch: 2, inChannels: 16, outChannels: 32, height: 8, width: 8, kernel: 3, padding: 1, groups: 2),
                      Conv2DShape(batch: 2, inChannels: 16, outChannels: 10, height: 8, width: 8, kernel: 3, padding: 1)] {
            let counted = SpikeProducts.statistics
            _ = Self.run(other, input: Self.spikes(other.inputCount, density: 0.05, seed: 5), bias: false, mode: .always)
            XCTAssertEqual(SpikeProducts.statistics, counted, "stride \(other.stride), groups \(other.groups), Cout \(other.outChannels)")
        }
    }

    /// The scratch (transposed weight, work areas) is mapped outside jemalloc per calling thread and
    /// unmapped when that thread exits.
    /// The planner declares a weight panel (`SpikePanel`) for exactly the convs the kernels take: every
    /// conv of the bundled profiles, and shapes each condition turns away (stride, groups, Cout not a
    /// multiple of 16, padding as large as the kernel).
    func testPlannedPanelsAreTheConvsTheKernelsTake() throws {
        var convs: [(name: String, spec: ConvSpec, height: Int, width: Int)] = [
            ("stride 2", ConvSpec(inChannels: 16, outChannels: 32, kernel: 3, stride: 2, padding: 1), 8, 8),
            ("two groups", ConvSpec(inChannels: 16, outChannels: 32, kernel: 3, padding: 1, groups: 2), 8, 8),
            ("Cout 24", ConvSpec(inChannels: 16, outChannels: 24, kernel: 3, padding: 1), 8, 8),
            ("padding 3 of a 3x3", ConvSpec(inChannels: 16, outChannels: 32, kernel: 3, padding: 3), 8, 8),
            ("1x1", ConvSpec(inChannels: 16, outChannels: 32, kernel: 1), 8, 8),
        ]
        for name in ["cifarnet", "vgg11", "resnet19", "sew-resnet34", "spiking-unet", "trevsnn-cifar", "revsresnet21", "cifar10dvs"] {
            let profile = try EngineMemoryTests.bundled(name)
            for layer in ParameterLayout.flatten(profile.layers + (profile.trevsnnNetwork.map { net in
                net.levels.flatMap { $0.down + $0.up + $0.blocks } + net.head } ?? [])) {
                if case .conv(let spec) = layer.kind {
                    convs.append(("\(name) \(layer.path)", spec, layer.inputShape.dims[1], layer.inputShape.dims[2]))
                }
            }
        }
        var declared = 0
        for conv in convs {
            let input = TensorShape([conv.spec.inChannels, conv.height, conv.width])
            let planned = SpikePanel.shape(conv.spec, input: input)
            let takes = SpikeProducts.takes(Conv2DShape(conv.spec, batch: 1, height: conv.height, width: conv.width))
            XCTAssertEqual(planned != nil, takes, conv.name)
            if let planned {
                XCTAssertEqual(planned.dims, [conv.spec.inChannels * conv.spec.kernel * conv.spec.kernel, conv.spec.outChannels], conv.name)
                declared += 1
            }
        }
        XCTAssertGreaterThan(declared, 20)
        XCTAssertLessThan(declared, convs.count)
    }

    func testScratchIsReleasedWhenItsThreadExits() {
        let s = Self.shapes[0].shape
        let input = Self.spikes(s.inputCount, density: 0.05, seed: 7)
        let ran = expectation(description: "conv on a new thread")
        nonisolated(unsafe) var liveBefore = 0, liveDuring = 0
        let thread = Thread {
            liveBefore = snn_sparse_conv_live_scratch()
            _ = Self.run(s, input: input, bias: false, mode: .always)
            liveDuring = snn_sparse_conv_live_scratch()
            ran.fulfill()
        }
        thread.start()
        wait(for: [ran], timeout: 30)
        XCTAssertEqual(liveDuring, liveBefore + 1, "the thread mapped its own scratch")
        // Thread exit runs the key's destructor after the block returns; poll briefly for it.
        for _ in 0..<400 where snn_sparse_conv_live_scratch() >= liveDuring { usleep(5_000) }
        XCTAssertLessThan(snn_sparse_conv_live_scratch(), liveDuring, "the exited thread's scratch was unmapped")
    }

    /// One CIFARNet training step (bptt and checkpoint, batch 2) with the spike products and without:
    /// the convolutions after the first take the path, the loss and every gradient agree to Float
    /// rounding, checkpoint's recomputation gives bptt's gradients, and the engine allocates exactly
    /// what the plan says (the path's scratch is not a tensor).
    func testCIFARNetStepAgreesWithAndWithoutTheSpikeProducts() throws {
        #if DEBUG
        throw XCTSkip("runs in release builds (swift test -c release), as CI does")
        #endif
        let profile = try EngineMemoryTests.bundled("cifarnet")
        let batch = 2
        var results: [(name: String, loss: Double, gradients: [String: [Float]])] = []
        for strategy in [Strategy.bptt, .checkpoint] {
            let plan = try Planner.plan(profile, strategy: strategy, options: .init(batch: batch))
            for spikes in [false, true] {
                let name = "\(strategy.rawValue), spike products \(spikes ? "on" : "off")"
                let allocator = CountingAllocator(rounding: .exact)
                let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: batch, allocator: allocator)
                var random = SeededRandom(seed: 3)
                let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1)) }
                let labels = (0..<batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
                let before = SpikeProducts.statistics
                let loss = try SpikeProducts.withMode(spikes ? .whenCheaper : .off) { try trainer.lossAndGradients(images: images, labels: labels).loss }
                let taken = SpikeProducts.statistics.forwardSparseCalls - before.forwardSparseCalls
                let gradientsTaken = SpikeProducts.statistics.weightGradientSparseCalls - before.weightGradientSparseCalls
                if spikes {
                    // conv2 and conv3 at each of the 4 timesteps at least (conv4's 8x8 maps at batch 2 may stay
                    // dense: its weight's transpose costs more there than it saves); forward and weight
                    // gradient decide alike on the same inputs (checkpoint recomputes some forwards).
                    XCTAssertGreaterThanOrEqual(gradientsTaken, 8, name)
                    XCTAssertGreaterThanOrEqual(taken, gradientsTaken, name)
                    if strategy == .bptt { XCTAssertEqual(taken, gradientsTaken, name) }
                } else {
                    XCTAssertEqual(taken + gradientsTaken, 0, name)
                }
                XCTAssertEqual(allocator.recorder.requested.peakBytes, plan.peakBytes, "\(name): measured peak == predicted")
                results.append((name, loss, trainer.parameterGradients))
                // The kept panels: one tracked tensor per conv whose shape the kernels take, on or off (all four
                // convs of CIFARNet: 960,192 floats), allocated with the parameters and in the plan's peak.
                XCTAssertEqual(trainer.spikePanelCount, 4, name)
                XCTAssertEqual(trainer.spikePanelBytes, 960_192 * 4, name)
                let planned = plan.tensors.filter { $0.descriptor.name == SpikePanel.name }
                XCTAssertEqual(planned.map(\.descriptor.bytes).reduce(0, +), trainer.spikePanelBytes, name)
                XCTAssertTrue(planned.allSatisfy { $0.persistent && $0.descriptor.role == .workspace }, name)
            }
        }
        let reference = results[0]
        XCTAssertTrue(reference.loss.isFinite)
        for other in results.dropFirst() {
            XCTAssertEqual(other.loss, reference.loss, accuracy: 1e-5 * abs(reference.loss), "\(other.name) against \(reference.name)")
            for (key, gradient) in other.gradients.sorted(by: { $0.key < $1.key }) {
                checkTensor("\(other.name) \(key)", gradient.map(Double.init), reference.gradients[key]!.map(Double.init), rtol: 1e-3, atol: 1e-5)
            }
        }
    }
}
