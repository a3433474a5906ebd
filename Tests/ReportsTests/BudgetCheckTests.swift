import OutputFiles
import MemoryModel
import Reports
import XCTest

final class BudgetCheckTests: XCTestCase {
    func entry(_ peak: Int, activations: Int = 0, strategy: String = "bptt") -> MemoryBaseline.Entry {
        var roles = RoleBytes()
        roles[.activation] = activations
        roles[.parameter] = peak - activations
        return MemoryBaseline.Entry(profile: "p", strategy: strategy, batch: 2, timesteps: 4, peakBytes: peak, bytesByRole: roles, measured: false)
    }

    func testToleranceEdge() {
        let baseline = MemoryBaseline(toolVersion: "test", entries: [entry(1000, activations: 400)])
        XCTAssertTrue(BudgetCheck(entries: [entry(1100, activations: 500)], budgetBytes: 1 << 20, baseline: baseline, tolerancePercent: 10).passed,
                      "exactly at the tolerance passes")
        let grown = BudgetCheck(entries: [entry(1101, activations: 501)], budgetBytes: 1 << 20, baseline: baseline, tolerancePercent: 10)
        XCTAssertFalse(grown.passed)
        XCTAssertTrue(grown.results[0].overBaseline)
        XCTAssertEqual(grown.results[0].grownRoles, ["activations": 101])
        XCTAssertTrue(grown.failures()[0].contains("activations +101 B"), grown.failures()[0])
    }

    func testBudgetAndNewEntries() {
        let check = BudgetCheck(entries: [entry(2000), entry(500, strategy: "sltt")], budgetBytes: 1000, baseline: nil, tolerancePercent: 0)
        XCTAssertFalse(check.passed)
        XCTAssertTrue(check.results[0].overBudget)
        XCTAssertTrue(check.results[1].passed, "no baseline: new, not a failure")
        XCTAssertTrue(check.failures()[0].contains("exceeds the budget"))
        XCTAssertTrue(check.render(markdown: true).contains("| p "))
    }

    func testBaselineRoundTripAndBadFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-baseline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("b.json").path
        let baseline = MemoryBaseline(toolVersion: "test", entries: [entry(1000, activations: 10), entry(7, strategy: "sltt")])
        try AtomicOutput.write(try baseline.encoded(), to: path)
        XCTAssertEqual(try MemoryBaseline.read(path: path), baseline)
        try Data("{\"formatVersion\": 99}".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try MemoryBaseline.read(path: path)) { XCTAssertTrue("\($0)".contains("version 99")) }
        try Data("[1,2".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try MemoryBaseline.read(path: path)) { XCTAssertTrue("\($0)".contains("not a snnmem baseline")) }
        XCTAssertThrowsError(try MemoryBaseline.read(path: folder.path + "/missing.json")) { XCTAssertTrue("\($0)".contains("--write-baseline")) }
    }
}
