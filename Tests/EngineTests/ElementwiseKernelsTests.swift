import CKernels
import Engine
import Profiles
import XCTest

/// The C elementwise kernels run the same arithmetic at every instruction-set level this processor
/// has (AVX-512, AVX2, the baseline): batch norm's statistics, output and gradients, and a neuron
/// step, bit for bit, on sizes with ragged tails. The neuron kernels' agreement with the Swift
/// arithmetic is `SpikingNeuronTests.testBlockedKernelsEqualElementwiseLoop`, run at every level here.
final class ElementwiseKernelsTests: XCTestCase {
    /// The levels this processor runs; the best is restored after each use.
    static var levels: [snn_kernels_level] {
        [SNN_KERNELS_BASELINE, SNN_KERNELS_AVX2, SNN_KERNELS_AVX512].filter { $0.rawValue <= snn_kernels_best_level().rawValue }
    }

    static func atEachLevel<R>(_ body: () -> R) -> [(String, R)] {
        defer { _ = snn_kernels_set_level(snn_kernels_best_level()) }
        return levels.map { level in
            precondition(snn_kernels_set_level(level))
            return (String(cString: snn_kernels_level_name(level)), body())
        }
    }

    func testLevelsAndRefusal() {
        XCTAssertEqual(ElementwiseKernels.level, String(cString: snn_kernels_level_name(snn_kernels_best_level())))
        #if arch(x86_64)
        // The project's machines have AVX-512; any x86-64 has the baseline.
        XCTAssertTrue(Self.levels.contains(SNN_KERNELS_BASELINE))
        #endif
        if snn_kernels_best_level() != SNN_KERNELS_AVX512 {
            XCTAssertFalse(snn_kernels_set_level(SNN_KERNELS_AVX512), "a level the processor lacks is refused")
            XCTAssertEqual(snn_kernels_current_level(), snn_kernels_best_level())
        }
    }

    func testBatchNormIsBitIdenticalAtEveryLevel() {
        // 13 x 13 planes: rows of 169 values, 10 blocks of 16 and a tail of 9.
        let s = BatchNormShape(batch: 3, channels: 5, spatial: 169)
        let x = randomArray(s.count, seed: 91, low: -2, high: 3).map { Float($0) }
        let dOut = randomArray(s.count, seed: 92).map { Float($0) }
        let gamma: [Float] = [1, 0.5, 2, -1, 0.25], beta: [Float] = [0, 1, -1, 0.5, 2]
        let results = Self.atEachLevel { () -> [Float] in
            var y = [Float](repeating: .nan, count: s.count), mean = [Float](repeating: 0, count: 5), invstd = mean
            var rm = [Float](repeating: 0, count: 5), rv = rm
            batchNormForward(s, output: &y, saveMean: &mean, saveInvstd: &invstd, input: x, gamma: gamma, beta: beta,
                             runningMean: &rm, runningVar: &rv, updateRunningStatistics: true)
            var dX = [Float](repeating: .nan, count: s.count), dG = [Float](repeating: 0, count: 5), dB = dG
            batchNormBackward(s, dInput: &dX, dGamma: &dG, dBeta: &dB, dOutput: dOut, input: x, gamma: gamma, mean: mean, invstd: invstd)
            return y + mean + invstd + rm + rv + dX + dG + dB
        }
        XCTAssertGreaterThanOrEqual(results.count, 1)
        for (name, values) in results.dropFirst() {
            XCTAssertEqual(values.map(\.bitPattern), results[0].1.map(\.bitPattern), "\(name) against \(results[0].0)")
        }
        XCTAssertFalse(results[0].1.contains { $0.isNaN })
    }

    func testNeuronKernelsEqualTheElementwiseArithmeticAtEveryLevel() {
        let runs = Self.atEachLevel { () -> Int in
            SpikingNeuronTests.checkBlockedKernelsEqualElementwiseLoop()
            return 0
        }
        XCTAssertEqual(runs.count, Self.levels.count)
    }
}
