import Allocator
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// conv1d with a window (kernel > 1, stride, padding, groups): the kernel pair against a direct
/// reference and finite differences; the kernel-1 GEMM path gives the same numbers; and a network of
/// windowed conv1d layers and adaptive LIF neurons (Tests/PlannerTests/Fixtures/pytorch/profiles/
/// alif-conv1d.yaml): whole-network gradients, checkpoint == bptt, planned == measured.
final class Conv1DWindowTests: XCTestCase {
    static let profilePath = EngineMemoryTests.root.appendingPathComponent("Tests/PlannerTests/Fixtures/pytorch/profiles/alif-conv1d.yaml").path

    static let shapes: [ConvSpec] = [
        ConvSpec(inChannels: 3, outChannels: 4, kernel: 5, padding: 2, bias: true),
        ConvSpec(inChannels: 3, outChannels: 2, kernel: 3, stride: 2, padding: 1),
        ConvSpec(inChannels: 4, outChannels: 6, kernel: 3, padding: 1, groups: 2, bias: true),
        ConvSpec(inChannels: 2, outChannels: 2, kernel: 4, stride: 3),
        ConvSpec(inChannels: 4, outChannels: 4, kernel: 3, padding: 2, groups: 4),
    ]

    /// out[b, o, n] = bias + Σ w x at n * stride - padding + k, zero outside: written out plainly.
    func reference(_ conv: ConvSpec, batch: Int, tokens: Int, x: [Double], w: [Double], bias: [Double]?) -> [Double] {
        let outTokens = (tokens + 2 * conv.padding - conv.kernel) / conv.stride + 1
        let perGroup = conv.inChannels / conv.groups, outPerGroup = conv.outChannels / conv.groups
        var out = [Double](repeating: 0, count: batch * conv.outChannels * outTokens)
        for b in 0..<batch {
            for o in 0..<conv.outChannels {
                for n in 0..<outTokens {
                    var sum = bias?[o] ?? 0
                    for c in 0..<perGroup {
                        for k in 0..<conv.kernel {
                            let position = n * conv.stride - conv.padding + k
                            guard position >= 0 && position < tokens else { continue }
                            sum += w[(o * perGroup + c) * conv.kernel + k] * x[(b * conv.inChannels + (o / outPerGroup) * perGroup + c) * tokens + position]
                        }
                    }
                    out[(b * conv.outChannels + o) * outTokens + n] = sum
                }
            }
        }
        return out
    }

    func testKernelPairMatchesReferenceAndFiniteDifferences() {
        let (batch, tokens) = (2, 9)
        for conv in Self.shapes {
            let shape = Conv1DWindowShape(conv, batch: batch, tokens: tokens)
            var random = SeededRandom(seed: 5)
            let x = (0..<(batch * conv.inChannels * tokens)).map { _ in random.uniform(-1, 1) }
            let w = (0..<(conv.outChannels * conv.inChannels / conv.groups * conv.kernel)).map { _ in random.uniform(-1, 1) }
            let bias = conv.bias ? (0..<conv.outChannels).map { _ in random.uniform(-1, 1) } : nil
            let outCount = batch * conv.outChannels * shape.outTokens
            let g = (0..<outCount).map { _ in random.uniform(-1, 1) }
            func forward(_ x: [Double], _ w: [Double], _ bias: [Double]?) -> [Double] {
                var out = [Double](repeating: .nan, count: outCount)
                conv1dWindowForward(shape, output: &out, input: x, weight: w, bias: bias)
                return out
            }
            func loss(_ x: [Double], _ w: [Double], _ bias: [Double]?) -> Double { zip(forward(x, w, bias), g).reduce(0) { $0 + $1.0 * $1.1 } }
            XCTAssertEqual(forward(x, w, bias), reference(conv, batch: batch, tokens: tokens, x: x, w: w, bias: bias), "\(conv)")
            var dx = [Double](repeating: .nan, count: x.count), dw = [Double](repeating: 0.5, count: w.count)
            var db = [Double](repeating: 0.5, count: conv.outChannels)
            db.withUnsafeMutableBufferPointer { dbs in
                conv1dWindowBackward(shape, dInput: &dx, dWeight: &dw, dBias: conv.bias ? dbs.baseAddress : nil, dOutput: g, input: x, weight: w)
            }
            let e = 1e-6
            for i in 0..<x.count {
                var plus = x, minus = x
                plus[i] += e
                minus[i] -= e
                XCTAssertEqual(dx[i], (loss(plus, w, bias) - loss(minus, w, bias)) / (2 * e), accuracy: 1e-8, "\(conv) x[\(i)]")
            }
            for i in 0..<w.count {  // accumulated onto 0.5
                var plus = w, minus = w
                plus[i] += e
                minus[i] -= e
                XCTAssertEqual(dw[i] - 0.5, (loss(x, plus, bias) - loss(x, minus, bias)) / (2 * e), accuracy: 1e-8, "\(conv) w[\(i)]")
            }
            if let bias {
                for i in 0..<bias.count {
                    var plus = bias, minus = bias
                    plus[i] += e
                    minus[i] -= e
                    XCTAssertEqual(db[i] - 0.5, (loss(x, w, plus) - loss(x, w, minus)) / (2 * e), accuracy: 1e-8, "\(conv) bias[\(i)]")
                }
            }
        }
    }

