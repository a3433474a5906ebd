import Engine
import XCTest

final class UpsampleScaleTests: XCTestCase {
    func testUpsampleByHand() {
        let s = UpsampleShape(batch: 1, channels: 1, height: 2, width: 2, factor: 2)
        var y = [Float](repeating: 0, count: 16)
        upsampleNearestForward(s, output: &y, input: [1, 2, 3, 4])
        XCTAssertEqual(y, [1, 1, 2, 2,
                           1, 1, 2, 2,
                           3, 3, 4, 4,
                           3, 3, 4, 4])
    }

    func testUpsampleBackwardMatchesFiniteDifferences() {
        for factor in [2, 3] {
            let s = UpsampleShape(batch: 2, channels: 3, height: 3, width: 2, factor: factor)
            var x = randomArray(s.inputCount, seed: 71)
            let dOut = randomArray(s.outputCount, seed: 72)
            var dX = [Double](repeating: .nan, count: s.inputCount)
            upsampleNearestBackward(s, dInput: &dX, dOutput: dOut)
            let numX = numericalGradient(&x) { x in
                var y = [Double](repeating: 0, count: s.outputCount)
                upsampleNearestForward(s, output: &y, input: x)
                return dot(y, dOut)
            }
            checkTensor("upsample x\(factor) dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
        }
    }

    func testScaleBackwardMatchesFiniteDifferences() {
        let n = 30
        var x = randomArray(n, seed: 73)
        var a = [0.7]
        let dOut = randomArray(n, seed: 74)
        func forward(_ x: [Double], _ a: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: n)
            scaleForward(count: n, output: &y, input: x, scale: a)
            return y
        }
        var dX = [Double](repeating: .nan, count: n), dA = [2.0]
        scaleBackward(count: n, dInput: &dX, dScale: &dA, dOutput: dOut, input: x, scale: a)
        let numX = numericalGradient(&x) { dot(forward($0, a), dOut) }
        let numA = numericalGradient(&a) { dot(forward(x, $0), dOut) }
        checkTensor("scale dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
        checkTensor("scale dScale", [dA[0] - 2], numA, rtol: fdRtol, atol: fdAtol)
    }

    func testElementwiseHelpers() {
        var out = [Float](repeating: 0, count: 3)
        add(count: 3, output: &out, [1, 2, 3], [10, 20, 30])
        XCTAssertEqual(out, [11, 22, 33])
        subtract(count: 3, output: &out, [1, 2, 3], [10, 20, 30])
        XCTAssertEqual(out, [-9, -18, -27])
        axpy(count: 3, alpha: 2, x: [1, 1, 1], y: &out)
        XCTAssertEqual(out, [-7, -16, -25])
        fill(count: 3, &out, value: 0.5)
        XCTAssertEqual(out, [0.5, 0.5, 0.5])
    }
}
