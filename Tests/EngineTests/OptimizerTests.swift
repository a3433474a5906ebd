import Engine
import Profiles
import XCTest

/// Optimizer steps against values worked out by hand from PyTorch's update rules.
final class OptimizerTests: XCTestCase {
    /// lr 0.1, momentum 0.9, weight decay 0.01, p0 = 1, gradient 0.5 at every step:
    ///   step 1: g = 0.5 + 0.01 = 0.51;                 buf = 0.51;                     p = 1 - 0.051 = 0.949
    ///   step 2: g = 0.5 + 0.00949 = 0.50949;           buf = 0.459 + 0.50949 = 0.96849; p = 0.949 - 0.096849 = 0.852151
    ///   step 3: g = 0.5 + 0.00852151 = 0.50852151;     buf = 0.871641 + 0.50852151 = 1.38016251; p = 0.852151 - 0.138016251 = 0.714134749
    func testSGDMomentumWeightDecay() {
        let spec = OptimizerSpec(type: .sgd, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        var p: [Double] = [1, -2], buffer: [Double] = [0, 0]
        let expected: [[Double]] = [[0.949, 0.51], [0.852151, 0.96849], [0.714134749, 1.38016251]]
        for step in 0..<3 {
            sgdStep(spec, count: 2, parameter: &p, gradient: [0.5, 0], momentumBuffer: &buffer)
            XCTAssertEqual(p[0], expected[step][0], accuracy: 1e-12, "step \(step + 1)")
            XCTAssertEqual(buffer[0], expected[step][1], accuracy: 1e-12, "step \(step + 1)")
        }
        // Second element: gradient 0, decay only: g = -0.02, buf = -0.02, p = -1.998; g = -0.01998,
        // buf = -0.018 - 0.01998 = -0.03798, p = -1.998 + 0.003798 = -1.994202.
        var q: [Double] = [-2], b: [Double] = [0]
        sgdStep(spec, count: 1, parameter: &q, gradient: [0], momentumBuffer: &b)
        sgdStep(spec, count: 1, parameter: &q, gradient: [0], momentumBuffer: &b)
        XCTAssertEqual(q[0], -1.994202, accuracy: 1e-12)
    }

    func testPlainSGDNeedsNoBuffer() {
        let spec = OptimizerSpec(type: .sgd, learningRate: 0.5, momentum: 0, weightDecay: 0)
        var p: [Float] = [1, 2]
        sgdStep(spec, count: 2, parameter: &p, gradient: [1, -1], momentumBuffer: nil)
        XCTAssertEqual(p, [0.5, 2.5])
    }

    /// lr 0.1, betas (0.9, 0.999), eps 1e-8, no weight decay, p0 = 1, gradients 1, then -1, then 2:
    ///   step 1: m = 0.1, v = 0.001; m^ = 1, v^ = 1 -> p = 1 - 0.1 * 1 / (1 + 1e-8) = 0.9000000010
    ///   step 2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999;
    ///           m^ = -0.01 / 0.19 = -0.0526315789, v^ = 0.001999 / 0.001999 = 1 -> p += 0.1 * 0.0526315789 / (1 + 1e-8)
    ///   step 3: m = -0.009 + 0.2 = 0.191, v = 0.001997001 + 0.004 = 0.005997001;
    ///           m^ = 0.191 / 0.271, v^ = 0.005997001 / 0.002997001 -> p -= 0.1 * m^ / (sqrt(v^) + 1e-8)
    func testAdam() {
        let spec = OptimizerSpec(type: .adam, learningRate: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        var p: [Double] = [1], m: [Double] = [0], v: [Double] = [0]
        var expected = 1.0
        let steps: [(g: Double, mHat: Double, vHat: Double)] = [
            (1, 1, 1),
            (-1, -0.01 / 0.19, 1),
            (2, 0.191 / 0.271, 0.005997001 / 0.002997001),
        ]
        for (index, step) in steps.enumerated() {
            adamStep(spec, step: index + 1, count: 1, parameter: &p, gradient: [step.g], firstMoment: &m, secondMoment: &v)
            expected -= 0.1 * step.mHat / (step.vHat.squareRoot() + 1e-8)
            XCTAssertEqual(p[0], expected, accuracy: 1e-12, "step \(index + 1)")
        }
        XCTAssertEqual(m[0], 0.191, accuracy: 1e-12)
        XCTAssertEqual(v[0], 0.005997001, accuracy: 1e-12)
    }

    /// Weight decay is added to the gradient (torch.optim.Adam, not AdamW): with p = 2, wd = 0.5 and
    /// gradient 0 the first step sees g = 1 and moves p by lr * 1 / (1 + eps).
    func testAdamWeightDecayCoupled() {
        let spec = OptimizerSpec(type: .adam, learningRate: 0.01, weightDecay: 0.5, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        var p: [Double] = [2], m: [Double] = [0], v: [Double] = [0]
        adamStep(spec, step: 1, count: 1, parameter: &p, gradient: [0], firstMoment: &m, secondMoment: &v)
        XCTAssertEqual(p[0], 2 - 0.01 / (1 + 1e-8), accuracy: 1e-12)
        XCTAssertEqual(m[0], 0.1, accuracy: 1e-15)
    }
}
