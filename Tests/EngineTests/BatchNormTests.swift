import Engine
import XCTest

final class BatchNormTests: XCTestCase {
    static let shapes: [(name: String, shape: BatchNormShape)] = [
        ("[2,3,5,5]", BatchNormShape(batch: 2, channels: 3, spatial: 25)),
        ("[4,5] features", BatchNormShape(batch: 4, channels: 5)),
    ]

    static func forward(_ s: BatchNormShape, input: [Double], gamma: [Double], beta: [Double]) -> (y: [Double], mean: [Double], invstd: [Double]) {
        var y = [Double](repeating: .nan, count: s.count), mean = [Double](repeating: .nan, count: s.channels), invstd = mean
        var runningMean = [Double](repeating: 0, count: s.channels), runningVar = runningMean
        batchNormForward(s, output: &y, saveMean: &mean, saveInvstd: &invstd, input: input, gamma: gamma, beta: beta,
                         runningMean: &runningMean, runningVar: &runningVar, updateRunningStatistics: false)
        return (y, mean, invstd)
    }

    func testBackwardMatchesFiniteDifferences() {
        for (name, s) in Self.shapes {
            // Inputs with a channel-dependent offset and spread, so the statistics matter.
            var x = randomArray(s.count, seed: 41).enumerated().map { i, v in v * 2 + Double((i / s.spatial) % s.channels) }
            var gamma = randomArray(s.channels, seed: 42, low: 0.5, high: 1.5), beta = randomArray(s.channels, seed: 43)
            let dOut = randomArray(s.count, seed: 44)
            let f = Self.forward(s, input: x, gamma: gamma, beta: beta)
            let start = -0.5
            var dX = [Double](repeating: .nan, count: s.count)
            var dGamma = [Double](repeating: start, count: s.channels), dBeta = dGamma
            batchNormBackward(s, dInput: &dX, dGamma: &dGamma, dBeta: &dBeta, dOutput: dOut, input: x, gamma: gamma,
                              mean: f.mean, invstd: f.invstd)
            let numX = numericalGradient(&x) { dot(Self.forward(s, input: $0, gamma: gamma, beta: beta).y, dOut) }
            let numGamma = numericalGradient(&gamma) { dot(Self.forward(s, input: x, gamma: $0, beta: beta).y, dOut) }
            let numBeta = numericalGradient(&beta) { dot(Self.forward(s, input: x, gamma: gamma, beta: $0).y, dOut) }
            checkTensor("batchnorm dInput \(name)", dX, numX, rtol: fdRtol, atol: fdAtol)
            checkTensor("batchnorm dGamma \(name)", dGamma.map { $0 - start }, numGamma, rtol: fdRtol, atol: fdAtol)
            checkTensor("batchnorm dBeta \(name)", dBeta.map { $0 - start }, numBeta, rtol: fdRtol, atol: fdAtol)
        }
    }

    /// The normalized output has mean beta and standard deviation gamma * sqrt(var / (var + eps)) per channel.
    func testForwardStatistics() {
        let s = BatchNormShape(batch: 3, channels: 2, spatial: 4)
        let x = randomArray(s.count, seed: 45, low: 2, high: 6)
        let f = Self.forward(s, input: x, gamma: [2, 0.5], beta: [1, -1])
        for c in 0..<2 {
            var values: [Double] = []
            var outputs: [Double] = []
            for b in 0..<3 { for i in 0..<4 { values.append(x[(b * 2 + c) * 4 + i]); outputs.append(f.y[(b * 2 + c) * 4 + i]) } }
            let mean = values.reduce(0, +) / 12
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 12
            XCTAssertEqual(f.mean[c], mean, accuracy: 1e-12)
            XCTAssertEqual(f.invstd[c], 1 / (variance + 1e-5).squareRoot(), accuracy: 1e-9)
            XCTAssertEqual(outputs.reduce(0, +) / 12, [1.0, -1.0][c], accuracy: 1e-12)
        }
    }

