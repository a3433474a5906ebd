import MemoryModel
import Planner
import Profiles
import XCTest

/// The PyTorch runtimes' declarations on the tiny profile (conv 1->2 on 1x4x4, LIF, flatten,
/// linear 32->3; T = 2, batch 2), every byte worked out by hand.
final class PyTorchLayoutTests: XCTestCase {
    func plan(_ runtime: Runtime, _ strategy: Strategy = .bptt) throws -> MemoryPlan {
        try Planner.plan(try Fixtures.tiny(), strategy: strategy, options: .init(runtime: runtime))
    }

    func saved(_ plan: MemoryPlan) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: plan.savedBytesByLayer.map { ($0.layer, $0.bytes) })
    }

    func testCPUKeepsTheNeuronLoopsTensorsPerTimestep() throws {
        let plan = try plan(.pytorchCPU)
        XCTAssertEqual(plan.runtime, .pytorchCPU)
        // conv keeps x_seq = images repeated: [T=2, B=2, 1, 4, 4] floats.
        // lif keeps per timestep h - threshold, h and 1 - s, [B=2, 2, 4, 4] each: 3 x 2 x 256 B.
        // fc keeps the spikes [T*B, 32]; the loss keeps log_softmax [2, 3] and total_weight.
        XCTAssertEqual(saved(plan), ["conv": 256, "lif": 1536, "fc": 512, "loss": 28])
    }

    func testCUDAFusedNeuronKeepsItsInputVInitAndHSeq() throws {
        // lif keeps x_seq (the conv's output, [2, 2, 2, 4, 4]), v_init [2, 2, 4, 4] and h_seq.
        XCTAssertEqual(saved(try plan(.pytorchCUDA)), ["conv": 256, "lif": 512 + 256 + 512, "fc": 512, "loss": 28])
    }

    func testSoftResetAndDetachResetKeepLessOnTheCPU() throws {
        let soft = try ProfileLoader.parse(yaml: Fixtures.tinyYAML.replacingOccurrences(of: "- neuron: {name: lif}",
                                                                                    with: "- neuron: {name: lif, reset: soft}"), file: "soft.yaml")
        let detached = try ProfileLoader.parse(yaml: Fixtures.tinyYAML.replacingOccurrences(of: "- neuron: {name: lif}",
                                                                                        with: "- neuron: {name: lif, detachReset: true}"),
                                           file: "detached.yaml")
        let softPlan = try Planner.plan(soft, strategy: .bptt, options: .init(runtime: .pytorchCPU))
        let detachedPlan = try Planner.plan(detached, strategy: .bptt, options: .init(runtime: .pytorchCPU))
        XCTAssertEqual(saved(softPlan)["lif"], 2 * 256, "soft reset: h - threshold only")
        XCTAssertEqual(saved(detachedPlan)["lif"], 2 * 2 * 256, "detach_reset: h - threshold and 1 - s")
    }

    func testGradientsAppearInBackwardAndLabelsAreInt64() throws {
        let plan = try plan(.pytorchCPU)
        let setup = plan.events.prefix { $0.phase == .setup }
        XCTAssertFalse(setup.contains { $0.role == .gradient }, "zero_grad(set_to_none=True) left no gradients")
        XCTAssertTrue(plan.events.contains { $0.role == .gradient && $0.kind == .allocate }, "backward creates them")
        let labels = try XCTUnwrap(plan.tensors.first { $0.descriptor.name == "labels" })
        XCTAssertEqual(labels.descriptor.dtype, .int64)
        XCTAssertEqual(labels.bytes, 2 * 8)
    }

    func testSLTTKeepsOneTimestepAtATime() throws {
        let plan = try plan(.pytorchCPU, .sltt)
        // Each timestep keeps conv's images (the input batch itself, not counted), the neuron's
        // three [2, 2, 4, 4] tensors, fc's spikes [2, 32] and the loss's.
        for t in 0..<2 {
            let bytes = Dictionary(uniqueKeysWithValues: plan.savedBytesSeenByHooks(timestep: t).map { ($0.layer, $0.bytes) })
            XCTAssertEqual(bytes, ["lif": 768, "fc": 256, "loss": 28], "timestep \(t)")
        }
    }

    func testCheckpointKeepsOnlyTheSegmentsInputs() throws {
        let plan = try Planner.plan(try Fixtures.tiny(), strategy: .checkpoint, options: .init(segment: 1, runtime: .pytorchCPU))
        // x_seq (kept by both checkpoints), the lif state at the second segment's start, the loss.
        let bytes = Dictionary(uniqueKeysWithValues: plan.savedBytesSeenByHooks(timestep: nil).map { ($0.layer, $0.bytes) })
        XCTAssertEqual(bytes, ["input": 256, "lif": 256, "loss": 28])
        XCTAssertGreaterThan(plan.recomputeFlops, 0)
    }

    func testReversibleNetworksAreModelled() throws {
        // T-RevSNN: plain autograd through the columns under bptt, its autograd function under
        // trevsnn (PyTorchTRevTests); the layers only it uses are refused elsewhere.
        let trev = try Fixtures.bundled("trevsnn-cifar")
        for strategy in [Strategy.bptt, .trevsnn] {
            XCTAssertNoThrow(try Planner.plan(trev, strategy: strategy, options: .init(runtime: .pytorchCUDA)))
            XCTAssertNoThrow(try Planner.plan(trev, strategy: strategy, options: .init(runtime: .snnmem)))
        }
        // Reversible stages are modelled: plain autograd under bptt, RevSNN's function under revsnn,
        // which keeps only each stage's output.
        let reversible = try Fixtures.bundled("revsresnet21")
        let bptt = try Planner.plan(reversible, strategy: .bptt, options: .init(batch: 2, timesteps: 2, runtime: .pytorchCUDA))
        let revsnn = try Planner.plan(reversible, strategy: .revsnn, options: .init(batch: 2, timesteps: 2, runtime: .pytorchCUDA))
        XCTAssertLessThan(revsnn.savedBytesSeenByHooks(timestep: nil).reduce(0) { $0 + $1.bytes },
                          bptt.savedBytesSeenByHooks(timestep: nil).reduce(0) { $0 + $1.bytes } / 2)
        XCTAssertGreaterThan(revsnn.recomputeFlops, 0)
    }

    func testCUDAEstimateAddsTheTermsOutsideTheAllocator() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let plan = try Planner.plan(profile, strategy: .bptt, options: .init(batch: 8, runtime: .pytorchCUDA))
        let estimate = CUDAMemoryEstimate.estimate(plan, profile: profile)
        let rounded = PeakSweep(rounding: .cuda).run(plan.events, allowLive: Set(plan.tensors.filter(\.persistent).map(\.id))).peakBytes
        // The cuBLAS workspaces (two handles, 32 MiB each: cifarnet has a linear layer) are allocated.
        XCTAssertEqual(estimate.cublasWorkspaceBytes, 64 << 20)
        XCTAssertGreaterThanOrEqual(estimate.peakAllocatedBytes, rounded + (64 << 20))
        XCTAssertGreaterThanOrEqual(estimate.peakReservedBytes, estimate.peakAllocatedBytes)
        XCTAssertEqual(estimate.totalBytes, estimate.peakReservedBytes + (400 << 20) + (64 << 20))
        var overheads = CUDAOverheads()
        overheads.contextBytes = 0
        overheads.cudnnWorkspaceBytes = 0
        XCTAssertEqual(CUDAMemoryEstimate.estimate(plan, profile: profile, overheads: overheads).totalBytes, estimate.peakReservedBytes)
        // max-batch on the GPU total: the largest batch fits, one more does not.
        let budget = 2 << 30
        let result = try MaxBatch.find(profile, strategy: .bptt, budgetBytes: budget, options: .init(runtime: .pytorchCUDA),
                                       bytesNeeded: { CUDAMemoryEstimate.estimate($0, profile: profile).totalBytes })
        XCTAssertLessThanOrEqual(result.peakBytesAtMax ?? .max, budget)
        XCTAssertGreaterThan(result.peakBytesAtMaxPlusOne, budget)
    }

    /// oneDNN's bf16 weight-gradient scratchpad against single convolutions measured under CPU
    /// autocast (PyTorch 2.15, an AMD EPYC with AVX512-BF16; `nativeBF16: false` ran with
    /// `ONEDNN_MAX_CPU_ISA=AVX512_CORE`): threads 1-8, 1-16 samples, first convs (one at 128x128
    /// transposing in blocks), strides 2, kernels 5 and 7, padded channels, a bias.
    func testBFloat16WeightGradientScratchpadEqualsOneDNNs() {
        // (in, out, kernel, stride, padding, bias, input size, samples, threads, native bf16, bytes measured)
        let measured: [(Int, Int, Int, Int, Int, Bool, Int, Int, Int, Bool, Int)] = [
            (256, 256, 3, 1, 1, false, 8, 4, 1, true, 2441604),
            (256, 256, 3, 1, 1, false, 8, 16, 2, true, 2449796),
            (256, 256, 3, 1, 1, false, 8, 16, 8, true, 4886916),
            (64, 128, 3, 1, 1, false, 32, 2, 3, true, 2097540),
            (128, 256, 3, 1, 1, false, 16, 16, 4, true, 2789764),
            (512, 512, 3, 1, 1, false, 4, 1, 8, true, 9494916),
            (3, 64, 3, 1, 1, false, 32, 4, 2, true, 154756),
            (3, 64, 3, 1, 1, false, 32, 4, 8, true, 296836),
            (3, 16, 3, 1, 1, false, 128, 2, 2, true, 1052420),
            (3, 64, 7, 2, 3, false, 224, 2, 2, true, 1660040),
            (128, 256, 3, 2, 1, false, 16, 4, 2, true, 1311108),
            (256, 256, 5, 1, 2, false, 8, 4, 2, true, 6652296),
            (20, 40, 3, 1, 1, false, 16, 4, 2, true, 205188),
            (64, 120, 3, 1, 1, true, 16, 4, 2, true, 804228),
            (256, 256, 3, 1, 1, false, 8, 4, 1, false, 2441604),
            (256, 256, 3, 1, 1, false, 8, 16, 2, false, 2449796),
            (128, 256, 3, 1, 1, false, 16, 16, 4, false, 2789764),
            (3, 64, 3, 1, 1, false, 32, 4, 2, false, 154756),
            (3, 16, 3, 1, 1, false, 128, 2, 2, false, 1052420),
            (3, 64, 7, 2, 3, false, 224, 2, 2, false, 1660040),
            (128, 256, 3, 2, 1, false, 16, 4, 2, false, 1311108),
            (256, 256, 5, 1, 2, false, 8, 4, 2, false, 6652296),
            (64, 64, 3, 1, 1, false, 56, 16, 4, true, 1950084),
            // Where the ISA decides: emulated bf16 never loops over whole maps, so it splits the samples.
            (128, 128, 3, 1, 1, false, 56, 1, 2, true, 2240900),
            (128, 128, 3, 1, 1, false, 56, 1, 2, false, 4456836),
            (128, 128, 3, 1, 1, false, 32, 2, 3, true, 1147268),
            (128, 128, 3, 1, 1, false, 32, 2, 3, false, 3400068),
            (128, 128, 3, 1, 1, false, 28, 1, 4, true, 1022340),
            (128, 128, 3, 1, 1, false, 28, 1, 4, false, 2032004),
        ]
        for (i, o, k, s, p, bias, size, samples, threads, native, bytes) in measured {
            let conv = ConvSpec(inChannels: i, outChannels: o, kernel: k, stride: s, padding: p, bias: bias)
            let out = (size + 2 * p - k) / s + 1
            let scratchpad = OneDNNWeightGradientScratchpad(conv: conv, input: TensorShape([i, size, size]), output: TensorShape([o, out, out]))
            let machine = OneDNNMachine(threads: threads, nativeBF16: native, l2BytesPerCore: 1 << 20)
            XCTAssertTrue(scratchpad.isBooked)
            XCTAssertEqual(scratchpad.bytes(samples: samples, on: machine), bytes, "\(conv) \(size)x\(size), \(samples) samples, \(threads) threads")
        }
        // The 1x1 and depthwise primitives book scratchpads of their own, not modelled.
        for conv in [ConvSpec(inChannels: 64, outChannels: 256, kernel: 1), ConvSpec(inChannels: 64, outChannels: 64, kernel: 3, groups: 64)] {
            XCTAssertFalse(OneDNNWeightGradientScratchpad(conv: conv, input: TensorShape([64, 8, 8]), output: TensorShape([conv.outChannels, 8, 8])).isBooked)
        }
    }
}
