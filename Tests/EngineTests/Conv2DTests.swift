import Engine
import XCTest

final class Conv2DTests: XCTestCase {
    /// The configurations the brief names: stride 2 with padding, depthwise, bias, and the 1x1 path.
    static let shapes: [(name: String, shape: Conv2DShape, bias: Bool)] = [
        ("3x3 stride 2 pad 1, groups 1, bias", Conv2DShape(batch: 2, inChannels: 3, outChannels: 4, height: 5, width: 5, kernel: 3, stride: 2, padding: 1), true),
        ("3x3 stride 1 pad 1, groups 1", Conv2DShape(batch: 2, inChannels: 3, outChannels: 2, height: 5, width: 5, kernel: 3, stride: 1, padding: 1), false),
        ("3x3 stride 1 pad 0, groups 1", Conv2DShape(batch: 2, inChannels: 3, outChannels: 2, height: 5, width: 5, kernel: 3), false),
        ("3x3 depthwise groups 3, bias", Conv2DShape(batch: 2, inChannels: 3, outChannels: 3, height: 5, width: 5, kernel: 3, stride: 1, padding: 1, groups: 3), true),
        ("3x3 depthwise stride 2, groups 3, multiplier 2", Conv2DShape(batch: 2, inChannels: 3, outChannels: 6, height: 5, width: 5, kernel: 3, stride: 2, padding: 1, groups: 3), false),
        ("2x2 stride 2 pad 0 (patchify)", Conv2DShape(batch: 2, inChannels: 3, outChannels: 2, height: 5, width: 5, kernel: 2, stride: 2), true),
        ("1x1 pointwise (no im2col), bias", Conv2DShape(batch: 2, inChannels: 3, outChannels: 4, height: 5, width: 5, kernel: 1), true),
        ("1x1 pointwise groups 3", Conv2DShape(batch: 2, inChannels: 6, outChannels: 3, height: 5, width: 5, kernel: 1, groups: 3), false),
        ("1x1 stride 2 (im2col)", Conv2DShape(batch: 2, inChannels: 3, outChannels: 2, height: 5, width: 5, kernel: 1, stride: 2), false),
        // An odd batch (the kernel lanes' last round has one sample) and a 5x5 "same" conv on a 3x4 plane,
        // where whole column rows fall into the padding (im2col's stride-1 contiguous-copy path).
        ("5x5 pad 2 on 3x4, batch 3, bias", Conv2DShape(batch: 3, inChannels: 2, outChannels: 3, height: 3, width: 4, kernel: 5, stride: 1, padding: 2), true),
        // The shapes above have small planes, whose samples are gathered into one GEMM (grouped). These
        // run per sample on the kernel lanes (a 12x12 plane), and grouped with a last, smaller group
        // (2x2 planes, 64 samples a group, a batch of 67) with channel groups.
        ("3x3 pad 1 on 12x12 (per-sample lanes), batch 3, bias", Conv2DShape(batch: 3, inChannels: 2, outChannels: 3, height: 12, width: 12, kernel: 3, stride: 1, padding: 1), true),
        ("3x3 pad 1 on 2x2, batch 67, groups 2, bias", Conv2DShape(batch: 67, inChannels: 2, outChannels: 4, height: 2, width: 2, kernel: 3, stride: 1, padding: 1, groups: 2), true),
    ]

    /// Both conv paths are covered by `shapes`, and a grouped batch that leaves a smaller last group.
    func testShapesCoverPerSampleAndGroupedPaths() {
        let paths = Self.shapes.filter { !$0.shape.isPointwise }.map(\.shape.isGrouped)
        XCTAssertTrue(paths.contains(true) && paths.contains(false))
        XCTAssertTrue(Self.shapes.contains { $0.shape.isGrouped && $0.shape.batch % $0.shape.sampleGroup != 0 })
    }

