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

    /// A mixed-precision measurement is held against the plan of the same autocast type (it was
    /// planned in float32, 30% off), and a measurement names the profile file's content.
    func testReportPlansTheMeasurementsDTypeAndRefusesAnEditedProfile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-bf16-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fixture = "Tests/PlannerTests/Fixtures/pytorch/cifarnet-bptt-T2-B2-bfloat16.json"
        let result = try SnnmemProcess.run(["report", fixture, "--out", folder + "/out"])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("0 of 17 layers differ") && result.stdout.contains("(0.00%)"), result.stdout)
        let edited = folder + "/cifarnet.yaml"
        try (try String(contentsOfFile: SnnmemProcess.repositoryRoot.path + "/profiles/cifarnet.yaml", encoding: .utf8) + "\n# edited\n")
            .write(toFile: edited, atomically: true, encoding: .utf8)
        let refused = try SnnmemProcess.run(["report", fixture, "--profile", edited, "--out", folder + "/other"])
        XCTAssertEqual(refused.exitCode, 2, refused.stdout)
        XCTAssertTrue(refused.stderr.contains("sha256"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/other"))
    }

    /// oneDNN's bfloat16 weight-gradient scratchpads grow with PyTorch's CPU threads: the plan
    /// takes them from --cpu-threads; float32 plans do not depend on them.
    func testCPUThreadsSizeTheBFloat16Scratchpads() throws {
        func peak(_ dtype: String, _ threads: Int) throws -> Int {
            let json = try SnnmemProcess.json(["plan", "profiles/cifarnet.yaml", "--runtime", "pytorch-cpu", "--strategy", "bptt", "--dtype", dtype,
                                               "--cpu-threads", "\(threads)", "--format", "json"])
            XCTAssertEqual(json["cpuThreads"] as? Int, threads)
            return try XCTUnwrap((json["strategies"] as? [[String: Any]])?.first?["peakBytes"] as? Int)
        }
        XCTAssertGreaterThan(try peak("bfloat16", 8), try peak("bfloat16", 2))
        XCTAssertEqual(try peak("float32", 8), try peak("float32", 2))
        XCTAssertEqual(try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--cpu-threads", "4"]).exitCode, 2,
                       "threads describe the CPU runtime only")
    }
}
