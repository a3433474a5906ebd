import MemoryModel
import Planner
import Profiles
import XCTest

/// T-RevSNN on the PyTorch runtimes, on a two-level network small enough to count by hand (the
/// Python package's tests measure the same profile in PyTorch: python/tests/conftest.py TREV_TINY).
/// Stem conv 3->4 stride 2 on 3x8x8 and batch norm; level 0: 4 channels at 4x4 (64 floats a sample),
/// level 1: 8 channels at 2x2 (32 floats), two blocks, expansion 2; three classes; batch 2.
final class PyTorchTRevTests: XCTestCase {
    static let yaml = """
    name: trev-tiny
    input: {channels: 3, height: 8, width: 8}
    timesteps: 3
    batch: 2
    neuron: {type: lif, threshold: 0.5, surrogate: {type: sigmoid, alpha: 4.0}}
    optimizer: {type: adam, learningRate: 0.001}
    layers:
      - conv: {name: stem, out: 4, kernel: 3, stride: 2, padding: 1}
      - batchnorm: {name: stem_bn}
      - trevsnn:
          name: trev
          kernel: 3
          expansion: 2
          alpha: 0.5
          layerScale: 0.5
          classes: 3
          levels:
            - {channels: 4, blocks: 1}
            - {channels: 8, blocks: 2}
    """

    func plan(_ strategy: Strategy, timesteps: Int, runtime: Runtime = .pytorchCPU) throws -> MemoryPlan {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "trev-tiny.yaml")
        return try Planner.plan(profile, strategy: strategy, options: .init(timesteps: timesteps, runtime: runtime))
    }

    func saved(_ plan: MemoryPlan) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: plan.savedBytesSeenByHooks(timestep: nil).map { ($0.layer, $0.bytes) })
    }

    func testTRevSNNKeepsTheStemOutputAndTheLastStatesWhateverT() throws {
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            for t in [2, 3] {
                let bytes = saved(try plan(.trevsnn, timesteps: t, runtime: runtime))
                // stem_bn: its input (2 x 64 floats) and two 4-channel statistics; trev: the stem output
                // (2 x 64) and the last column's states (2 x 64, 2 x 32); the loss: per column
                // log_softmax [2, 3] and total_weight.
                XCTAssertEqual(bytes, ["stem_bn": 512 + 32, "trev": 4 * (128 + 128 + 64), "loss": t * 28], "\(runtime) T=\(t)")
            }
        }
    }

    func testBPTTKeepsEveryColumnsGraph() throws {
        let two = saved(try plan(.bptt, timesteps: 2))
        let three = saved(try plan(.bptt, timesteps: 3))
        // The alpha terms keep c[l][t-1] (MulBackward0) from the second column on.
        XCTAssertEqual(two["col1/trev/level0"], 512)
        XCTAssertEqual(two["col1/trev/level1"], 256)
        XCTAssertNil(two["col0/trev/level0"])
        // A turn-off neuron keeps x - threshold; the layer scale its input; the up path's upsample nothing.
        XCTAssertEqual(two["col1/trev/level1/block1/main/neuron3"], 2 * 16 * 4 * 4)
        XCTAssertEqual(two["col1/trev/level1/block1/main/scale5"], 2 * 8 * 4 * 4)
        XCTAssertEqual(two["col1/trev/level0/up/neuron0"], 256)
        XCTAssertNil(two["col1/trev/level0/up/upsample3"])
        // Each column after the first keeps the first's bytes plus its up path (neuron 256, 1x1 conv
        // 256, batch norm 128 + 2 x 16) and its alpha terms (512 + 256), as measured in PyTorch.
        func columns(_ bytes: [String: Int]) -> Int { bytes.filter { $0.key.hasPrefix("col") }.values.reduce(0, +) }
        let column = columns(three) - columns(two)
        XCTAssertEqual(column, (columns(two) - column) + (256 + 256 + 160) + (512 + 256))
    }

    func testFirstColumnsUpPathsAndAlphasGetNoOptimizerState() throws {
        let plan = try plan(.trevsnn, timesteps: 2)
        let state = Set(plan.tensors.filter { $0.descriptor.role == .optimizerState }.map { $0.descriptor.layerPath + "/" + $0.descriptor.name })
        XCTAssertFalse(state.contains("col0/trev/level0/alpha.adam.m"))
        XCTAssertFalse(state.contains("col0/trev/level0/up/conv1/weight.adam.v"))
        XCTAssertTrue(state.contains("col1/trev/level0/alpha.adam.m"))
        XCTAssertTrue(state.contains("col1/trev/level0/up/conv1/weight.adam.v"))
        XCTAssertTrue(state.contains("col0/trev/level0/down/conv1/weight.adam.m"))
        // The snnmem engine keeps state for every parameter.
        let engine = try self.plan(.trevsnn, timesteps: 2, runtime: .snnmem)
        XCTAssertTrue(engine.tensors.contains { $0.descriptor.layerPath == "col0/trev/level0" && $0.descriptor.name == "alpha.adam.m" })
    }

    func testTRevSNNOnlyLayersOutsideTheNetworkAndHalfPrecisionAreRefused() throws {
        // Nearest upsampling is no longer T-RevSNN's alone: SpikingJelly's multi-step layer.Upsample
        // (a U-Net's decoder, profiles/spiking-unet.yaml and its fixtures) plans outside it.
        let upsampling = try ProfileLoader.parse(yaml: Fixtures.tinyYAML.replacingOccurrences(of: "  - flatten",
                                                 with: "  - upsample: {name: up, factor: 1}\n  - flatten"), file: "tiny.yaml")
        XCTAssertNoThrow(try Planner.plan(upsampling, strategy: .bptt, options: .init(runtime: .pytorchCPU)))
        for (from, to) in [("  - flatten", "  - scale: {name: s}\n  - flatten"),
                           ("name: lif}", "name: lif, type: turnoff}")] {
            let profile = try ProfileLoader.parse(yaml: Fixtures.tinyYAML.replacingOccurrences(of: from, with: to), file: "tiny.yaml")
            XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU))) { error in
                XCTAssertTrue("\(error)".contains("--runtime snnmem"), "\(error)")
            }
        }
        // A stateful neuron in a column (the network's `neuron:`) is refused where it is written,
        // before any runtime plans it (the engine's schedule trapped on it).
        XCTAssertThrowsError(try ProfileLoader.parse(yaml: Self.yaml.replacingOccurrences(of: "      classes: 3", with: "      classes: 3\n      neuron: {type: lif, tau: 2.0}"),
                                                     file: "trev-tiny.yaml")) { error in
            XCTAssertTrue("\(error)".contains("stateless turn-off neurons"), "\(error)")
        }
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "trev-tiny.yaml")
        XCTAssertThrowsError(try Planner.plan(profile, strategy: .trevsnn, options: .init(runtime: .pytorchCUDA, dtype: .float16))) { error in
            XCTAssertTrue("\(error)".contains("float32"), "\(error)")
        }
    }
}
