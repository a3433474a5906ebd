import Engine
import Profiles
import XCTest

/// The neurons' hand-written backward against finite differences of a smoothed forward.
///
/// The real forward fires with a Heaviside step, whose derivative is zero almost everywhere, so its
/// finite differences say nothing about the surrogate. The reference forward below fires with
///   s(h) = H(h0 - threshold) + P(h - threshold) - P(h0 - threshold),
/// where P is the surrogate's primitive and h0 the value h took in the unperturbed run (a constant per
/// timestep and neuron). At the unperturbed point s equals the real spike, so every value (spikes,
/// resets, later potentials) equals the real forward's; and ds/dh = P'(h - threshold) = sg', exactly
/// the surrogate gradient. So the reference is the Heaviside replaced by the surrogate's primitive,
/// shifted to keep the forward values, and its derivative is what the backward must compute. With
/// detachReset the reset uses the frozen spike H(h0 - threshold) alone (no dependence on h).
final class SpikingNeuronTests: XCTestCase {
    static let timesteps = 5
    static let count = 12

    /// Inputs spread so that, over the timesteps, some neurons fire, some stay below threshold and
    /// some sit near it (where sg' is largest).
    static func inputs(seed: UInt64) -> [Double] {
        randomArray(timesteps * count, seed: seed, low: -0.5, high: 2.5)
    }

    /// The smoothed reference over T timesteps: returns (spikes per timestep, h per timestep, final v).
    /// `frozenH` is h0 of the unperturbed run (nil: this is the unperturbed run, use h itself).
    static func referenceForward(_ spec: NeuronSpec, inputs: [Double], v0: [Double], frozenH: [Double]?)
        -> (spikes: [Double], h: [Double], v: [Double]) {
        let atan = ATanSurrogate<Double>(alpha: spec.surrogateAlpha), sigmoid = SigmoidSurrogate<Double>(alpha: spec.surrogateAlpha)
        func primitive(_ x: Double) -> Double { spec.surrogate == .atan ? atan.primitive(x) : sigmoid.primitive(x) }
        let leakTarget = spec.reset == .hard ? spec.vReset : 0
        var v = v0
        var spikes: [Double] = [], hs: [Double] = []
        for t in 0..<timesteps {
            for i in 0..<count {
                let x = inputs[t * count + i]
                let h = spec.type == .lif ? v[i] + (x - (v[i] - leakTarget)) / spec.tau : v[i] + x
                let h0 = frozenH?[t * count + i] ?? h
                let heaviside: Double = h0 >= spec.threshold ? 1 : 0
                let s = heaviside + (primitive(h - spec.threshold) - primitive(h0 - spec.threshold))  // exactly H at h = h0
                let sReset = spec.detachReset ? heaviside : s
                v[i] = spec.reset == .hard ? h * (1 - sReset) + spec.vReset * sReset : h - sReset * spec.threshold
                spikes.append(s)
                hs.append(h)
            }
        }
        return (spikes, hs, v)
    }