    /// Direct convolution, the definition itself: an independent check of forward.
    static func naiveForward(_ s: Conv2DShape, input: [Double], weight: [Double], bias: [Double]?) -> [Double] {
        var out = [Double](repeating: 0, count: s.outputCount)
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        for b in 0..<s.batch {
            for co in 0..<s.outChannels {
                let g = co / coutG
                for oh in 0..<s.outHeight {
                    for ow in 0..<s.outWidth {
                        var sum = bias?[co] ?? 0
                        for ci in 0..<cinG {
                            let c = g * cinG + ci
                            for ki in 0..<s.kernel {
                                for kj in 0..<s.kernel {
                                    let ih = oh * s.stride - s.padding + ki, iw = ow * s.stride - s.padding + kj
                                    guard ih >= 0, ih < s.height, iw >= 0, iw < s.width else { continue }
                                    sum += input[((b * s.inChannels + c) * s.height + ih) * s.width + iw]
                                        * weight[((co * cinG + ci) * s.kernel + ki) * s.kernel + kj]
                                }
                            }
                        }
                        out[((b * s.outChannels + co) * s.outHeight + oh) * s.outWidth + ow] = sum
                    }
                }
            }
        }
        return out
    }

    /// The kernel's forward with a workspace of exactly the declared size, followed by canaries that
    /// must survive: the kernel may use that much scratch and no more.
    static func forward(_ s: Conv2DShape, input: [Double], weight: [Double], bias: [Double]?) -> [Double] {
        var out = [Double](repeating: .nan, count: s.outputCount)
        var workspace = [Double](repeating: .nan, count: s.workspaceCount + 4)
        workspace.withUnsafeMutableBufferPointer { ws in
            conv2dForward(s, output: &out, input: input, weight: weight, bias: bias, workspace: s.isPointwise ? nil : ws.baseAddress)
        }
        precondition(workspace.suffix(4).allSatisfy { $0.isNaN }, "conv forward wrote past its workspace")
        return out
    }

