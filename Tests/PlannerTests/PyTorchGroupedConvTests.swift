import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// Grouped and depthwise conv2d outside T-RevSNN on the PyTorch runtimes: the test profile's fixtures
/// exist (PyTorchFixtureTests holds them to saved bytes and peak), each grouped conv of the measured
/// stream allocates what its planned layout does, and the shapes and dtypes not measured are refused
/// naming the layer and the case (python/LAYOUT-NOTES.md §15, bash scripts/pytorch-fixtures.sh grouped-conv).
final class PyTorchGroupedConvTests: XCTestCase {
    static let profileFile = "Tests/PlannerTests/Fixtures/pytorch/profiles/grouped-conv.yaml"
    /// The profile's grouped convs: depthwise 3x3, groups-4 3x3 stride 2, depthwise 3x3 stride 2, groups-2 1x1.
    static let groupedLayers = ["dw1", "g4", "dw2", "pw2"]

    func testFixturesAtTwoPointsForEachStrategy() throws {
        let fixtures = try PyTorchFixtureTests.measurements().map(\.measurement).filter { $0.profile == "grouped-conv" }
        for strategy in ["bptt", "sltt", "checkpoint"] {
            let points = Set(fixtures.filter { $0.strategy == strategy && $0.dtype == "float32" }.map { "T\($0.timesteps)-B\($0.batch)" })
            XCTAssertEqual(points, ["T2-B2", "T4-B4"], strategy)
        }
        let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(Self.profileFile).path)
        let grouped = ParameterLayout.flatten(profile.layers).filter { if case .conv(let c) = $0.kind { return c.groups > 1 }; return false }
            .map(\.path)
        XCTAssertEqual(grouped, Self.groupedLayers)
    }

    /// Each grouped conv's allocations in the measured streams (forward, recompute and backward), as a
    /// multiset of sizes, equal its planned ones, but for the depthwise weight gradient's scratchpad:
    /// oneDNN's `jit_uni_dw` books one more weight-sized float32 gradient (+128 B alignment) when it
    /// splits the samples over its threads (dw1, 16 channels, one channel block), which is not declared.
    func testEachGroupedConvAllocatesItsPlannedBuffers() throws {
        var compared = 0
        for name in ["grouped-conv-bptt-T2-B2", "grouped-conv-sltt-T2-B2", "grouped-conv-checkpoint-T2-B2", "grouped-conv-bptt-T4-B4"] {
            let data = try Data(contentsOf: PyTorchFixtureTests.folder.appendingPathComponent("\(name).json"))
            let m = try JSONDecoder().decode(PyTorchFixtureTests.Measurement.self, from: data)
            let stream = try XCTUnwrap(try JSONDecoder().decode(PyTorchFixtureTests.Stream.self, from: data).allocations, name)
            XCTAssertEqual(m.threads, OneDNNMachine.fixtures.threads, name)
            let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(m.profileFile).path)
            let plan = try Planner.plan(profile, strategy: try XCTUnwrap(Strategy(rawValue: m.strategy)),
                                        options: .init(batch: m.batch, timesteps: m.timesteps, segment: m.segment, runtime: .pytorchCPU))
            for layer in Self.groupedLayers {
                let weightBytes = try XCTUnwrap(plan.tensors.first { $0.descriptor.layerPath == layer && $0.descriptor.role == .parameter }).bytes
                let undeclared = weightBytes + 128
                var measured = stream.filter { $0.layer == layer && $0.bytes > 0 }.map(\.bytes)
                let scratchpads = layer == "dw1" ? measured.filter { $0 == undeclared }.count : 0
                measured.removeAll { layer == "dw1" && $0 == undeclared }
                // The layer's every allocation: oneDNN's reorders and results, the output, the input gradient
                // and the weight's gradient (made by each backward call, summed into `.grad`).
                let planned = plan.tensors.filter {
                    $0.descriptor.layerPath == layer && $0.descriptor.role != .parameter && $0.descriptor.role != .optimizerState
                }.map(\.bytes)
                XCTAssertEqual(planned.sorted(), measured.sorted(), "\(name): \(layer)")
                if layer == "dw1" { XCTAssertGreaterThan(scratchpads, 0, "\(name): dw1's undeclared scratchpad was measured") }
                compared += 1
            }
        }
        XCTAssertEqual(compared, 16)
    }

    func testCUDAKeepsEachGroupedConvsInputLikeADenseOne() throws {
        let profile = try ProfileLoader.load(path: Fixtures.repositoryRoot.appendingPathComponent(Self.profileFile).path)
        let plan = try Planner.plan(profile, strategy: .bptt, options: .init(batch: 2, timesteps: 2, runtime: .pytorchCUDA))
        let counted = Dictionary(uniqueKeysWithValues: plan.savedBytesSeenByHooks(timestep: nil).map { ($0.layer, $0.bytes) })
        for layer in ParameterLayout.flatten(profile.layers) where Self.groupedLayers.contains(layer.path) {
            // cuDNN saves the input (the previous neuron's spikes, [T*B, C, H, W]) and the weight, nothing new.
            XCTAssertEqual(counted[layer.path], 2 * 2 * layer.inputShape.elementCount * 4, layer.path)
        }
    }

    static func yaml(_ conv: String, input: String = "{channels: 16, height: 8, width: 8}") -> String {
        """
        input: \(input)
        timesteps: 2
        batch: 2
        optimizer: {type: sgd, momentum: 0.9}
        layers:
          - conv: {name: stem, out: 32, kernel: 1}
          - neuron: {name: lif0}
          - conv: {name: gc, \(conv)}
          - neuron: {name: lif1}
          - flatten
          - linear: {name: fc, out: 3}
        """
    }

    func testMeasuredShapesPlanOnBothRuntimes() throws {
        for conv in ["out: 32, kernel: 3, padding: 1, groups: 32", "out: 32, kernel: 3, stride: 2, padding: 1, groups: 32",
                     "out: 32, kernel: 1, groups: 32", "out: 32, kernel: 3, padding: 1, groups: 4", "out: 64, kernel: 1, groups: 2",
                     "out: 32, kernel: 1, stride: 2, groups: 2", "out: 64, kernel: 3, padding: 1, groups: 4"] {
            let profile = try ProfileLoader.parse(yaml: Self.yaml(conv), file: "g.yaml")
            for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
                for strategy in [Strategy.bptt, .sltt, .checkpoint] {
                    XCTAssertNoThrow(try Planner.plan(profile, strategy: strategy, options: .init(runtime: runtime)), "\(conv) \(runtime) \(strategy)")
                }
            }
        }
    }

    /// What was not measured is refused on pytorch-cpu with the layer and the case named (CUDA keeps the
    /// input and weight whatever the shape); autocast on both.
    func testUnmeasuredShapesAndAutocastAreRefusedNamingTheLayerAndTheCase() throws {
        let cases: [(conv: String, input: String, reason: String)] = [
            ("out: 32, kernel: 5, padding: 2, groups: 32", "{channels: 16, height: 8, width: 8}", "depthwise conv 'gc' with kernel 5"),
            ("out: 32, kernel: 3, groups: 32", "{channels: 16, height: 8, width: 8}", "padding 0"),
            ("out: 32, kernel: 3, stride: 3, padding: 1, groups: 4", "{channels: 16, height: 8, width: 8}", "stride 3"),
            ("out: 32, kernel: 3, padding: 1, groups: 32", "{channels: 16, height: 2, width: 2}", "a 2x2 input under a 3x3 kernel"),
            ("out: 24, kernel: 3, padding: 1, groups: 4", "{channels: 16, height: 8, width: 8}", "grouped (groups 4) conv 'gc' with 8 input and 6 output channels per group"),
            ("out: 32, kernel: 1, stride: 2, groups: 32", "{channels: 16, height: 8, width: 8}", "depthwise conv 'gc' with a 1x1 kernel at stride 2"),
            ("out: 64, kernel: 3, stride: 2, padding: 1, groups: 2", "{channels: 16, height: 8, width: 8}",
             "stride 2 and 32 output channels per group from 16"),
        ]
        for (conv, input, reason) in cases {
            let yaml = Self.yaml(conv, input: input)
            let profile = try ProfileLoader.parse(yaml: yaml, file: "g.yaml")
            XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU))) { error in
                XCTAssertTrue("\(error)".contains(reason) && "\(error)".contains("--runtime pytorch-cuda"), "\(conv): \(error)")
            }
            XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCUDA)), conv)
        }
        // Depthwise over 24 channels: the 24 -> 24 conv after a 1x1 stem to 24.
        let depthwise24 = Self.yaml("out: 24, kernel: 3, padding: 1, groups: 24").replacingOccurrences(of: "out: 32, kernel: 1}", with: "out: 24, kernel: 1}")
        XCTAssertThrowsError(try Planner.plan(try ProfileLoader.parse(yaml: depthwise24, file: "g.yaml"), strategy: .bptt,
                                              options: .init(runtime: .pytorchCPU))) { error in
            XCTAssertTrue("\(error)".contains("depthwise conv 'gc' with 24 channels (measured: multiples of 16)"), "\(error)")
        }
        let measured = try ProfileLoader.parse(yaml: Self.yaml("out: 32, kernel: 3, padding: 1, groups: 32"), file: "g.yaml")
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            for dtype in [DType.float16, .bfloat16] {
                XCTAssertThrowsError(try Planner.plan(measured, strategy: .bptt, options: .init(runtime: runtime, dtype: dtype))) { error in
                    XCTAssertTrue("\(error)".contains("depthwise conv 'gc' under \(dtype.rawValue) autocast"), "\(runtime) \(dtype): \(error)")
                }
            }
        }
        // The snnmem engine plans every one of them.
        XCTAssertNoThrow(try Planner.plan(measured, strategy: .bptt, options: .init(runtime: .snnmem, dtype: .bfloat16)))
    }
}
