import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// The pytorch-cpu transposed conv (`OneDNNDeconvolution`): its scratchpad rules against the sizes
/// PyTorch allocated for them (`scripts/probe-convtranspose-cpu.py`, 1, 2 and 4 threads), the layout
/// against the convtranspose fixtures' streams, and the refusals.
final class OneDNNDeconvolutionTests: XCTestCase {
    struct Probe: Decodable {
        var threads: Int
        var batch: Int
        var `in`: Int
        var out: Int
        var kernel: Int
        var stride: Int
        var padding: Int
        var height: Int
        var width: Int
        var bias: Bool
        var forwardScratchpadBytes: Int
        var weightGradientScratchpadBytes: Int?
        var equal: Bool
    }

    static let probesFile = Fixtures.repositoryRoot.appendingPathComponent("Tests/PlannerTests/Fixtures/onednn/convtranspose-probes.json")

    func deconvolution(_ p: Probe) -> OneDNNDeconvolution {
        let conv = ConvSpec(inChannels: p.in, outChannels: p.out, kernel: p.kernel, stride: p.stride, padding: p.padding, bias: p.bias)
        let outHeight = (p.height - 1) * p.stride - 2 * p.padding + p.kernel
        let outWidth = (p.width - 1) * p.stride - 2 * p.padding + p.kernel
        return OneDNNDeconvolution(conv: conv, input: TensorShape([p.in, p.height, p.width]),
                                   output: TensorShape([p.out, outHeight, outWidth]))
    }

    func testScratchpadRulesEqualTheProbedAllocations() throws {
        let probes = try JSONDecoder().decode([Probe].self, from: Data(contentsOf: Self.probesFile))
        XCTAssertGreaterThanOrEqual(probes.count, 100)
        XCTAssertEqual(Set(probes.map(\.threads)), [1, 2, 4])
        var booked = 0
        for p in probes {
            let name = "\(p.threads) threads, \(p.batch) x \(p.in) -> \(p.out), k\(p.kernel) s\(p.stride) p\(p.padding), \(p.height)x\(p.width)"
            XCTAssertTrue(p.equal, "\(name): the probe's whole stream differed from the rules")
            let deconv = deconvolution(p)
            XCTAssertNil(deconv.notModelledReason, name)
            XCTAssertEqual(deconv.bytes(.forward, samples: p.batch, threads: p.threads), p.forwardScratchpadBytes, "\(name): forward")
            let measured = try XCTUnwrap(p.weightGradientScratchpadBytes, name)
            XCTAssertEqual(deconv.bytes(.weightGradient, samples: p.batch, threads: p.threads), measured, "\(name): weight gradient")
            if measured > 0 { booked += 1 }
        }
        XCTAssertGreaterThanOrEqual(booked, 10, "probes where the weight gradient's sample threads book a reduction")
    }

    /// The numbers of the rule worked by hand for two shapes of the test profile at 2 threads.
    func testForwardScratchpadByHand() {
        // 32 -> 16, k2 s2 on 4x4: no overhang; 4*4*32 floats round up to 4096; the output width 8 is even.
        let up1 = OneDNNDeconvolution(conv: ConvSpec(inChannels: 32, outChannels: 16, kernel: 2, stride: 2),
                                      input: TensorShape([32, 4, 4]), output: TensorShape([16, 8, 8]))
        XCTAssertEqual(up1.bytes(.forward, samples: 4, threads: 2), 2 * (4120 + 4 * 4096 + 4096) + 3 * 4096 + 128)
        // 16 -> 16, k3 s2 p1 on 8x8: a 15-wide output, so a row buffer of 16 * 2 * 16 floats (one page of floats).
        let up2 = OneDNNDeconvolution(conv: ConvSpec(inChannels: 16, outChannels: 16, kernel: 3, stride: 2, padding: 1, bias: true),
                                      input: TensorShape([16, 8, 8]), output: TensorShape([16, 15, 15]))
        XCTAssertEqual(up2.bytes(.forward, samples: 4, threads: 2), 2 * (4120 + 4 * 4096 + 4096 + 4 * 4096) + 4 * 4096 + 128)
        // An output padding (k3 s2 p1 op1, 16x16 -> 32x32; measured, not in the profile language yet): the far
        // side's padding drops to 0, so the kernel overhangs one more row and column: 17 * 17 * 32 floats.
        let padded = OneDNNDeconvolution(conv: ConvSpec(inChannels: 32, outChannels: 16, kernel: 3, stride: 2, padding: 1),
                                         input: TensorShape([32, 16, 16]), output: TensorShape([16, 32, 32]))
        XCTAssertEqual(padded.bytes(.forward, samples: 4, threads: 1), 69784)
        XCTAssertEqual(padded.bytes(.forward, samples: 4, threads: 2), 127_152)
        // Its weight gradient on 4 samples: two sample threads, one extra weight + bias gradient.
        XCTAssertEqual(up2.bytes(.weightGradient, samples: 4, threads: 2), (16 * 16 * 9 + 16) * 4 + 128 + 8192 + 128)
        XCTAssertEqual(up2.bytes(.weightGradient, samples: 4, threads: 1), 0)
    }

