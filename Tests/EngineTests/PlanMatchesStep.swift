import Allocator
import Engine
import Planner
import Profiles
import XCTest

/// Trains one Float step of `profile` under each of `strategies` on random inputs in [0, 1.5) (seed 8)
/// with exact accounting, and asserts that every allocation and free matched the plan's and the
/// measured peak equals the planned one: the layer tests' check that the `snnmem` layout is exact.
func assertStepsMatchPlan(_ profile: Profile, strategies: [Strategy] = [.bptt, .checkpoint, .sltt], labels: [Int32],
                          file: StaticString = #filePath, line: UInt = #line) throws {
    for strategy in strategies {
        let allocator = CountingAllocator(rounding: .exact)
        let trainer = try Trainer<Float>(profile: profile, strategy: strategy, allocator: allocator)
        var random = SeededRandom(seed: 8)
        _ = try trainer.step(images: (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1.5)) }, labels: labels)
        let plan = try Planner.plan(profile, strategy: strategy, options: .init())
        let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
        XCTAssertNil(comparison.firstDifference, "\(strategy)", file: file, line: line)
        XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)", file: file, line: line)
    }
}
