import Engine
import XCTest

/// Dropout, adaptive average pooling and voting: values by hand, gradients against finite differences.
final class DVSLayerTests: XCTestCase {
    func testAdaptivePoolWindowsArePyTorchs() {
        // 5 -> 3: rows [0, 2), [1, 4), [3, 5) (floor(i*5/3) ..< ceil((i+1)*5/3)); 1 -> 2: the one row twice.
        let s = AdaptivePool2DShape(batch: 1, channels: 1, height: 5, width: 1, outHeight: 3, outWidth: 2)
        var y = [Float](repeating: 0, count: 6)
        adaptiveAvgPool2dForward(s, output: &y, input: [1, 2, 3, 4, 5])
        XCTAssertEqual(y, [1.5, 1.5, 3, 3, 4.5, 4.5])
    }

    func testAdaptivePoolBackwardMatchesFiniteDifferences() {
        // Uneven (7 -> 3), upsampling (1 -> 7, 2 -> 3) and whole (4 -> 2) ratios.
        for (h, w, oh, ow) in [(7, 5, 3, 3), (1, 1, 7, 7), (2, 3, 3, 2), (4, 4, 2, 2)] {
            let s = AdaptivePool2DShape(batch: 2, channels: 3, height: h, width: w, outHeight: oh, outWidth: ow)
            var x = randomArray(s.inputCount, seed: 81)
            let dOut = randomArray(s.outputCount, seed: 82)
            var dX = [Double](repeating: .nan, count: s.inputCount)
            adaptiveAvgPool2dBackward(s, dInput: &dX, dOutput: dOut)
            let numX = numericalGradient(&x) { x in
                var y = [Double](repeating: 0, count: s.outputCount)
                adaptiveAvgPool2dForward(s, output: &y, input: x)
                return dot(y, dOut)
            }
            checkTensor("adaptive \(h)x\(w) -> \(oh)x\(ow) dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
        }
    }

    func testVotingAveragesGroupsAndBackpropagates() {
        var y = [Float](repeating: 0, count: 2)
        votingForward(batch: 1, features: 6, size: 3, output: &y, input: [1, 2, 3, 10, 20, 30])
        XCTAssertEqual(y, [2, 20])
        var x = randomArray(2 * 20, seed: 83)
        let dOut = randomArray(2 * 4, seed: 84)
        var dX = [Double](repeating: .nan, count: x.count)
        votingBackward(batch: 2, features: 20, size: 5, dInput: &dX, dOutput: dOut)
        let numX = numericalGradient(&x) { x in
            var y = [Double](repeating: 0, count: 8)
            votingForward(batch: 2, features: 20, size: 5, output: &y, input: x)
            return dot(y, dOut)
        }
        checkTensor("voting dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
    }

    func testDropoutMaskIsSeededScaledAndNearP() {
        let n = 20_000
        var a = [Float](repeating: -1, count: n), b = a, c = a
        dropoutMask(count: n, probability: 0.3, seed: 7, layerKey: dropoutLayerKey("fc"), mask: &a)
        dropoutMask(count: n, probability: 0.3, seed: 7, layerKey: dropoutLayerKey("fc"), mask: &b)
        dropoutMask(count: n, probability: 0.3, seed: 8, layerKey: dropoutLayerKey("fc"), mask: &c)
        XCTAssertEqual(a, b, "the same seed and layer draw the same mask (recomputation, single-step timesteps)")
        XCTAssertNotEqual(a, c, "another step's seed draws another mask")
        XCTAssertTrue(a.allSatisfy { $0 == 0 || $0 == Float(1 / 0.7) })
        let dropped = Double(a.filter { $0 == 0 }.count) / Double(n)
        XCTAssertEqual(dropped, 0.3, accuracy: 0.015)
    }

    func testDropoutBackwardMatchesFiniteDifferences() {
        let n = 50
        var mask = [Double](repeating: 0, count: n)
        dropoutMask(count: n, probability: 0.5, seed: 3, layerKey: 11, mask: &mask)
        var x = randomArray(n, seed: 85)
        let dOut = randomArray(n, seed: 86)
        var dX = [Double](repeating: .nan, count: n)
        dropoutBackward(count: n, dInput: &dX, dOutput: dOut, mask: mask)
        let numX = numericalGradient(&x) { x in
            var y = [Double](repeating: 0, count: n)
            dropoutForward(count: n, output: &y, input: x, mask: mask)
            return dot(y, dOut)
        }
        checkTensor("dropout dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
    }
}
