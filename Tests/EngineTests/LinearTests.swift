import Engine
import XCTest

final class LinearTests: XCTestCase {
    static func forward(_ s: LinearShape, _ x: [Double], _ w: [Double], _ b: [Double]?) -> [Double] {
        var y = [Double](repeating: .nan, count: s.batch * s.outFeatures)
        linearForward(s, output: &y, input: x, weight: w, bias: b)
        return y
    }

    func testForwardByHand() {
        // [1, 2] . W^T with W = [[1, 0], [0, 1], [1, 1]] + b = [0.5, 0, -1] -> [1.5, 2, 2].
        var y = [Float](repeating: 0, count: 3)
        linearForward(LinearShape(batch: 1, inFeatures: 2, outFeatures: 3), output: &y, input: [1, 2],
                      weight: [1, 0, 0, 1, 1, 1], bias: [0.5, 0, -1])
        XCTAssertEqual(y, [1.5, 2, 2])
    }

    func testBackwardMatchesFiniteDifferences() {
        let s = LinearShape(batch: 2, inFeatures: 7, outFeatures: 4)
        var x = randomArray(s.batch * s.inFeatures, seed: 61), w = randomArray(s.weightCount, seed: 62)
        var b = randomArray(s.outFeatures, seed: 63)
        let dOut = randomArray(s.batch * s.outFeatures, seed: 64)
        let start = 1.0
        var dX = [Double](repeating: .nan, count: x.count), dW = [Double](repeating: start, count: w.count)
        var dB = [Double](repeating: start, count: b.count)
        linearBackward(s, dInput: &dX, dWeight: &dW, dBias: &dB, dOutput: dOut, input: x, weight: w)
        let numX = numericalGradient(&x) { dot(Self.forward(s, $0, w, b), dOut) }
        let numW = numericalGradient(&w) { dot(Self.forward(s, x, $0, b), dOut) }
        let numB = numericalGradient(&b) { dot(Self.forward(s, x, w, $0), dOut) }
        checkTensor("linear dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
        checkTensor("linear dWeight", dW.map { $0 - start }, numW, rtol: fdRtol, atol: fdAtol)
        checkTensor("linear dBias", dB.map { $0 - start }, numB, rtol: fdRtol, atol: fdAtol)
    }
}