    /// Each scratchpad the plan allocates for a transposed conv is in the measured stream, layer for
    /// layer: the forward's first allocation of each call, and the weight gradient's (the allocation
    /// right after the blocked weight gradient's).
    func testPlannedScratchpadsAreTheFixturesAllocations() throws {
        var compared = 0
        for name in ["convtranspose-bptt-T2-B2", "convtranspose-sltt-T2-B2", "convtranspose-checkpoint-T2-B2", "convtranspose-sltt-T4-B4"] {
            let data = try Data(contentsOf: PyTorchFixtureTests.folder.appendingPathComponent("\(name).json"))
            let m = try JSONDecoder().decode(PyTorchFixtureTests.Measurement.self, from: data)
            let stream = try XCTUnwrap(try JSONDecoder().decode(PyTorchFixtureTests.Stream.self, from: data).allocations, name)
            XCTAssertEqual(m.threads, OneDNNMachine.fixtures.threads, name)
            let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(m.profileFile).path)
            let plan = try Planner.plan(profile, strategy: try XCTUnwrap(Strategy(rawValue: m.strategy)),
                                        options: .init(batch: m.batch, timesteps: m.timesteps, segment: m.segment, runtime: .pytorchCPU))
            var planned: [String: [Int]] = [:]
            for tensor in plan.tensors where tensor.descriptor.name.hasPrefix("scratchpad.deconvolution.") {
                planned[tensor.descriptor.layerPath, default: []].append(tensor.bytes)
            }
            // Measured: the first allocation of each run of a transposed conv's forward events, and in
            // backward each allocation freed before the next free of the layer that is not its own.
            var measured: [String: [Int]] = [:]
            var previousLayer: String?
            var previousPhase: String?
            for (index, event) in stream.enumerated() {
                defer { (previousLayer, previousPhase) = (event.layer, event.phase) }
                guard let layer = event.layer, layer.hasPrefix("up"), event.bytes > 0 else { continue }
                if event.phase != "backward" {
                    if previousLayer != layer || previousPhase != event.phase { measured[layer, default: []].append(event.bytes) }
                } else if index >= 3, stream[index - 3].bytes > 0, stream[index - 2].bytes > 0, stream[index - 1].bytes > 0,
                          stream[(index + 1)...].prefix(2).contains(where: { $0.bytes == -event.bytes && $0.address == event.address }),
                          stream[index - 3].layer == layer {
                    // reorders of grad_output and input, the blocked weight gradient, then this, freed at once
                    measured[layer, default: []].append(event.bytes)
                }
            }
            XCTAssertFalse(planned.isEmpty, name)
            XCTAssertEqual(planned.mapValues { $0.sorted() }, measured.mapValues { $0.sorted() }, name)
            compared += 1
        }
        XCTAssertEqual(compared, 4)
    }

    func testRefusalsNameTheLayerAndTheCase() throws {
        func profile(_ up: String, batch: Int = 2) throws -> Profile {
            try ProfileLoader.parse(yaml: """
                input: {channels: 3, height: 8, width: 8}
                timesteps: 2
                batch: \(batch)
                layers:
                  - conv: {name: enc, out: 16, kernel: 3, stride: 2, padding: 1}
                  - neuron: {name: sn}
                  - convtranspose: {name: up, \(up)}
                  - neuron: {name: up_sn}
                  - flatten
                  - linear: {name: fc, out: 3}
                """, file: "up.yaml")
        }
        let eight = try profile("out: 8, kernel: 2, stride: 2")
        let reason = try XCTUnwrap(Runtime.pytorchCPU.notModelledReason(.bptt, eight))
        XCTAssertTrue(reason.contains("transposed conv 'up'") && reason.contains("16 -> 8 channels"), reason)
        XCTAssertNil(Runtime.pytorchCUDA.notModelledReason(.bptt, eight))
        let strideOne = try XCTUnwrap(Runtime.pytorchCPU.notModelledReason(.bptt, try profile("out: 16, kernel: 3, padding: 1")))
        XCTAssertTrue(strideOne.contains("stride 1"), strideOne)
        // Autocast stays refused on both PyTorch runtimes.
        var half = try profile("out: 16, kernel: 2, stride: 2")
        XCTAssertNil(Runtime.pytorchCPU.notModelledReason(.bptt, half))
        half.dtype = .bfloat16
        XCTAssertTrue(Runtime.pytorchCPU.notModelledReason(.bptt, half)?.contains("float32 only") ?? false)
        XCTAssertTrue(Runtime.pytorchCUDA.notModelledReason(.bptt, half)?.contains("float32 only") ?? false)

        // One sample per call (batch 1 under sltt, or a one-timestep checkpoint segment): PyTorch's native kernel.
        let single = try profile("out: 16, kernel: 2, stride: 2", batch: 1)
        for (strategy, segment) in [(Strategy.sltt, nil), (.checkpoint, 1)] as [(Strategy, Int?)] {
            XCTAssertThrowsError(try Planner.plan(single, strategy: strategy, options: .init(segment: segment, runtime: .pytorchCPU))) { error in
                XCTAssertTrue("\(error)".contains("transposed conv 'up' runs on one sample per call"), "\(error)")
            }
        }
        XCTAssertNoThrow(try Planner.plan(single, strategy: .bptt, options: .init(runtime: .pytorchCPU)))
        XCTAssertNoThrow(try Planner.plan(single, strategy: .sltt, options: .init(batch: 2, runtime: .pytorchCPU)))
        // max-batch searches from 2 there: the largest batch whose plan fits, the next one over.
        let budget = try Planner.plan(single, strategy: .sltt, options: .init(batch: 5, runtime: .pytorchCPU)).peakBytes
        let found = try MaxBatch.find(single, strategy: .sltt, budgetBytes: budget, options: .init(runtime: .pytorchCPU))
        XCTAssertEqual(found.maxBatch, 5)
        XCTAssertGreaterThan(try Planner.plan(single, strategy: .sltt, options: .init(batch: 6, runtime: .pytorchCPU)).peakBytes, budget)
        let two = try Planner.plan(single, strategy: .sltt, options: .init(batch: 2, runtime: .pytorchCPU)).peakBytes
        XCTAssertThrowsError(try MaxBatch.find(single, strategy: .sltt, budgetBytes: two - 1, options: .init(runtime: .pytorchCPU))) { error in
            XCTAssertTrue("\(error)".contains("batch 2 needs \(two) bytes, over the budget, and batch 1 is not modelled"), "\(error)")
        }
        // A 4x4 kernel takes oneDNN on one sample too.
        XCTAssertNoThrow(try Planner.plan(try profile("out: 16, kernel: 4, stride: 2, padding: 1", batch: 1), strategy: .sltt,
                                          options: .init(runtime: .pytorchCPU)))
    }
}