    static let specs: [(name: String, spec: NeuronSpec)] = [
        ("LIF hard atan", NeuronSpec(type: .lif, tau: 2, threshold: 1, vReset: 0, reset: .hard, detachReset: false, surrogate: .atan, surrogateAlpha: 2)),
        ("LIF hard atan detachReset", NeuronSpec(type: .lif, tau: 2, threshold: 1, vReset: 0, reset: .hard, detachReset: true, surrogate: .atan, surrogateAlpha: 2)),
        ("LIF soft atan", NeuronSpec(type: .lif, tau: 2, threshold: 1, vReset: 0, reset: .soft, detachReset: false, surrogate: .atan, surrogateAlpha: 2)),
        ("LIF soft atan detachReset", NeuronSpec(type: .lif, tau: 2, threshold: 1, vReset: 0, reset: .soft, detachReset: true, surrogate: .atan, surrogateAlpha: 2)),
        ("LIF hard sigmoid vReset -0.2 tau 3", NeuronSpec(type: .lif, tau: 3, threshold: 1, vReset: -0.2, reset: .hard, detachReset: false, surrogate: .sigmoid, surrogateAlpha: 4)),
        ("LIF soft sigmoid detachReset", NeuronSpec(type: .lif, tau: 2, threshold: 0.8, vReset: 0, reset: .soft, detachReset: true, surrogate: .sigmoid, surrogateAlpha: 4)),
        ("IF hard atan", NeuronSpec(type: .if, threshold: 1, vReset: 0, reset: .hard, detachReset: false, surrogate: .atan, surrogateAlpha: 2)),
        ("IF soft sigmoid", NeuronSpec(type: .if, threshold: 1, vReset: 0, reset: .soft, detachReset: false, surrogate: .sigmoid, surrogateAlpha: 4)),
        ("IF hard sigmoid detachReset", NeuronSpec(type: .if, threshold: 1, vReset: 0, reset: .hard, detachReset: true, surrogate: .sigmoid, surrogateAlpha: 4)),
    ]

    /// The kernel's forward over T steps, v updated in place as the engine will.
    static func kernelForward(_ spec: NeuronSpec, inputs: [Double], v0: [Double]) -> (spikes: [Double], h: [Double], v: [Double]) {
        var v = v0
        var spikes = [Double](repeating: .nan, count: timesteps * count), h = spikes
        for t in 0..<timesteps {
            let x = Array(inputs[t * count..<(t + 1) * count])
            var s = [Double](repeating: .nan, count: count), ht = s
            v.withUnsafeMutableBufferPointer { vp in
                neuronForward(spec, count: count, spike: &s, h: &ht, vNext: vp.baseAddress!, input: x, v: UnsafePointer(vp.baseAddress!))
            }
            spikes.replaceSubrange(t * count..<(t + 1) * count, with: s)
            h.replaceSubrange(t * count..<(t + 1) * count, with: ht)
        }
        return (spikes, h, v)
    }

    func testKernelForwardEqualsReferenceValues() {
        for (name, spec) in Self.specs {
            let x = Self.inputs(seed: 5)
            let v0 = [Double](repeating: neuronInitialPotential(spec), count: Self.count)
            let kernel = Self.kernelForward(spec, inputs: x, v0: v0)
            let reference = Self.referenceForward(spec, inputs: x, v0: v0, frozenH: nil)
            checkTensor("\(name) forward spikes", kernel.spikes, reference.spikes, rtol: 0, atol: 0)
            checkTensor("\(name) forward h", kernel.h, reference.h, rtol: 1e-14, atol: 1e-14)
            checkTensor("\(name) forward v", kernel.v, reference.v, rtol: 1e-14, atol: 1e-14)
            XCTAssertTrue(kernel.spikes.contains(1) && kernel.spikes.contains(0), "\(name): the inputs should make some neurons fire and some not")
        }
    }

