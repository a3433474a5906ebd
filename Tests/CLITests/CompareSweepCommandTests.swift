import Foundation
import XCTest

final class CompareSweepCommandTests: XCTestCase {
    func testCompareJSONAndOutputFolder() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-compare-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let json = try SnnmemProcess.json(["compare", "profiles/digits.yaml", "--batch", "8", "--steps", "1", "--format", "json", "--out", out])
        let strategies = try XCTUnwrap(json["strategies"] as? [[String: Any]])
        XCTAssertEqual(strategies.compactMap { $0["strategy"] as? String }, ["bptt", "checkpoint", "sltt"])
        for entry in strategies {
            for key in ["strategy", "predictedPeakBytes", "measuredPeakBytes", "jemallocPeakBytes", "measuredHeldForBackwardBytes", "stepMs", "loss"] {
                XCTAssertNotNil(entry[key], key)
            }
            XCTAssertEqual(entry["predictedPeakBytes"] as? Int, entry["measuredPeakBytes"] as? Int)
            XCTAssertNil(entry["firstDifference"] as? String)
        }
        let checkpoint = strategies[1]
        XCTAssertLessThan(checkpoint["gradientMaxRelDiff"] as? Double ?? 1, 1e-5)
        XCTAssertEqual((json["notApplicable"] as? [[String: String]])?.map { $0["strategy"] }, ["revsnn", "trevsnn"])
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, [".snnmem-output", "measured-bptt.json", "measured-checkpoint.json", "measured-sltt.json", "report.html", "report.json", "report.md", "trace.json"])
    }

    func testSweepSlopes() throws {
        let json = try SnnmemProcess.json(["sweep", "profiles/cifarnet.yaml", "--timesteps", "1,2,4,8,16", "--format", "json",
                                           "--runtime", "snnmem"])
        XCTAssertEqual(json["axis"] as? String, "timesteps")
        let series = try XCTUnwrap(json["strategies"] as? [[String: Any]])
        var slopes: [String: Double] = [:]
        for entry in series { slopes[entry["strategy"] as! String] = entry["slope"] as? Double }
        XCTAssertEqual(slopes["bptt"] ?? 0, 1, accuracy: 0.02)
        XCTAssertLessThan(slopes["checkpoint"] ?? 1, 0.9)
        XCTAssertEqual(slopes["sltt"] ?? 1, 0, accuracy: 0.02)
        let points = try XCTUnwrap(series[0]["points"] as? [[String: Any]])
        XCTAssertEqual(points.compactMap { $0["value"] as? Int }, [1, 2, 4, 8, 16])
    }

    func testSweepDepthKeepsRevSNNFlat() throws {
        let json = try SnnmemProcess.json(["sweep", "profiles/revsresnet21.yaml", "--depth-scale", "1,2,4", "--format", "json", "--runtime", "snnmem",
                                           "--strategies", "bptt,revsnn"])
        let series = try XCTUnwrap(json["strategies"] as? [[String: Any]])
        XCTAssertEqual(series.first { $0["strategy"] as? String == "revsnn" }?["slope"] as? Double ?? 1, 0, accuracy: 1e-9)
        XCTAssertGreaterThan(series.first { $0["strategy"] as? String == "bptt" }?["slope"] as? Double ?? 0, 0.5)
    }

    func testSweepMeasuresWhenAsked() throws {
        let json = try SnnmemProcess.json(["sweep", "profiles/digits.yaml", "--timesteps", "2,4", "--measure", "--batch", "4", "--runtime", "snnmem",
                                           "--strategies", "bptt,sltt", "--format", "json"])
        for series in try XCTUnwrap(json["strategies"] as? [[String: Any]]) {
            for point in try XCTUnwrap(series["points"] as? [[String: Any]]) {
                XCTAssertEqual(point["measuredHeldForBackwardBytes"] as? Int, point["heldForBackwardBytes"] as? Int)
            }
        }
    }

    func testSweepNeedsExactlyOneAxis() throws {
        XCTAssertEqual(try SnnmemProcess.run(["sweep", "profiles/cifarnet.yaml"]).exitCode, 2)
        XCTAssertEqual(try SnnmemProcess.run(["sweep", "profiles/cifarnet.yaml", "--depth-scale", "1,2"]).exitCode, 2,
                       "cifarnet has no reversible blocks to repeat")
    }
}

final class ReportCommandTests: XCTestCase {
    func testReportFromSavedTraces() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let trace = base + "-trace.json"
        defer { try? FileManager.default.removeItem(atPath: trace) }
        XCTAssertEqual(try SnnmemProcess.run(["run", "profiles/digits.yaml", "--steps", "2", "--batch", "4", "--trace", trace]).exitCode, 0)
        // The weights' gradient buffers live across steps by design: a sound run records no problem.
        let recorded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        XCTAssertEqual((recorded["problems"] as? [Any])?.count, 0, "\(recorded["problems"] ?? "none")")
        let result = try SnnmemProcess.run(["report", trace, "--out", base])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base).sorted(), [".snnmem-output", "report.html", "report.json", "report.md", "trace.json"])
        let html = try String(contentsOfFile: base + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"))
        // A damaged trace is bad input, and the existing folder stays as it was.
        try "{\"header\":".write(toFile: trace, atomically: true, encoding: .utf8)
        let damaged = try SnnmemProcess.run(["report", trace, "--out", base])
        XCTAssertEqual(damaged.exitCode, 2)
        XCTAssertEqual(try String(contentsOfFile: base + "/report.html", encoding: .utf8), html)
    }

    /// A trace that decodes but holds what no recording writes (here a negative byte count, as a
    /// hand edit leaves it) is refused with the field named, exit 2, and no report folder.
    func testReportRefusesATraceWithNegativeBytes() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-negative-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let trace = base + "-trace.json"
        defer { try? FileManager.default.removeItem(atPath: trace) }
        XCTAssertEqual(try SnnmemProcess.run(["run", "profiles/digits.yaml", "--steps", "1", "--batch", "2", "--trace", trace]).exitCode, 0)
        var document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        var events = try XCTUnwrap(document["events"] as? [[String: Any]])
        events[2]["requestedBytes"] = -4096
        document["events"] = events
        try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: trace))
        let result = try SnnmemProcess.run(["report", trace, "--out", base])
        XCTAssertEqual(result.exitCode, 2, result.stdout)
        XCTAssertTrue(result.stderr.contains("\(trace): events[2].requestedBytes is -4096 bytes"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: base))
    }

    func testSweepOut() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-sweep-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        XCTAssertEqual(try SnnmemProcess.run(["sweep", "profiles/cifarnet.yaml", "--timesteps", "1,2,4", "--out", out]).exitCode, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), [".snnmem-output", "sweep.html", "sweep.json", "sweep.md", "sweep.svg"])
    }
}
