import Foundation
import XCTest

final class MaxBatchCommandTests: XCTestCase {
    func testMaxBatchJSONAgreesWithPlan() throws {
        let json = try SnnmemProcess.json(["max-batch", "profiles/cifarnet.yaml", "--runtime", "snnmem", "--memory", "2GiB", "--reserve", "256MiB",
                                           "--format", "json"])
        XCTAssertEqual(json["memoryBytes"] as? Int, 2 << 30)
        let budget = (2 << 30) - (256 << 20)
        XCTAssertEqual(json["budgetBytes"] as? Int, budget)
        let strategies = try XCTUnwrap(json["strategies"] as? [[String: Any]])
        XCTAssertEqual(strategies.count, 3)
        for entry in strategies {
            let strategy = try XCTUnwrap(entry["strategy"] as? String)
            let maxBatch = try XCTUnwrap(entry["maxBatch"] as? Int)
            let atMax = try XCTUnwrap(entry["peakBytesAtMax"] as? Int)
            let beyond = try XCTUnwrap(entry["peakBytesAtMaxPlusOne"] as? Int)
            XCTAssertLessThanOrEqual(atMax, budget)
            XCTAssertGreaterThan(beyond, budget)
            let plan = try SnnmemProcess.json(["plan", "profiles/cifarnet.yaml", "--runtime", "snnmem", "--strategy", strategy, "--batch", "\(maxBatch)",
                                               "--format", "json"])
            let planned = (plan["strategies"] as? [[String: Any]])?.first?["peakBytes"] as? Int
            XCTAssertEqual(planned, atMax, strategy)
        }
    }

    func testAllocatorRoundingOptionChangesTheAnswer() throws {
        let exact = try SnnmemProcess.json(["max-batch", "profiles/digits.yaml", "--runtime", "snnmem", "--memory", "64MiB", "--strategy", "bptt",
                                            "--format", "json"])
        let cuda = try SnnmemProcess.json(["max-batch", "profiles/digits.yaml", "--runtime", "snnmem", "--memory", "64MiB", "--strategy", "bptt",
                                           "--allocator", "cuda", "--format", "json"])
        XCTAssertEqual(cuda["allocator"] as? String, "cuda")
        let exactBatch = ((exact["strategies"] as? [[String: Any]])?.first?["maxBatch"] as? Int) ?? 0
        let cudaBatch = ((cuda["strategies"] as? [[String: Any]])?.first?["maxBatch"] as? Int) ?? 0
        XCTAssertGreaterThan(exactBatch, 0)
        XCTAssertLessThanOrEqual(cudaBatch, exactBatch, "rounding up can only lower the batch that fits")
    }
}
