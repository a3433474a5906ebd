import Engine
import Profiles
import XCTest

/// ParametricLIF's kernels: a hand-computed step, and dL/dx, dL/dv0 and dL/dw through time against
/// finite differences of the smoothed forward (spike = the surrogate's primitive, so it is differentiable).
final class ParametricNeuronTests: XCTestCase {
    static let count = 7, timesteps = 4

    func testHandComputedStepEqualsLIFAtItsInitialTau() {
        // w = -ln(tau - 1) gives q = 1 / tau: the first step is a LIF's.
        let spec = NeuronSpec(type: .plif, tau: 2, threshold: 1, reset: .hard)
        let q = plifDecay(Float(-log(spec.tau - 1)))
        XCTAssertEqual(q, 0.5, accuracy: 1e-7)
        var s = [Float](repeating: 0, count: 2), h = s, f = s, v = s
        plifForward(spec, q: q, count: 2, spike: &s, h: &h, factor: &f, vNext: &v, input: [2, 0.2], v: [0.5, 0.5])
        XCTAssertEqual(s, [1, 0])
        XCTAssertEqual(h, [1.25, 0.35])
        XCTAssertEqual(f, [1.5, -0.3])
        XCTAssertEqual(v, [0, 0.35])
        var noDecay = spec
        noDecay.decayInput = false
        plifForward(noDecay, q: q, count: 2, spike: &s, h: &h, factor: &f, vNext: &v, input: [2, 0.2], v: [0.5, 0.5])
        XCTAssertEqual(h, [2.25, 0.45])  // v - (v - 0) q + x
        XCTAssertEqual(f, [0.5, 0.5])
    }

    /// L = sum_t <spike_t, gS_t> + <v_T, gV> over T smoothed steps from v0, with q = sigmoid(w).
    static func loss(_ spec: NeuronSpec, x: [Double], v0: [Double], w: Double, gS: [Double], gV: [Double]) -> Double {
        var v = v0, total = 0.0
        for t in 0..<timesteps {
            var s = [Double](repeating: 0, count: count), h = s, f = s, vNext = s
            plifForward(spec, q: plifDecay(w), count: count, smooth: true, spike: &s, h: &h, factor: &f, vNext: &vNext,
                        input: Array(x[t * count..<(t + 1) * count]), v: v)
            total += dot(s, Array(gS[t * count..<(t + 1) * count]))
            v = vNext
        }
        return total + dot(v, gV)
    }

    func testBackwardThroughTimeMatchesFiniteDifferences() {
        let specs: [(String, NeuronSpec)] = [
            ("hard atan", NeuronSpec(type: .plif, tau: 2, threshold: 0.5, vReset: -0.1, reset: .hard, surrogate: .atan)),
            ("soft sigmoid", NeuronSpec(type: .plif, tau: 3, threshold: 0.6, reset: .soft, surrogate: .sigmoid, surrogateAlpha: 4)),
            ("no decay input", { var s = NeuronSpec(type: .plif, tau: 1.5, threshold: 0.7, reset: .hard); s.decayInput = false; return s }()),
        ]
        for (index, (name, spec)) in specs.enumerated() {
            var x = randomArray(Self.timesteps * Self.count, seed: 10 + UInt64(index), low: -0.5, high: 1.5)
            var v0 = randomArray(Self.count, seed: 20 + UInt64(index), low: -0.3, high: 0.6)
            var w = [0.3 - Double(index) * 0.4]
            let gS = randomArray(Self.timesteps * Self.count, seed: 30 + UInt64(index))
            let gV = randomArray(Self.count, seed: 40 + UInt64(index))
            // Forward, keeping h and f per timestep.
            let q = plifDecay(w[0])
            var v = v0, hs: [[Double]] = [], fs: [[Double]] = []
            for t in 0..<Self.timesteps {
                var s = [Double](repeating: 0, count: Self.count), h = s, f = s, vNext = s
                plifForward(spec, q: q, count: Self.count, smooth: true, spike: &s, h: &h, factor: &f, vNext: &vNext,
                            input: Array(x[t * Self.count..<(t + 1) * Self.count]), v: v)
                hs.append(h)
                fs.append(f)
                v = vNext
            }
            var dV = gV, dX = [Double](repeating: .nan, count: x.count), dq = 0.0
            for t in stride(from: Self.timesteps - 1, through: 0, by: -1) {
                var dXt = [Double](repeating: .nan, count: Self.count)
                dq += plifBackward(spec, q: q, count: Self.count, smooth: true, dInput: &dXt, dVPrevious: &dV,
                                   dSpike: Array(gS[t * Self.count..<(t + 1) * Self.count]), dVNext: dV, h: hs[t], factor: fs[t])
                dX.replaceSubrange(t * Self.count..<(t + 1) * Self.count, with: dXt)
            }
            let numX = numericalGradient(&x) { Self.loss(spec, x: $0, v0: v0, w: w[0], gS: gS, gV: gV) }
            let numV = numericalGradient(&v0) { Self.loss(spec, x: x, v0: $0, w: w[0], gS: gS, gV: gV) }
            let numW = numericalGradient(&w) { Self.loss(spec, x: x, v0: v0, w: $0[0], gS: gS, gV: gV) }
            checkTensor("\(name) dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
            checkTensor("\(name) dV0", dV, numV, rtol: fdRtol, atol: fdAtol)
            checkTensor("\(name) dW", [dq * q * (1 - q)], numW, rtol: fdRtol, atol: fdAtol)
        }
    }
}