    /// A kernel-1 conv through the windowed loops equals the GEMM path the transformers use.
    func testKernelOneEqualsTheGEMMPath() {
        let conv = ConvSpec(inChannels: 5, outChannels: 3, kernel: 1, bias: true)
        var random = SeededRandom(seed: 2)
        let x = (0..<(2 * 5 * 7)).map { _ in random.uniform(-1, 1) }
        let w = (0..<15).map { _ in random.uniform(-1, 1) }, bias = (0..<3).map { _ in random.uniform(-1, 1) }
        var window = [Double](repeating: 0, count: 2 * 3 * 7), gemm = window
        conv1dWindowForward(Conv1DWindowShape(conv, batch: 2, tokens: 7), output: &window, input: x, weight: w, bias: bias)
        conv1dForward(Conv1DShape(batch: 2, inChannels: 5, outChannels: 3, tokens: 7), output: &gemm, input: x, weight: w, bias: bias)
        for (a, b) in zip(window, gemm) { XCTAssertEqual(a, b, accuracy: 1e-12) }
    }

    func testNetworkGradientsAndSchedules() throws {
        // A detached reset is not the forward's derivative: finite differences need it attached.
        let text = try String(contentsOfFile: Self.profilePath, encoding: .utf8)
        XCTAssertTrue(text.contains("detachReset: true"))
        var profile = try ProfileLoader.parse(yaml: text.replacingOccurrences(of: "detachReset: true", with: "detachReset: false"),
                                              file: Self.profilePath)
        profile.batch = 2
        profile.timesteps = 3
        XCTAssertEqual(profile.layers[4].outputShape, TensorShape([32, 32]), "stride 2 halves the tokens")
        var random = SeededRandom(seed: 6)
        let x = (0..<(3 * 2 * 2 * 64)).map { _ in random.uniform(0, 1.5) }
        func run(_ strategy: Strategy, segment: Int? = nil, smooth: Bool) throws -> (Trainer<Double>, [String: [Double]]) {
            let trainer = try trainedForGradients(profile, strategy, segment: segment, smooth: smooth, images: x, labels: [0, 7])
            return (trainer, trainer.parameterGradients)
        }
        let (trainer, _) = try run(.bptt, smooth: true)
        let check = try NetworkFiniteDifferences(trainer, images: x, labels: [0, 7], samplesPerTensor: 4)
        XCTAssertLessThan(check.worstRelative, 1e-5, check.worst)
        XCTAssertTrue(check.checkedPaths.isSuperset(of: ["conv1", "conv2", "conv3", "head"]))
        let bptt = try run(.bptt, smooth: false).1
        XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(bptt, try run(.checkpoint, segment: 2, smooth: false).1), 1e-9)
    }

    func testPlanEqualsMeasuredEveryStrategy() throws {
        let profile = try ProfileLoader.load(path: Self.profilePath)
        try assertStepsMatchPlan(profile, labels: [1, 0, 3, 9])
    }
}
