import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// `Planner.peak` walks the step as `Planner.plan` does without describing each tensor: its sweep
/// must be the plan's, byte for byte, wherever `check` uses it.
final class PlannedPeakTests: XCTestCase {
    func assertSamePeak(_ profile: Profile, _ strategy: Strategy, _ options: Planner.Options, file: StaticString = #filePath,
                        line: UInt = #line) throws {
        let plan = try Planner.plan(profile, strategy: strategy, options: options)
        let peak = try Planner.peak(profile, strategy: strategy, options: options)
        let what = "\(profile.name) \(options.runtime.rawValue) \(strategy.rawValue) \(options.rounding.rawValue)"
        XCTAssertEqual(peak.sweep, plan.sweep, what, file: file, line: line)
        XCTAssertEqual(peak.batch, plan.batch, what, file: file, line: line)
        XCTAssertEqual(peak.timesteps, plan.timesteps, what, file: file, line: line)
        XCTAssertEqual(peak.segment, plan.segment, what, file: file, line: line)
    }

    /// One strategy at a time, and all of a profile's together (`peaks`: their walks share the
    /// layers' tables, which must carry nothing from one strategy into the next).
    func testPeakIsThePlansForEveryBundledProfileRuntimeAndStrategy() throws {
        for name in Fixtures.bundledNames {
            let profile = try Fixtures.bundled(name)
            for runtime in Runtime.allCases {
                let strategies = Strategy.allCases.filter {
                    $0.notApplicableReason(profile) == nil && runtime.notModelledReason($0, profile) == nil
                }
                // check's rounding, and the other one.
                for rounding in [AllocatorRounding.exact, .cuda] {
                    let options = Planner.Options(rounding: rounding, runtime: runtime)
                    for strategy in strategies { try assertSamePeak(profile, strategy, options) }
                    for (ordered, label) in [(strategies, "in order"), (Array(strategies.reversed()), "reversed")] {
                        let together = try Planner.peaks(profile, strategies: ordered, options: options)
                        let alone = try ordered.map { try Planner.plan(profile, strategy: $0, options: options).sweep }
                        XCTAssertEqual(together.map(\.sweep), alone, "\(name) \(runtime.rawValue) \(rounding.rawValue) \(label)")
                    }
                }
            }
        }
    }

    /// Mixed precision (autocast casts read a tensor's dtype), other batches, T and segments.
    func testPeakIsThePlansUnderAutocastAndOtherSizes() throws {
        for name in ["cifarnet", "revsresnet21", "resnet19"] {
            let profile = try Fixtures.bundled(name)
            for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
                for dtype in [DType.bfloat16, .float16] {
                    for strategy in [Strategy.bptt, .checkpoint, .sltt] {
                        try assertSamePeak(profile, strategy, .init(runtime: runtime, dtype: dtype, cpuThreads: 3))
                    }
                }
            }
            for runtime in Runtime.allCases {
                try assertSamePeak(profile, .checkpoint, .init(batch: 3, timesteps: 5, segment: 2, runtime: runtime))
            }
        }
        let trev = try Fixtures.bundled("trevsnn-cifar")
        for runtime in Runtime.allCases {
            for strategy in [Strategy.bptt, .trevsnn] { try assertSamePeak(trev, strategy, .init(batch: 5, timesteps: 3, runtime: runtime)) }
        }
    }

    func testPeakRefusesWhatPlanRefuses() throws {
        let profile = try Fixtures.tiny()
        for options in [Planner.Options(segment: 3), Planner.Options(batch: 0)] {
            var planError: Error?
            var peakError: Error?
            XCTAssertThrowsError(try Planner.plan(profile, strategy: .checkpoint, options: options)) { planError = $0 }
            XCTAssertThrowsError(try Planner.peak(profile, strategy: .checkpoint, options: options)) { peakError = $0 }
            XCTAssertEqual("\(peakError.map { "\($0)" } ?? "none")", "\(planError.map { "\($0)" } ?? "none")")
        }
        XCTAssertThrowsError(try Planner.peak(try Fixtures.bundled("cifarnet"), strategy: .revsnn))
    }

    /// A guard against a gross slow-down of the walk (a quadratic replay, a table remade per
    /// event): `check`'s whole work in one process, every bundled profile loaded and its peak
    /// planned on every runtime under every strategy, takes 60-110 ms on one core of this
    /// project's 2-core machines (`planner-benchmark --check-only`, quiet to heavily loaded). The
    /// bound is about 30 times that, so that a loaded machine does not fail it while a walk gone
    /// quadratic in the events does.
    func testChecksWorkStaysWithinAGenerousBound() throws {
        let start = Date()
        var plans = 0
        for name in Fixtures.bundledNames {
            let profile = try Fixtures.bundled(name)
            for runtime in Runtime.allCases {
                let options = Planner.Options(rounding: runtime == .pytorchCUDA ? .cuda : .exact, runtime: runtime)
                for strategy in Strategy.allCases
                where strategy.notApplicableReason(profile) == nil && runtime.notModelledReason(strategy, profile) == nil {
                    XCTAssertGreaterThan(try Planner.peak(profile, strategy: strategy, options: options).peakBytes, 0)
                    plans += 1
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(plans, Runtime.allCases.count * Fixtures.bundledNames.count, "bptt at least, everywhere")
        XCTAssertLessThan(seconds, 3, "check's work took \(seconds) s")
    }
}
