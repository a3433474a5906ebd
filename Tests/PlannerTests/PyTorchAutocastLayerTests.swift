import MemoryModel
import Planner
import Profiles
import XCTest

/// The newer layers under float16/bfloat16 autocast on the PyTorch runtimes: what is planned (the bytes
/// worked out by hand; the committed fixtures hold them to PyTorch) and what is still refused, with the
/// reason and the way out. T = 2, batch 2.
final class PyTorchAutocastLayerTests: XCTestCase {
    static let yaml = """
        input: {features: 12, perTimestep: true}
        timesteps: 2
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5}
        layers:
          - recurrent: {name: rec1, out: 8}
          - linear: {name: fc, out: 6}
          - neuron: {name: alif, type: alif, rho: 0.8, beta: 0.5}
          - linear: {name: head, out: 4}
        """

    func saved(_ runtime: Runtime, _ dtype: DType, _ strategy: Strategy = .bptt) throws -> [String: Int] {
        let profile = try ProfileLoader.parse(yaml: Self.yaml, file: "autocast.yaml")
        let plan = try Planner.plan(profile, strategy: strategy, options: .init(runtime: runtime, dtype: dtype))
        return Dictionary(uniqueKeysWithValues: plan.savedBytesByLayer.map { ($0.layer, $0.bytes) })
    }

    func testRecurrentAndAdaptiveLIFArePlannedInHalf() throws {
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            for dtype in [DType.float16, .bfloat16] {
                let bptt = try saved(runtime, dtype)
                // rec1 on the float32 input: per timestep the half copy of the concatenation [2, 12 + 8],
                // h - threshold, h and 1 - s [2, 8] (hard reset), and the weight's half copy [8, 20] (from
                // the second timestep on a fed-back y needs a gradient).
                XCTAssertEqual(bptt["rec1"], 2 * (2 * 20 * 2 + 3 * 2 * 8 * 2) + 8 * 20 * 2, "\(runtime) \(dtype)")
                // the adaptive LIF keeps h and b, [T, B, 6] each, in half
                XCTAssertEqual(bptt["alif"], 2 * 2 * 2 * 6 * 2, "\(runtime) \(dtype)")
                // SLTT detaches y: no concatenation needs a gradient, so nothing keeps the weight's copy
                // (summed over the step's two timesteps)
                let sltt = try saved(runtime, dtype, .sltt)
                XCTAssertEqual(sltt["rec1"], 2 * (2 * 20 * 2 + 3 * 2 * 8 * 2), "\(runtime) \(dtype)")
            }
        }
    }

    /// addmm keeps the weight's half copy only for its input's gradient: a linear layer on the network's
    /// input (past a flatten, a view) keeps its input's half copy alone; the next one keeps both.
    func testALinearLayerOnTheInputKeepsNoHalfWeight() throws {
        let yaml = """
            input: {channels: 1, height: 4, width: 4}
            timesteps: 2
            batch: 2
            layers:
              - flatten
              - linear: {name: fc1, out: 8}
              - neuron: {name: lif1}
              - linear: {name: fc2, out: 3}
            """
        let profile = try ProfileLoader.parse(yaml: yaml, file: "linear.yaml")
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            let plan = try Planner.plan(profile, strategy: .bptt, options: .init(runtime: runtime, dtype: .bfloat16))
            let saved = Dictionary(uniqueKeysWithValues: plan.savedBytesByLayer.map { ($0.layer, $0.bytes) })
            XCTAssertEqual(saved["fc1"], 2 * 2 * 16 * 2, "\(runtime)")  // the images [T, B, 16], cast
            XCTAssertEqual(saved["fc2"], 2 * 2 * 8 * 2 + 3 * 8 * 2, "\(runtime)")  // the spikes and the weight
            // the first layer's cast still lives (autocast's cache) until the loss
            XCTAssertTrue(plan.tensors.contains { $0.descriptor.layerPath == "fc1" && $0.descriptor.name == "weight.bfloat16" })
        }
    }

    func testConv1DWindowsAreRefusedOnTheCPUOnly() throws {
        let yaml = """
            input: {channels: 2, height: 1, width: 16, perTimestep: true}
            timesteps: 2
            batch: 2
            layers:
              - tokens
              - conv1d: {name: conv1, out: 4, kernel: 3, padding: 1}
              - neuron: {name: lif1}
              - tokenmean
              - linear: {name: head, out: 3}
            """
        let profile = try ProfileLoader.parse(yaml: yaml, file: "conv1d.yaml")
        for dtype in [DType.float16, .bfloat16] {
            XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU, dtype: dtype))) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("conv1d 'conv1' with a window"), message)
                XCTAssertTrue(message.contains("under \(dtype.rawValue) autocast"), message)
                XCTAssertTrue(message.contains(dtype == .float16 ? "thnn's slow conv2d" : "(1, k) kernel"), message)
                XCTAssertTrue(message.contains("--runtime pytorch-cuda"), message)
            }
            XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCUDA, dtype: dtype)))
        }
        XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCPU)))
    }
}
