import Foundation
import XCTest

final class CheckCommandTests: XCTestCase {
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-check-\(UUID().uuidString)-\(name)").path
    }

    func testExitCodesAndBaselineRoundTrip() throws {
        let baseline = temporary("baseline.json")
        defer { try? FileManager.default.removeItem(atPath: baseline) }
        // 0: within the budget, and the baseline is written.
        let write = try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "profiles/digits.yaml", "--budget", "1GiB", "--write-baseline", baseline])
        XCTAssertEqual(write.exitCode, 0, write.stderr)
        // 0: the same figures against their own baseline.
        let same = try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "profiles/digits.yaml", "--budget", "1GiB", "--baseline", baseline])
        XCTAssertEqual(same.exitCode, 0, same.stdout)
        XCTAssertTrue(same.stdout.contains("all 6 within bounds"), same.stdout)
        // 1: over budget, naming profile and strategy.
        let over = try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "--budget", "100MiB"])
        XCTAssertEqual(over.exitCode, 1)
        XCTAssertTrue(over.stdout.contains("cifarnet snnmem bptt") && over.stdout.contains("exceeds the budget"), over.stdout)
        // 1: grown past the baseline: figures recorded at batch 12, relabelled as batch 16, then checked at 16.
        let small = temporary("small.json")
        defer { try? FileManager.default.removeItem(atPath: small) }
        XCTAssertEqual(try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "--budget", "1GiB", "--batch", "12", "--strategy", "bptt",
                                              "--write-baseline", small]).exitCode, 0)
        var text = try String(contentsOfFile: small, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"batch\" : 12", with: "\"batch\" : 16")
        try text.write(toFile: small, atomically: true, encoding: .utf8)
        let bigger = try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "--budget", "1GiB", "--baseline", small, "--strategy", "bptt"])
        XCTAssertEqual(bigger.exitCode, 1, bigger.stdout)
        XCTAssertTrue(bigger.stdout.contains("grew") && bigger.stdout.contains("grown: activations"), bigger.stdout)
        // 0 again with a generous tolerance.
        let tolerated = try SnnmemProcess.run(["check", "--runtime", "snnmem", "profiles/cifarnet.yaml", "--budget", "1GiB", "--baseline", small, "--strategy", "bptt",
                                               "--tolerance", "100"])
        XCTAssertEqual(tolerated.exitCode, 0, tolerated.stdout)
        // 2: bad input.
        XCTAssertEqual(try SnnmemProcess.run(["check", "profiles/cifarnet.yaml", "--budget", "1GiB", "--baseline", temporary("missing")]).exitCode, 2)
        XCTAssertEqual(try SnnmemProcess.run(["check", "profiles/cifarnet.yaml", "--budget", "lots"]).exitCode, 2)
        XCTAssertEqual(try SnnmemProcess.run(["check", "profiles/cifarnet.yaml", "--budget", "1GiB", "--strategy", "revsnn"]).exitCode, 2)
    }

    func testDefaultRuntimeIsPyTorchOnCUDAAndEveryRuntimeCanBeChecked() throws {
        let text = try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "1GiB"])
        XCTAssertEqual(text.exitCode, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("digits   pytorch-cuda  bptt") || text.stdout.contains("pytorch-cuda"), text.stdout)
        XCTAssertFalse(text.stdout.contains("snnmem  "), "only the default runtime unless asked: \(text.stdout)")
        let all = try SnnmemProcess.json(["check", "profiles/digits.yaml", "--budget", "1GiB", "--runtime", "all", "--format", "json"])
        let runtimes = Set(try XCTUnwrap(all["results"] as? [[String: Any]]).compactMap { ($0["entry"] as? [String: Any])?["runtime"] as? String })
        XCTAssertEqual(runtimes, ["snnmem", "pytorch-cuda", "pytorch-cpu"])
        // --measure trains snnmem's engine, which describes only the snnmem runtime.
        XCTAssertEqual(try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "1GiB", "--measure"]).exitCode, 2)
        XCTAssertEqual(try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "1GiB", "--runtime", "tensorflow"]).exitCode, 2)
    }

    func testGitHubStepSummaryIsAppended() throws {
        let summary = temporary("summary.md")
        defer { try? FileManager.default.removeItem(atPath: summary) }
        try "previous\n".write(toFile: summary, atomically: true, encoding: .utf8)
        let result = try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "1GiB"], environment: ["GITHUB_STEP_SUMMARY": summary])
        XCTAssertEqual(result.exitCode, 0)
        let text = try String(contentsOfFile: summary, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("previous\n"))
        XCTAssertTrue(text.contains("| digits"), text)
    }

    func testCommittedBaselineHolds() throws {
        let result = try SnnmemProcess.run(["check"] + (try FileManager.default.contentsOfDirectory(atPath: SnnmemProcess.repositoryRoot.appendingPathComponent("profiles").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "profiles/" + $0 }) + ["--budget", "24GiB", "--runtime", "all", "--baseline", "baselines/memory.json"])
        XCTAssertEqual(result.exitCode, 0, result.stdout)
    }
}
