import MemoryModel
import Planner
import Profiles
import XCTest

final class MaxBatchTests: XCTestCase {
    /// peak(maxBatch) <= budget < peak(maxBatch + 1), with both peaks re-planned independently.
    func testMaxBatchIsConsistentWithPlan() throws {
        let cases: [(String, Int)] = [("cifarnet", 1 << 30), ("cifarnet", 300 << 20), ("resnet19", 4 << 30),
                                      ("revsresnet21", 2 << 30), ("trevsnn-cifar", 1 << 30), ("digits", 64 << 20)]
        for (name, budget) in cases {
            let profile = try Fixtures.bundled(name)
            for strategy in Strategy.allCases where strategy.notApplicableReason(profile) == nil {
                for rounding in [AllocatorRounding.exact, .jemalloc] {
                    let options = Planner.Options(rounding: rounding)
                    let result = try MaxBatch.find(profile, strategy: strategy, budgetBytes: budget, options: options)
                    let label = "\(name) \(strategy) \(rounding) budget \(budget)"
                    XCTAssertGreaterThan(result.maxBatch, 0, label)
                    let atMax = try Planner.plan(profile, strategy: strategy, options: .init(batch: result.maxBatch, rounding: rounding))
                    let beyond = try Planner.plan(profile, strategy: strategy, options: .init(batch: result.maxBatch + 1, rounding: rounding))
                    XCTAssertLessThanOrEqual(atMax.peakBytes, budget, label)
                    XCTAssertGreaterThan(beyond.peakBytes, budget, label)
                    XCTAssertEqual(result.peakBytesAtMax, atMax.peakBytes, label)
                    XCTAssertEqual(result.peakBytesAtMaxPlusOne, beyond.peakBytes, label)
                }
            }
        }
    }

    func testSavingStrategiesFitLargerBatches() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let budget = 2 << 30
        let bptt = try MaxBatch.find(profile, strategy: .bptt, budgetBytes: budget).maxBatch
        let checkpoint = try MaxBatch.find(profile, strategy: .checkpoint, budgetBytes: budget).maxBatch
        let sltt = try MaxBatch.find(profile, strategy: .sltt, budgetBytes: budget).maxBatch
        XCTAssertLessThan(bptt, checkpoint)
        XCTAssertLessThan(checkpoint, sltt)
    }

    func testBudgetBelowBatchOneReportsZero() throws {
        let profile = try Fixtures.bundled("resnet18")
        let result = try MaxBatch.find(profile, strategy: .bptt, budgetBytes: 10 << 20)
        XCTAssertEqual(result.maxBatch, 0)
        XCTAssertNil(result.peakBytesAtMax)
        XCTAssertEqual(result.peakBytesAtMaxPlusOne, try Fixtures.plan(profile, .bptt, batch: 1).peakBytes)
    }
}