    func testForwardMatchesDirectConvolution() {
        for (name, s, hasBias) in Self.shapes {
            let x = randomArray(s.inputCount, seed: 1), w = randomArray(s.weightCount, seed: 2)
            let b = hasBias ? randomArray(s.outChannels, seed: 3) : nil
            checkTensor("conv forward [\(name)]", Self.forward(s, input: x, weight: w, bias: b),
                        Self.naiveForward(s, input: x, weight: w, bias: b), rtol: 1e-12, atol: 1e-12)
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        for (name, s, hasBias) in Self.shapes {
            var x = randomArray(s.inputCount, seed: 11), w = randomArray(s.weightCount, seed: 12)
            var b = hasBias ? randomArray(s.outChannels, seed: 13) : []
            let dOut = randomArray(s.outputCount, seed: 14)
            // Parameter gradients accumulate: start them from a known value and subtract it afterwards.
            let start = 0.25
            var dX = [Double](repeating: .nan, count: s.inputCount)
            var dW = [Double](repeating: start, count: s.weightCount)
            var dB = [Double](repeating: start, count: s.outChannels)
            var workspace = [Double](repeating: .nan, count: s.workspaceCount + 4)
            workspace.withUnsafeMutableBufferPointer { ws in
                dB.withUnsafeMutableBufferPointer { db in
                    conv2dBackward(s, dInput: &dX, dWeight: &dW, dBias: hasBias ? db.baseAddress : nil, dOutput: dOut, input: x, weight: w,
                                   workspace: s.isPointwise ? nil : ws.baseAddress)
                }
            }
            XCTAssertTrue(workspace.suffix(4).allSatisfy { $0.isNaN }, "conv backward wrote past its workspace")
            let bias = hasBias ? b : nil
            let numX = numericalGradient(&x) { dot(Self.forward(s, input: $0, weight: w, bias: bias), dOut) }
            let numW = numericalGradient(&w) { dot(Self.forward(s, input: x, weight: $0, bias: bias), dOut) }
            checkTensor("conv dInput [\(name)]", dX, numX, rtol: fdRtol, atol: fdAtol)
            checkTensor("conv dWeight [\(name)]", dW.map { $0 - start }, numW, rtol: fdRtol, atol: fdAtol)
            if hasBias {
                let numB = numericalGradient(&b) { dot(Self.forward(s, input: x, weight: w, bias: $0), dOut) }
                checkTensor("conv dBias [\(name)]", dB.map { $0 - start }, numB, rtol: fdRtol, atol: fdAtol)
            } else {
                XCTAssertEqual(dB, [Double](repeating: start, count: s.outChannels))
            }
        }
    }

    /// Without dInput (a first layer), the parameter gradients are the same.
    func testBackwardWithoutInputGradient() {
        let s = Self.shapes[0].shape
        let x = randomArray(s.inputCount, seed: 21), w = randomArray(s.weightCount, seed: 22), dOut = randomArray(s.outputCount, seed: 23)
        var dW1 = [Double](repeating: 0, count: s.weightCount), dW2 = dW1, dX = [Double](repeating: 0, count: s.inputCount)
        var workspace = [Double](repeating: 0, count: s.workspaceCount)
        conv2dBackward(s, dInput: &dX, dWeight: &dW1, dBias: nil, dOutput: dOut, input: x, weight: w, workspace: &workspace)
        conv2dBackward(s, dInput: nil, dWeight: &dW2, dBias: nil, dOutput: dOut, input: x, weight: w, workspace: &workspace)
        XCTAssertEqual(dW1, dW2)
    }

    /// Float and Double run the same code on the same (float-representable) inputs. Each output is a
    /// dot product of K = Cin*k*k (forward) or up to B*Hout*Wout (dWeight) terms of size <= 1; float32
    /// rounding gives an error of at most about K * 2^-24 * sum|terms|, so for these K < 100 a bound of
    /// 1e-5 relative to the sum of absolute terms (tested as 2e-5 * (1 + |value|)) holds with margin.
    func testFloatAgreesWithDouble() {
        for (name, s, hasBias) in Self.shapes {
            let x = randomArray(s.inputCount, seed: 31).map { Double(Float($0)) }
            let w = randomArray(s.weightCount, seed: 32).map { Double(Float($0)) }
            let b = hasBias ? randomArray(s.outChannels, seed: 33).map { Double(Float($0)) } : nil
            let dOut = randomArray(s.outputCount, seed: 34).map { Double(Float($0)) }
            let outD = Self.forward(s, input: x, weight: w, bias: b)
            var outF = [Float](repeating: 0, count: s.outputCount)
            var workspaceF = [Float](repeating: 0, count: s.workspaceCount)
            conv2dForward(s, output: &outF, input: x.map { Float($0) }, weight: w.map { Float($0) }, bias: b?.map { Float($0) },
                          workspace: &workspaceF)
            checkTensor("conv forward Float vs Double [\(name)]", outF.map { Double($0) }, outD, rtol: 2e-5, atol: 2e-5)

            var dXD = [Double](repeating: 0, count: s.inputCount), dWD = [Double](repeating: 0, count: s.weightCount)
            var workspaceD = [Double](repeating: 0, count: s.workspaceCount)
            conv2dBackward(s, dInput: &dXD, dWeight: &dWD, dBias: nil, dOutput: dOut, input: x, weight: w,
                           workspace: &workspaceD)
            var dXF = [Float](repeating: 0, count: s.inputCount), dWF = [Float](repeating: 0, count: s.weightCount)
            conv2dBackward(s, dInput: &dXF, dWeight: &dWF, dBias: nil, dOutput: dOut.map { Float($0) }, input: x.map { Float($0) },
                           weight: w.map { Float($0) }, workspace: &workspaceF)
            checkTensor("conv dInput Float vs Double [\(name)]", dXF.map { Double($0) }, dXD, rtol: 2e-5, atol: 2e-5)
            checkTensor("conv dWeight Float vs Double [\(name)]", dWF.map { Double($0) }, dWD, rtol: 2e-5, atol: 2e-5)
        }
    }
}
