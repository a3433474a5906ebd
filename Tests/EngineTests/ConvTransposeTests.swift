import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// `convtranspose`: the kernels against the definition (every input pixel scatters a weighted
/// kernel into the output) and finite differences, and in a network: gradients, and the plan
/// equal to the engine's allocations under every schedule.
final class ConvTransposeTests: XCTestCase {
    static let shapes = [
        ConvTranspose2DShape(batch: 2, inChannels: 3, outChannels: 2, height: 3, width: 4, kernel: 2, stride: 2),
        ConvTranspose2DShape(batch: 2, inChannels: 2, outChannels: 3, height: 3, width: 3, kernel: 3, stride: 2, padding: 1),
        ConvTranspose2DShape(batch: 1, inChannels: 4, outChannels: 2, height: 2, width: 3, kernel: 1),
        ConvTranspose2DShape(batch: 2, inChannels: 2, outChannels: 2, height: 2, width: 2, kernel: 3, stride: 1, padding: 1),
    ]

    /// y[b, co, ih*s - p + ki, iw*s - p + kj] += x[b, ci, ih, iw] * w[ci, co, ki, kj].
    func definition(_ s: ConvTranspose2DShape, x: [Double], w: [Double], bias: [Double]?) -> [Double] {
        var y = [Double](repeating: 0, count: s.outputCount)
        let oh = s.outHeight, ow = s.outWidth
        for b in 0..<s.batch {
            for ci in 0..<s.inChannels { for ih in 0..<s.height { for iw in 0..<s.width {
                let v = x[((b * s.inChannels + ci) * s.height + ih) * s.width + iw]
                for co in 0..<s.outChannels { for ki in 0..<s.kernel { for kj in 0..<s.kernel {
                    let y0 = ih * s.stride - s.padding + ki, x0 = iw * s.stride - s.padding + kj
                    guard y0 >= 0, y0 < oh, x0 >= 0, x0 < ow else { continue }
                    y[((b * s.outChannels + co) * oh + y0) * ow + x0] += v * w[((ci * s.outChannels + co) * s.kernel + ki) * s.kernel + kj]
                } } }
            } } }
            if let bias { for co in 0..<s.outChannels { for i in 0..<oh * ow { y[(b * s.outChannels + co) * oh * ow + i] += bias[co] } } }
        }
        return y
    }

    func forward(_ s: ConvTranspose2DShape, _ x: [Double], _ w: [Double], _ bias: [Double]?) -> [Double] {
        var y = [Double](repeating: .nan, count: s.outputCount)
        var workspace = [Double](repeating: .nan, count: max(1, s.workspaceCount))
        bias.withOptionalPointer { b in
            convTranspose2dForward(s, output: &y, input: x, weight: w, bias: b, workspace: &workspace)
        }
        return y
    }

    func testForwardEqualsTheDefinition() {
        for (index, s) in Self.shapes.enumerated() {
            let x = randomArray(s.inputCount, seed: 100 + UInt64(index)), w = randomArray(s.weightCount, seed: 200 + UInt64(index))
            let bias = index % 2 == 0 ? randomArray(s.outChannels, seed: 300) : nil
            checkTensor("convtranspose \(index) forward", forward(s, x, w, bias), definition(s, x: x, w: w, bias: bias), rtol: 1e-12, atol: 1e-12)
        }
        XCTAssertEqual(Self.shapes[0].outHeight, 6)
        XCTAssertEqual(Self.shapes[1].outHeight, 5)
    }

    func testBackwardMatchesFiniteDifferences() {
        for (index, s) in Self.shapes.enumerated() {
            var x = randomArray(s.inputCount, seed: 400 + UInt64(index)), w = randomArray(s.weightCount, seed: 500 + UInt64(index))
            var bias = randomArray(s.outChannels, seed: 600)
            let dOut = randomArray(s.outputCount, seed: 700 + UInt64(index))
            var dX = [Double](repeating: .nan, count: s.inputCount)
            var dW = [Double](repeating: 0, count: s.weightCount), dB = [Double](repeating: 0, count: s.outChannels)
            var workspace = [Double](repeating: .nan, count: max(1, s.workspaceCount))
            convTranspose2dBackward(s, dInput: &dX, dWeight: &dW, dBias: &dB, dOutput: dOut, input: x, weight: w,
                                    workspace: &workspace)
            let (fx, fw, fb) = (x, w, bias)
            checkTensor("convtranspose \(index) dInput", dX, numericalGradient(&x) { dot(forward(s, $0, fw, fb), dOut) }, rtol: fdRtol, atol: fdAtol)
            checkTensor("convtranspose \(index) dWeight", dW, numericalGradient(&w) { dot(forward(s, fx, $0, fb), dOut) }, rtol: fdRtol, atol: fdAtol)
            checkTensor("convtranspose \(index) dBias", dB, numericalGradient(&bias) { dot(forward(s, fx, fw, $0), dOut) }, rtol: fdRtol, atol: fdAtol)
        }
    }

    static let networkYAML = """
        input: {channels: 2, height: 4, width: 4}
        timesteps: 3
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard, surrogate: {type: atan, alpha: 2.0}}
        optimizer: {type: sgd, momentum: 0.9}
        layers:
          - conv: {name: enc, out: 4, kernel: 3, padding: 1}
          - neuron: {name: enc_sn}
          - branches:
              name: skip
              join: concat
              paths:
                - []
                - [{maxpool: {name: down, kernel: 2}}, {conv: {name: mid, out: 6, kernel: 1}}, {neuron: {name: mid_sn}},
                   {convtranspose: {name: up, out: 3, kernel: 2, stride: 2, bias: true}}]
          - convtranspose: {name: same, out: 2, kernel: 3, padding: 1}
          - neuron: {name: out_sn}
          - flatten
          - linear: {name: fc, out: 3}
        """

    func testNetworkGradientsMatchFiniteDifferences() throws {
        let profile = try ProfileLoader.parse(yaml: Self.networkYAML, file: "up.yaml")
        XCTAssertEqual(profile.allLayers.first { $0.name == "up" }?.outputShape, TensorShape([3, 4, 4]))
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        var random = SeededRandom(seed: 21)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 6,
                                                 parameters: [("skip/path1/up", "weight"), ("skip/path1/up", "bias"), ("same", "weight")])
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)
    }

    func testPlanMatchesMeasurementUnderEverySchedule() throws {
        let profile = try ProfileLoader.parse(yaml: Self.networkYAML, file: "up.yaml")
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let allocator = CountingAllocator(rounding: .exact)
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, allocator: allocator)
            var random = SeededRandom(seed: 7)
            let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1.5)) }
            let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
            XCTAssertTrue(try trainer.step(images: images, labels: labels).loss.isFinite)
            let plan = try Planner.plan(profile, strategy: strategy, options: .init())
            let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
            XCTAssertNil(comparison.firstDifference, "\(strategy)")
            XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)")
        }
    }

    func testPyTorchCPURefusesItClearly() throws {
        let profile = try ProfileLoader.parse(yaml: Self.networkYAML, file: "up.yaml")
        XCTAssertTrue(Runtime.pytorchCPU.notModelledReason(.bptt, profile)?.contains("transposed conv 'skip/path1/up'") ?? false)
        XCTAssertNil(Runtime.pytorchCUDA.notModelledReason(.bptt, profile))
        XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .pytorchCUDA)))
    }
}

extension Optional where Wrapped == [Double] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Double>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