    /// L = sum_t <gS_t, s_t> + <gV, v_T>; backward runs t = T-1 ... 0 with dV carried in one buffer.
    func testBackwardThroughTimeMatchesFiniteDifferences() {
        for (index, (name, spec)) in Self.specs.enumerated() {
            var x = Self.inputs(seed: 100 + UInt64(index))
            var v0 = randomArray(Self.count, seed: 200 + UInt64(index), low: -0.3, high: 0.6)
            let gS = randomArray(Self.timesteps * Self.count, seed: 300 + UInt64(index))
            let gV = randomArray(Self.count, seed: 400 + UInt64(index))
            let base = Self.kernelForward(spec, inputs: x, v0: v0)

            var dV = gV  // gradient w.r.t. v after the last timestep
            var dX = [Double](repeating: .nan, count: Self.timesteps * Self.count)
            for t in stride(from: Self.timesteps - 1, through: 0, by: -1) {
                let range = t * Self.count..<(t + 1) * Self.count
                var dXt = [Double](repeating: .nan, count: Self.count)
                let dS = Array(gS[range]), h = Array(base.h[range])
                dV.withUnsafeMutableBufferPointer { dv in
                    neuronBackward(spec, count: Self.count, dInput: &dXt, dVPrevious: dv.baseAddress,
                                   dSpike: dS, dVNext: UnsafePointer(dv.baseAddress), h: h)
                }
                dX.replaceSubrange(range, with: dXt)
            }

            func loss(_ x: [Double], _ v0: [Double]) -> Double {
                let r = Self.referenceForward(spec, inputs: x, v0: v0, frozenH: base.h)
                return dot(r.spikes, gS) + dot(r.v, gV)
            }
            let numX = numericalGradient(&x) { loss($0, v0) }
            let numV0 = numericalGradient(&v0) { loss(x, $0) }
            checkTensor("\(name) dInput over \(Self.timesteps) steps", dX, numX, rtol: fdRtol, atol: fdAtol)
            checkTensor("\(name) dV0 over \(Self.timesteps) steps", dV, numV0, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// SLTT cuts the gradient through v: one step with dVNext = nil, and dX is the derivative of
    /// <gS, s> through h alone (v held fixed); dVPrevious is the derivative w.r.t. v of the same.
    func testSingleStepWithoutTemporalGradient() {
        for (index, (name, spec)) in Self.specs.enumerated() {
            var x = randomArray(Self.count, seed: 500 + UInt64(index), low: -0.5, high: 2.5)
            var v = randomArray(Self.count, seed: 600 + UInt64(index), low: -0.3, high: 0.6)
            let gS = randomArray(Self.count, seed: 700 + UInt64(index))
            var s = [Double](repeating: 0, count: Self.count), h = s, vNext = s
            neuronForward(spec, count: Self.count, spike: &s, h: &h, vNext: &vNext, input: x, v: v)
            var dX = [Double](repeating: .nan, count: Self.count), dVPrev = dX, dXOnly = dX
            neuronBackward(spec, count: Self.count, dInput: &dX, dVPrevious: &dVPrev, dSpike: gS, dVNext: nil, h: h)
            neuronBackward(spec, count: Self.count, dInput: &dXOnly, dVPrevious: nil, dSpike: gS, dVNext: nil, h: h)
            XCTAssertEqual(dX, dXOnly)

            let atan = ATanSurrogate<Double>(alpha: spec.surrogateAlpha), sigmoid = SigmoidSurrogate<Double>(alpha: spec.surrogateAlpha)
            let leakTarget = spec.reset == .hard ? spec.vReset : 0
            func loss(_ x: [Double], _ v: [Double]) -> Double {
                var sum = 0.0
                for i in 0..<Self.count {
                    let hi = spec.type == .lif ? v[i] + (x[i] - (v[i] - leakTarget)) / spec.tau : v[i] + x[i]
                    let p = spec.surrogate == .atan ? atan.primitive(hi - spec.threshold) : sigmoid.primitive(hi - spec.threshold)
                    sum += gS[i] * p
                }
                return sum
            }
            let numX = numericalGradient(&x) { loss($0, v) }
            let numV = numericalGradient(&v) { loss(x, $0) }
            checkTensor("\(name) single step dInput (dV cut)", dX, numX, rtol: fdRtol, atol: fdAtol)
            checkTensor("\(name) single step dVPrevious (dV cut)", dVPrev, numV, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// A hand-computed LIF step (tau 2, threshold 1, hard reset to 0): v = 0.5, x = 2 -> h = 1.25, fires, v' = 0;
    /// x = 0.2 -> h = 0.35, silent, v' = 0.35. Soft reset: v' = 0.25 and 0.35 (leak towards 0).
    func testHandComputedStep() {
        var spec = NeuronSpec(type: .lif, tau: 2, threshold: 1, vReset: 0, reset: .hard)
        var s = [Float](repeating: 0, count: 2), h = s, vNext = s
        neuronForward(spec, count: 2, spike: &s, h: &h, vNext: &vNext, input: [2, 0.2], v: [0.5, 0.5])
        XCTAssertEqual(s, [1, 0])
        XCTAssertEqual(h, [1.25, 0.35])
        XCTAssertEqual(vNext, [0, 0.35])
        spec.reset = .soft
        neuronForward(spec, count: 2, spike: &s, h: &h, vNext: &vNext, input: [2, 0.2], v: [0.5, 0.5])
        XCTAssertEqual(vNext[0], 0.25, accuracy: 1e-7)
        XCTAssertEqual(vNext[1], 0.35, accuracy: 1e-7)
        XCTAssertEqual(neuronInitialPotential(NeuronSpec(vReset: -0.5, reset: .hard)), -0.5)
        XCTAssertEqual(neuronInitialPotential(NeuronSpec(vReset: -0.5, reset: .soft)), 0)
    }

    func testTurnOffNeuron() {
        for surrogate in SurrogateKind.allCases {
            let spec = NeuronSpec(type: .turnoff, threshold: 0.5, surrogate: surrogate, surrogateAlpha: 3)
            let n = 20
            var x = randomArray(n, seed: 800, low: -1, high: 2)
            let gS = randomArray(n, seed: 801)
            var s = [Double](repeating: .nan, count: n), dX = s
            turnOffNeuronForward(spec, count: n, spike: &s, input: x)
            XCTAssertEqual(s, x.map { $0 >= 0.5 ? 1 : 0 })
            turnOffNeuronBackward(spec, count: n, dInput: &dX, dSpike: gS, input: x)
            let atan = ATanSurrogate<Double>(alpha: 3), sigmoid = SigmoidSurrogate<Double>(alpha: 3)
            let numX = numericalGradient(&x) { x in
                dot(x.map { surrogate == .atan ? atan.primitive($0 - 0.5) : sigmoid.primitive($0 - 0.5) }, gS)
            }
            checkTensor("turn-off \(surrogate) dInput", dX, numX, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// The Float path fires identically and its gradients agree with Double's to float32 rounding of a
    /// few multiply-adds per element per step (relative 1e-5 with T = 5 steps of accumulation).
    func testFloatAgreesWithDouble() {
        for (name, spec) in Self.specs {
            let xD = Self.inputs(seed: 900).map { Double(Float($0)) }
            let v0 = [Double](repeating: neuronInitialPotential(spec), count: Self.count)
            let d = Self.kernelForward(spec, inputs: xD, v0: v0)
            var v = v0.map { Float($0) }
            var spikesF: [Float] = [], hF: [Float] = []
            for t in 0..<Self.timesteps {
                var s = [Float](repeating: 0, count: Self.count), h = s
                let x = xD[t * Self.count..<(t + 1) * Self.count].map { Float($0) }
                v.withUnsafeMutableBufferPointer { vp in
                    neuronForward(spec, count: Self.count, spike: &s, h: &h, vNext: vp.baseAddress!, input: x, v: UnsafePointer(vp.baseAddress!))
                }
                spikesF += s
                hF += h
            }
            // Equal spikes need every h away from the threshold by more than float32 rounding.
            if zip(d.h, hF).allSatisfy({ abs($0 - spec.threshold) > 1e-5 || abs(Double($1) - spec.threshold) > 1e-5 }) {
                XCTAssertEqual(spikesF.map { Double($0) }, d.spikes, name)
            }
            checkTensor("\(name) h Float vs Double", hF.map { Double($0) }, d.h, rtol: 1e-5, atol: 1e-6)
            let gS = randomArray(Self.count, seed: 901).map { Double(Float($0)) }
            var dXD = [Double](repeating: 0, count: Self.count), dVD = dXD
            var dXF = [Float](repeating: 0, count: Self.count), dVF = dXF
            let hLast = Array(d.h.suffix(Self.count))
            neuronBackward(spec, count: Self.count, dInput: &dXD, dVPrevious: &dVD, dSpike: gS, dVNext: gS, h: hLast)
            neuronBackward(spec, count: Self.count, dInput: &dXF, dVPrevious: &dVF, dSpike: gS.map { Float($0) },
                           dVNext: gS.map { Float($0) }, h: hLast.map { Float($0) })
            checkTensor("\(name) dInput Float vs Double", dXF.map { Double($0) }, dXD, rtol: 1e-5, atol: 1e-6)
            checkTensor("\(name) dVPrevious Float vs Double", dVF.map { Double($0) }, dVD, rtol: 1e-5, atol: 1e-6)
        }
    }

    /// The kernels split their loops into blocks and ranges over the kernel lanes: over 40,000 neurons
    /// (two lanes, many blocks, a ragged tail) they must give exactly what one element-by-element loop
    /// gives, with v and dV updated in place as in training.
    func testBlockedKernelsEqualElementwiseLoop() {
        Self.checkBlockedKernelsEqualElementwiseLoop()
    }

    /// The check itself, also run at every instruction-set level of the C kernels (ElementwiseKernelsTests).
    static func checkBlockedKernelsEqualElementwiseLoop(file: StaticString = #filePath, line: UInt = #line) {
        let count = 40_000
        var random = SeededRandom(seed: 77)
        let x = (0..<count).map { _ in Float(random.uniform(-0.5, 2.5)) }
        let v0 = (0..<count).map { _ in Float(random.uniform(-0.3, 1.2)) }
        let dS = (0..<count).map { _ in Float(random.uniform(-1, 1)) }
        let dV0 = (0..<count).map { _ in Float(random.uniform(-1, 1)) }
        for (name, spec) in Self.specs {
            let decay = Float(spec.type == .lif ? 1 - 1 / spec.tau : 1), gain = Float(spec.type == .lif ? 1 / spec.tau : 1)
            let offset = Float(spec.type == .lif ? (spec.reset == .hard ? spec.vReset : 0) / spec.tau : 0)
            let threshold = Float(spec.threshold), vReset = Float(spec.vReset)
            var v = v0, spike = [Float](repeating: .nan, count: count), h = spike
            v.withUnsafeMutableBufferPointer { vp in
                neuronForward(spec, count: count, spike: &spike, h: &h, vNext: vp.baseAddress!, input: x, v: UnsafePointer(vp.baseAddress!))
            }
            var mismatches = 0
            for i in 0..<count {
                let hi = decay * v0[i] + gain * x[i] + offset
                let s: Float = hi >= threshold ? 1 : 0
                let vi = spec.reset == .hard ? (hi >= threshold ? vReset : hi) : hi - s * threshold
                if h[i] != hi || spike[i] != s || v[i] != vi { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "\(name) forward", file: file, line: line)

            var dX = [Float](repeating: .nan, count: count), dV = dV0
            dV.withUnsafeMutableBufferPointer { dvp in
                neuronBackward(spec, count: count, dInput: &dX, dVPrevious: dvp.baseAddress!, dSpike: dS,
                               dVNext: UnsafePointer(dvp.baseAddress!), h: h)
            }
            let atan = ATanSurrogate<Float>(alpha: Float(spec.surrogateAlpha)), sigmoid = SigmoidSurrogate<Float>(alpha: Float(spec.surrogateAlpha))
            let resetSlope: Float = spec.detachReset ? 0 : 1
            mismatches = 0
            for i in 0..<count {
                let hx = h[i] - threshold
                let sg = spec.surrogate == .atan ? atan.derivative(hx) : sigmoid.derivative(hx)
                let s: Float = hx >= 0 ? 1 : 0
                let dVdH = spec.reset == .hard ? (1 - s) + resetSlope * (vReset - h[i]) * sg : 1 - resetSlope * threshold * sg
                let dH = dS[i] * sg + dV0[i] * dVdH
                if dX[i] != dH * gain || dV[i] != dH * decay { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "\(name) backward", file: file, line: line)
        }
    }
}
