import MemoryModel
import Planner
import Profiles
import XCTest

/// The planner refuses sizes past `PlanningLimits` with the largest it accepts, and the largest
/// it accepts plans without overflow.
final class PlanningLimitsTests: XCTestCase {
    func testLargestPlannableBatchPlansAndOneMoreIsRefused() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let timesteps = 7000
        let problem = try XCTUnwrap(profile.sizeProblem(batch: PlanningLimits.maxBatch, timesteps: timesteps))
        XCTAssertEqual(problem.quantity, .batch)
        XCTAssertGreaterThan(problem.largest, 1)
        XCTAssertNil(profile.sizeProblem(batch: problem.largest, timesteps: timesteps))

        let atLargest = try Planner.plan(profile, strategy: .sltt, options: Planner.Options(batch: problem.largest, timesteps: timesteps))
        let atOne = try Planner.plan(profile, strategy: .sltt, options: Planner.Options(batch: 1, timesteps: timesteps))
        let atTwo = try Planner.plan(profile, strategy: .sltt, options: Planner.Options(batch: 2, timesteps: timesteps))
        // Byte counts grow with the batch (linearly, for sltt's activations) instead of wrapping around.
        XCTAssertGreaterThan(atLargest.peakBytes, (atTwo.peakBytes - atOne.peakBytes) * (problem.largest - 1))
        XCTAssertLessThanOrEqual(atLargest.peakBytes, PlanningLimits.maxStepBytes)

        XCTAssertThrowsError(try Planner.plan(profile, strategy: .sltt, options: Planner.Options(batch: problem.largest + 1, timesteps: timesteps))) { error in
            guard case PlannerError.tooLarge(_, let refused) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(refused.largest, problem.largest)
            XCTAssertTrue("\(error)".contains("the largest batch snnmem plans here is"), "\(error)")
        }
    }

    func testTimestepsTimesLayersIsBounded() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let layers = profile.allLayers.count
        let largest = PlanningLimits.maxLayerTimesteps / layers
        XCTAssertNil(profile.sizeProblem(batch: 1, timesteps: largest))
        let problem = try XCTUnwrap(profile.sizeProblem(batch: 1, timesteps: largest + 1))
        XCTAssertEqual(problem.quantity, .timesteps)
        XCTAssertEqual(problem.largest, largest)
    }

    /// Every strategy and runtime at the largest T must plan in a few seconds (the limit's promise),
    /// and the plan's work must grow linearly in T: 4x the timesteps, well under 8x the time.
    func testPlanTimeIsLinearInTimesteps() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let largest = PlanningLimits.maxLayerTimesteps / profile.allLayers.count
        func seconds(_ timesteps: Int, _ runtime: Runtime) throws -> Double {
            let started = Date()
            _ = try Planner.plan(profile, strategy: .bptt, options: Planner.Options(timesteps: timesteps, runtime: runtime))
            return Date().timeIntervalSince(started)
        }
        for runtime in [Runtime.snnmem, .pytorchCPU] {
            _ = try seconds(largest / 16, runtime)
            let quarter = try seconds(largest / 4, runtime), full = try seconds(largest, runtime)
            XCTAssertLessThan(full, 5, "\(runtime) bptt at T = \(largest)")
            XCTAssertLessThan(full, 8 * max(quarter, 0.02), "\(runtime): \(quarter) s at T/4, \(full) s at T")
        }
    }

    func testMaxBatchSearchStopsAtThePlannableBatch() throws {
        let profile = try Fixtures.bundled("cifarnet")
        // An absurd budget: the search must end at the largest plannable batch, not overflow past it.
        XCTAssertThrowsError(try MaxBatch.find(profile, strategy: .sltt, budgetBytes: Int.max / 2,
                                               options: Planner.Options(timesteps: 1000))) { error in
            XCTAssertTrue("\(error)".contains("the largest batch snnmem plans here"), "\(error)")
        }
    }
}
