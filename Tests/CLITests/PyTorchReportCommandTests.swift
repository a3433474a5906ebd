import Foundation
import XCTest

/// `snnmem report` on a PyTorch measurement: the plan of its runtime held against it.
final class PyTorchReportCommandTests: XCTestCase {
    func testReportHoldsAPyTorchMeasurementAgainstItsPlan() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-pytorch-report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let fixture = "Tests/PlannerTests/Fixtures/pytorch/cifarnet-bptt-T2-B2.json"
        let result = try SnnmemProcess.run(["report", fixture, "--out", out])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("plan (pytorch-cpu) against PyTorch"), result.stdout)
        XCTAssertTrue(result.stdout.contains("0 of 17 layers differ"), result.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), [".snnmem-output", "report.html", "report.json", "report.md", "trace.json"])
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("PyTorch, measured"), "the measured stream is drawn beside the plan")
        // The wrong profile for the measurement is refused, naming both.
        let wrong = try SnnmemProcess.run(["report", fixture, "--profile", "profiles/vgg11.yaml", "--out", out])
        XCTAssertEqual(wrong.exitCode, 2)
        XCTAssertTrue(wrong.stderr.contains("'cifarnet'") && wrong.stderr.contains("'vgg11'"), wrong.stderr)
    }
}
