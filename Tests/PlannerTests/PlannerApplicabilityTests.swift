import Planner
import Profiles
import XCTest

final class PlannerApplicabilityTests: XCTestCase {
    func testStrategiesThatDoNotApplySayWhy() throws {
        let cifarnet = try Fixtures.bundled("cifarnet")
        XCTAssertThrowsError(try Fixtures.plan(cifarnet, .revsnn)) { error in
            guard case PlannerError.notApplicable(.revsnn, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("no reversible stage"), reason)
        }
        XCTAssertThrowsError(try Fixtures.plan(cifarnet, .trevsnn)) { error in
            guard case PlannerError.notApplicable(.trevsnn, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("trevsnn"), reason)
        }
        let trev = try Fixtures.bundled("trevsnn-cifar")
        for strategy in [Strategy.checkpoint, .sltt, .revsnn] {
            XCTAssertNotNil(strategy.notApplicableReason(trev), "\(strategy)")
            XCTAssertTrue(strategy.notApplicableReason(trev)!.contains("'trev'"), "names the layer that stops it")
        }
        XCTAssertNil(Strategy.bptt.notApplicableReason(trev))
        XCTAssertNil(Strategy.trevsnn.notApplicableReason(trev))
        let (plans, skipped) = try Planner.planAll(try Fixtures.bundled("revsresnet21"))
        XCTAssertEqual(plans.map(\.strategy), [.bptt, .checkpoint, .sltt, .revsnn])
        XCTAssertEqual(skipped.map(\.0), [.trevsnn])
    }

    func testInvalidArguments() throws {
        let profile = try Fixtures.tiny()
        XCTAssertThrowsError(try Fixtures.plan(profile, .bptt, batch: 0))
        XCTAssertThrowsError(try Fixtures.plan(profile, .checkpoint, segment: 3)) { error in
            XCTAssertTrue("\(error)".contains("segment"), "\(error)")
        }
        XCTAssertEqual(Strategy.defaultSegment(timesteps: 10), 3)
        XCTAssertEqual(Strategy.defaultSegment(timesteps: 1), 1)
    }
}