    /// running = 0.9 * running + 0.1 * batch statistic, the variance unbiased (n / (n - 1)); off when recomputing.
    func testRunningStatistics() {
        let s = BatchNormShape(batch: 2, channels: 1, spatial: 2)
        let x: [Float] = [1, 2, 3, 6]  // mean 3, biased variance 3.5, unbiased 14/3
        var y = [Float](repeating: 0, count: 4), mean: [Float] = [0], invstd: [Float] = [0]
        var runningMean: [Float] = [1], runningVar: [Float] = [2]
        batchNormForward(s, output: &y, saveMean: &mean, saveInvstd: &invstd, input: x, gamma: [1], beta: [0],
                         runningMean: &runningMean, runningVar: &runningVar, updateRunningStatistics: true)
        XCTAssertEqual(runningMean[0], 0.9 * 1 + 0.1 * 3, accuracy: 1e-6)
        XCTAssertEqual(runningVar[0], 0.9 * 2 + 0.1 * 14 / 3, accuracy: 1e-6)
        XCTAssertEqual(invstd[0], Float(1 / (3.5 + 1e-5).squareRoot()), accuracy: 1e-6)
        let before = (runningMean, runningVar)
        batchNormForward(s, output: &y, saveMean: &mean, saveInvstd: &invstd, input: x, gamma: [1], beta: [0],
                         runningMean: &runningMean, runningVar: &runningVar, updateRunningStatistics: false)
        XCTAssertEqual(runningMean, before.0)
        XCTAssertEqual(runningVar, before.1)
    }

    /// Float32 statistics and gradients agree with Double's: the sums run in Double for the statistics
    /// and over n = 50 values in Float for the gradient sums, relative error about 1e-6.
    func testFloatAgreesWithDouble() {
        let s = Self.shapes[0].shape
        let x = randomArray(s.count, seed: 46, low: -2, high: 3).map { Double(Float($0)) }
        let dOut = randomArray(s.count, seed: 47).map { Double(Float($0)) }
        let gamma: [Double] = [1, 0.5, 2], beta: [Double] = [0, 1, -1]
        let d = Self.forward(s, input: x, gamma: gamma, beta: beta)
        var y = [Float](repeating: 0, count: s.count), mean = [Float](repeating: 0, count: 3), invstd = mean
        var rm = [Float](repeating: 0, count: 3), rv = rm
        batchNormForward(s, output: &y, saveMean: &mean, saveInvstd: &invstd, input: x.map { Float($0) },
                         gamma: gamma.map { Float($0) }, beta: beta.map { Float($0) }, runningMean: &rm, runningVar: &rv,
                         updateRunningStatistics: true)
        checkTensor("batchnorm forward Float vs Double", y.map { Double($0) }, d.y, rtol: 1e-5, atol: 1e-5)
        var dXD = [Double](repeating: 0, count: s.count), dGD = [Double](repeating: 0, count: 3), dBD = dGD
        batchNormBackward(s, dInput: &dXD, dGamma: &dGD, dBeta: &dBD, dOutput: dOut, input: x, gamma: gamma, mean: d.mean, invstd: d.invstd)
        var dXF = [Float](repeating: 0, count: s.count), dGF = [Float](repeating: 0, count: 3), dBF = dGF
        batchNormBackward(s, dInput: &dXF, dGamma: &dGF, dBeta: &dBF, dOutput: dOut.map { Float($0) }, input: x.map { Float($0) },
                          gamma: gamma.map { Float($0) }, mean: mean, invstd: invstd)
        checkTensor("batchnorm dInput Float vs Double", dXF.map { Double($0) }, dXD, rtol: 1e-4, atol: 1e-5)
        checkTensor("batchnorm dGamma Float vs Double", dGF.map { Double($0) }, dGD, rtol: 1e-5, atol: 1e-5)
    }
}
