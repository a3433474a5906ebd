import Engine
import Foundation
import XCTest

final class LossTests: XCTestCase {
    static let batch = 3, classes = 4, timesteps = 4
    static let labels: [Int32] = [2, 0, 3]

    /// dLoss/dLogitSum = dMean / T: the per-timestep logit gradient the engine feeds back.
    func testTimeMeanGradientMatchesFiniteDifferences() {
        var logitSum = randomArray(Self.batch * Self.classes, seed: 81, low: -4, high: 4)
        var dMean = [Double](repeating: .nan, count: logitSum.count)
        _ = crossEntropyOfTimeMean(dMean: &dMean, logitSum: logitSum, labels: Self.labels, batch: Self.batch,
                                   classes: Self.classes, timesteps: Self.timesteps)
        let numeric = numericalGradient(&logitSum) {
            crossEntropyOfTimeMean(dMean: nil, logitSum: $0, labels: Self.labels, batch: Self.batch,
                                   classes: Self.classes, timesteps: Self.timesteps).loss
        }
        checkTensor("loss (time mean) dLogit_t = dMean / T", dMean.map { $0 / Double(Self.timesteps) }, numeric, rtol: fdRtol, atol: fdAtol)
    }

    func testTimeMeanValueByHand() {
        // Sample 0: mean logits (ln 1, ln 2, ln 3, ln 4) -> p(label 2) = 3/10; loss = -ln 0.3.
        // Sample 1: all zero -> loss ln 4, argmax ties at class 0 = label: correct.
        let t = 2.0
        let logitSum = [log(1), log(2), log(3), log(4), 0, 0, 0, 0].map { $0 * t }
        var dMean = [Double](repeating: 0, count: 8)
        let result = crossEntropyOfTimeMean(dMean: &dMean, logitSum: logitSum, labels: [2, 0], batch: 2, classes: 4, timesteps: 2)
        XCTAssertEqual(result.loss, (-log(0.3) + log(4)) / 2, accuracy: 1e-12)
        XCTAssertEqual(result.correct, 1)  // sample 0 predicts 3, sample 1 predicts 0
        XCTAssertEqual(dMean[2], (0.3 - 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(dMean[4], (0.25 - 1) / 2, accuracy: 1e-12)
        XCTAssertEqual(dMean[5], 0.25 / 2, accuracy: 1e-12)
    }

    /// loss = mean over t of CE(logits_t); each call returns CE_t / T and dLogits_t.
    func testPerTimestepGradientMatchesFiniteDifferences() {
        let n = Self.batch * Self.classes
        var logits = randomArray(Self.timesteps * n, seed: 82, low: -3, high: 3)
        func total(_ logits: [Double]) -> Double {
            (0..<Self.timesteps).reduce(0.0) { sum, t in
                sum + crossEntropyPerTimestep(dLogits: nil, logits: Array(logits[t * n..<(t + 1) * n]), labels: Self.labels,
                                              batch: Self.batch, classes: Self.classes, timesteps: Self.timesteps).loss
            }
        }
        var dLogits: [Double] = []
        for t in 0..<Self.timesteps {
            var d = [Double](repeating: .nan, count: n)
            _ = crossEntropyPerTimestep(dLogits: &d, logits: Array(logits[t * n..<(t + 1) * n]), labels: Self.labels,
                                        batch: Self.batch, classes: Self.classes, timesteps: Self.timesteps)
            dLogits += d
        }
        let numeric = numericalGradient(&logits, total)
        checkTensor("loss (per timestep) dLogits", dLogits, numeric, rtol: fdRtol, atol: fdAtol)
        // The value: mean over timesteps and samples of -log softmax at the label.
        var expected = 0.0
        for t in 0..<Self.timesteps {
            for b in 0..<Self.batch {
                let row = logits[(t * Self.batch + b) * Self.classes..<(t * Self.batch + b + 1) * Self.classes]
                let logSumExp = log(row.map { exp($0) }.reduce(0, +))
                expected += logSumExp - row[row.startIndex + Int(Self.labels[b])]
            }
        }
        XCTAssertEqual(total(logits), expected / Double(Self.timesteps * Self.batch), accuracy: 1e-12)
    }

    /// Large logits: the max-subtracted softmax stays finite in Float.
    func testLargeLogitsStayFinite() {
        var d = [Float](repeating: 0, count: 3)
        let r = crossEntropyOfTimeMean(dMean: &d, logitSum: [1000, -1000, 0] as [Float], labels: [1], batch: 1, classes: 3, timesteps: 1)
        XCTAssertEqual(r.loss, 2000, accuracy: 1e-2)
        XCTAssertTrue(d.allSatisfy { $0.isFinite })
        XCTAssertEqual(d[1], -1, accuracy: 1e-6)
    }
}
