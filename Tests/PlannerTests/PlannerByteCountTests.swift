import MemoryModel
import Planner
import Profiles
import XCTest

/// Byte counts of the tiny network (Fixtures.tinyYAML), worked out by hand:
///   parameters: conv weight 2x1x3x3 = 72 B, fc weight 3x32 = 384 B, fc bias 3 = 12 B -> 468 B;
///   gradients and SGD momentum the same again each -> persistent 3 x 468 = 1404 B.
///   input: images 2x1x4x4 floats = 128 B, labels 2 int32 = 8 B -> 136 B.
///   per timestep: conv output 2x2x4x4 floats = 256 B, im2col 2 x (9 + 2) x 16 floats = 1408 B (freed at once;
///   a 4x4 output plane is too narrow for per-sample GEMMs, so both samples' 9x16 columns go side by side into
///   one GEMM, with their 2x16 outputs staged beside: `LayerMemoryTable.convSampleGroup`),
///   LIF v 256 B (one for the whole forward), spikes 256 B, h 256 B; fc output 2x3 = 24 B;
///   the output sum 24 B.
/// BPTT keeps h and the spikes (fc's input) for each timestep: 512 B per timestep.
final class PlannerByteCountTests: XCTestCase {
    func testTinyBPTTPeakAndRolesByHand() throws {
        let plan = try Fixtures.plan(try Fixtures.tiny(), .bptt)
        // The peak: forward t=1 while conv's im2col is live:
        // persistent 1404 + input 136 + outputSum 24 + t0 spikes 256 + t0 h 256 + v 256 + t1 conv output 256
        // + im2col 1408 (two samples' 9x16 columns and 2x16 staged outputs).
        XCTAssertEqual(plan.peakBytes, 3996)
        XCTAssertEqual(plan.sweep.peakPhase, .forward(timestep: 1))
        XCTAssertEqual(plan.peakTensor?.descriptor.name, "im2col")
        let roles = plan.bytesByRoleAtPeak
        XCTAssertEqual(roles[.parameter], 468)
        XCTAssertEqual(roles[.gradient], 468)
        XCTAssertEqual(roles[.optimizerState], 468)
        XCTAssertEqual(roles[.input], 136)
        XCTAssertEqual(roles[.activation], 256 + 256 + 24)   // conv output t1, spikes t0, output sum
        XCTAssertEqual(roles[.neuronState], 256 + 256)       // v, h t0
        XCTAssertEqual(roles[.workspace], 1408)   // im2col: 2 samples x (9 + 2) x 16 floats
        XCTAssertEqual(plan.persistentBytes, 1404)
        XCTAssertEqual(plan.activationBytes, 2 * 512)
    }

    func testTinyBPTTSavedTensorsByHand() throws {
        let plan = try Fixtures.plan(try Fixtures.tiny(), .bptt)
        let saved = plan.savedTensors.map { "\($0.descriptor.layerPath):\($0.descriptor.name)@\($0.descriptor.timestep ?? -1)=\($0.bytes)" }
        XCTAssertEqual(saved, ["lif:output@0=256", "lif:h@0=256", "lif:output@1=256", "lif:h@1=256"])
        XCTAssertTrue(plan.savedTensors.allSatisfy { $0.descriptor.shape.dims.first == 2 })
    }

    func testTinySLTTKeepsOneTimestep() throws {
        let plan = try Fixtures.plan(try Fixtures.tiny(), .sltt)
        XCTAssertEqual(plan.activationBytes, 512)
        // No dL/dv is carried back in time, so no backward state appears.
        XCTAssertFalse(plan.tensors.contains { $0.descriptor.name == "dv" })
    }

    func testTinyCheckpointByHand() throws {
        // T = 8, k = 2: forward keeps v at t = 2, 4, 6 (256 B each). Backward restores the last
        // segment (freeing its checkpoint), then recomputes two timesteps: 2 x 256 + 2 x 512 = 1536 B.
        let plan = try Fixtures.plan(try Fixtures.tiny(), .checkpoint, timesteps: 8, segment: 2)
        XCTAssertEqual(plan.segment, 2)
        XCTAssertEqual(plan.activationBytes, 1536)
        let checkpoints = plan.tensors.filter { $0.descriptor.name == "checkpoint.v" }
        XCTAssertEqual(checkpoints.map(\.descriptor.timestep), [2, 4, 6])
        XCTAssertEqual(checkpoints.map(\.bytes), [256, 256, 256])
    }

    func testFlopsByHand() throws {
        // Per sample and timestep: conv 2 x (2x4x4 outputs x 9 MACs) = 576, LIF 5 x 32 = 160, fc 2 x 32 x 3 + 3 = 195.
        let perSampleStep = 576.0 + 160 + 195
        let bptt = try Fixtures.plan(try Fixtures.tiny(), .bptt)
        XCTAssertEqual(bptt.forwardFlops, perSampleStep * 2 * 2)
        XCTAssertEqual(bptt.recomputeFlops, 0)
        let checkpoint = try Fixtures.plan(try Fixtures.tiny(), .checkpoint)
        XCTAssertEqual(checkpoint.recomputeFlops, checkpoint.forwardFlops, "checkpointing recomputes the whole forward once")
    }

    func testParameterCountsOfCifarnet() throws {
        let plan = try Fixtures.plan(try Fixtures.bundled("cifarnet"), .bptt)
        let parameters = plan.tensors.filter { $0.descriptor.role == .parameter }
        // conv weights 3*64*9 + 64*128*9 + 128*256*9 + 256*256*9, four BNs (4 tensors each), fc 4096*10 + 10.
        let convWeights = 3 * 64 * 9 + 64 * 128 * 9 + 128 * 256 * 9 + 256 * 256 * 9
        let batchNorm = 4 * (64 + 128 + 256 + 256)
        XCTAssertEqual(parameters.reduce(0) { $0 + $1.descriptor.shape.elementCount }, convWeights + batchNorm + 40960 + 10)
        // Running statistics get no gradient: gradients are 2 BN tensors fewer per BN.
        let gradients = plan.tensors.filter { $0.descriptor.role == .gradient }
        XCTAssertEqual(gradients.reduce(0) { $0 + $1.descriptor.shape.elementCount }, convWeights + batchNorm / 2 + 40960 + 10)
    }

    func testAdamKeepsTwoStatesPerParameter() throws {
        let profile = try ProfileLoader.parse(yaml: Fixtures.tinyYAML.replacingOccurrences(of: "{type: sgd, momentum: 0.9}", with: "{type: adam}"),
                                              file: "tiny-adam.yaml")
        let plan = try Fixtures.plan(profile, .bptt)
        XCTAssertEqual(plan.tensors.filter { $0.descriptor.role == .optimizerState }.reduce(0) { $0 + $1.bytes }, 2 * 468)
    }

    func testHalfPrecisionHalvesActivationBytes() throws {
        let half = try ProfileLoader.parse(yaml: "dtype: float16\n" + Fixtures.tinyYAML, file: "tiny16.yaml")
        XCTAssertEqual(try Fixtures.plan(half, .bptt).activationBytes, 512)
    }
}
