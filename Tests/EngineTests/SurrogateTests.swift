import Engine
import XCTest

final class SurrogateTests: XCTestCase {
    static let points = stride(from: -3.0, through: 3.0, by: 0.125).map { $0 + 0.01 }

    func testATanDerivativeMatchesFiniteDifferences() {
        for alpha in [0.5, 2.0, 5.0] {
            let sg = ATanSurrogate<Double>(alpha: alpha)
            var xs = Self.points
            let numeric = numericalGradient(&xs) { x in x.reduce(0) { $0 + sg.primitive($1) } }
            checkTensor("atan alpha \(alpha) derivative", Self.points.map(sg.derivative), numeric, rtol: fdRtol, atol: fdAtol)
            XCTAssertEqual(sg.primitive(0), 0.5, accuracy: 1e-15)
            XCTAssertEqual(sg.derivative(0), alpha / 2, accuracy: 1e-15)
        }
    }

    func testSigmoidDerivativeMatchesFiniteDifferences() {
        for alpha in [1.0, 4.0, 10.0] {
            let sg = SigmoidSurrogate<Double>(alpha: alpha)
            var xs = Self.points
            let numeric = numericalGradient(&xs) { x in x.reduce(0) { $0 + sg.primitive($1) } }
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
