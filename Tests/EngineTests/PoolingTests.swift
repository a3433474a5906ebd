import Engine
import XCTest

final class PoolingTests: XCTestCase {
    static let shapes: [(name: String, shape: Pool2DShape)] = [
        ("2x2 stride 2 on 5x5", Pool2DShape(batch: 2, channels: 3, height: 5, width: 5, kernel: 2)),
        ("3x3 stride 2 pad 1", Pool2DShape(batch: 2, channels: 3, height: 5, width: 5, kernel: 3, stride: 2, padding: 1)),
        ("3x3 stride 1 pad 1", Pool2DShape(batch: 2, channels: 3, height: 5, width: 5, kernel: 3, stride: 1, padding: 1)),
        ("global 5x5", Pool2DShape.global(batch: 2, channels: 3, height: 5, width: 5)),
    ]

    static func avg(_ s: Pool2DShape, _ x: [Double]) -> [Double] {
        var y = [Double](repeating: .nan, count: s.outputCount)
        avgPool2dForward(s, output: &y, input: x)
        return y
    }

    static func max(_ s: Pool2DShape, _ x: [Double]) -> (y: [Double], argmax: [Int32]) {
        var y = [Double](repeating: .nan, count: s.outputCount), argmax = [Int32](repeating: -1, count: s.outputCount)
        maxPool2dForward(s, output: &y, argmax: &argmax, input: x)
        return (y, argmax)
    }

    func testAvgPoolBackwardMatchesFiniteDifferences() {
        for (name, s) in Self.shapes {
            var x = randomArray(s.inputCount, seed: 51)
            let dOut = randomArray(s.outputCount, seed: 52)
            var dX = [Double](repeating: .nan, count: s.inputCount)
            avgPool2dBackward(s, dInput: &dX, dOutput: dOut)
            let numX = numericalGradient(&x) { dot(Self.avg(s, $0), dOut) }
            checkTensor("avgpool dInput [\(name)]", dX, numX, rtol: fdRtol, atol: fdAtol)
        }
    }

    func testMaxPoolBackwardMatchesFiniteDifferences() {
        for (name, s) in Self.shapes {
            // Distinct values (a shuffled ramp), so no two candidates tie and no perturbation flips a max.
            var x = (0..<s.inputCount).map { Double($0) * 0.01 }
            var rng = SeededRandom(seed: 53)
            rng.shuffle(&x)
            let dOut = randomArray(s.outputCount, seed: 54)
            let (_, argmax) = Self.max(s, x)
            var dX = [Double](repeating: .nan, count: s.inputCount)
            maxPool2dBackward(s, dInput: &dX, dOutput: dOut, argmax: argmax)
            let numX = numericalGradient(&x) { dot(Self.max(s, $0).y, dOut) }
            checkTensor("maxpool dInput [\(name)]", dX, numX, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// Hand-worked 4x4 plane, 2x2 windows: averages and maxima with their in-plane indices.
    func testHandComputed() {
        let x: [Float] = [1, 2, 3, 4,
                          5, 6, 7, 8,
                          9, 10, 11, 12,
                          13, 14, 16, 15]
        let s = Pool2DShape(batch: 1, channels: 1, height: 4, width: 4, kernel: 2)
        var y = [Float](repeating: 0, count: 4), argmax = [Int32](repeating: 0, count: 4)
        avgPool2dForward(s, output: &y, input: x)
        XCTAssertEqual(y, [3.5, 5.5, 11.5, 13.5])
        maxPool2dForward(s, output: &y, argmax: &argmax, input: x)
        XCTAssertEqual(y, [6, 8, 14, 16])
        XCTAssertEqual(argmax, [5, 7, 13, 14])
        // Padding counts in the average's divisor (count_include_pad): the corner window of a 3x3/p1 pool
        // sees 4 pixels and divides by 9.
        let padded = Pool2DShape(batch: 1, channels: 1, height: 4, width: 4, kernel: 3, stride: 2, padding: 1)
        var yp = [Float](repeating: 0, count: padded.outputCount)
        avgPool2dForward(padded, output: &yp, input: x)
        XCTAssertEqual(yp[0], (1 + 2 + 5 + 6) / 9)
    }
}
