import Engine
import XCTest

final class SurrogateTests: XCTestCase {
    static let points = stride(from: -3.0, through: 3.0, by: 0.125).map { $0 + 0.01 }

    /// One point at a time (not through a summed loss), so the rounding error stays that of one
    /// primitive value (about 1e-16 / 1e-6) and the far tails, where the derivative is tiny, are
    /// still compared meaningfully.
    static func centralDifference(_ f: (Double) -> Double, at x: Double, eps: Double = 1e-6) -> Double {
        (f(x + eps) - f(x - eps)) / (2 * eps)
    }

    func testATanDerivativeMatchesFiniteDifferences() {
        for alpha in [0.5, 2.0, 5.0] {
            let sg = ATanSurrogate<Double>(alpha: alpha)
            let numeric = Self.points.map { Self.centralDifference(sg.primitive, at: $0) }
            checkTensor("atan alpha \(alpha) derivative", Self.points.map(sg.derivative), numeric, rtol: fdRtol, atol: fdAtol)
            XCTAssertEqual(sg.primitive(0), 0.5, accuracy: 1e-15)
            XCTAssertEqual(sg.derivative(0), alpha / 2, accuracy: 1e-15)
        }
    }

    func testSigmoidDerivativeMatchesFiniteDifferences() {
        for alpha in [1.0, 4.0, 10.0] {
            let sg = SigmoidSurrogate<Double>(alpha: alpha)
            let numeric = Self.points.map { Self.centralDifference(sg.primitive, at: $0) }
            checkTensor("sigmoid alpha \(alpha) derivative", Self.points.map(sg.derivative), numeric, rtol: fdRtol, atol: fdAtol)
            XCTAssertEqual(sg.primitive(0), 0.5, accuracy: 1e-15)
            XCTAssertEqual(sg.derivative(0), alpha / 4, accuracy: 1e-15)
        }
    }

    /// The primitives are smooth steps from 0 to 1 and the Float versions do not overflow far out.
    func testLimits() {
        let sigmoid = SigmoidSurrogate<Float>(alpha: 4), atan = ATanSurrogate<Float>(alpha: 2)
        XCTAssertEqual(sigmoid.primitive(-1000), 0)
        XCTAssertEqual(sigmoid.primitive(1000), 1)
        XCTAssertEqual(sigmoid.derivative(-1000), 0)
        XCTAssertEqual(atan.primitive(-1e6), 0, accuracy: 1e-6)
        XCTAssertEqual(atan.primitive(1e6), 1, accuracy: 1e-6)
    }
}
