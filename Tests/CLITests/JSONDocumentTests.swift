import Foundation
import XCTest

/// Every `--format json` names its document and format version, and one quantity has one key
/// in every document (README "Quantities" and "JSON output").
final class JSONDocumentTests: XCTestCase {
    func testEveryJSONOutputNamesItsDocumentAndVersion() throws {
        let commands: [(String, [String])] = [
            ("snnmem.plan", ["plan", "profiles/digits.yaml", "--format", "json"]),
            ("snnmem.max-batch", ["max-batch", "profiles/digits.yaml", "--memory", "1GiB", "--format", "json"]),
            ("snnmem.run", ["run", "profiles/digits.yaml", "--steps", "1", "--batch", "2", "--format", "json"]),
            ("snnmem.train", ["train", "profiles/digits.yaml", "--epochs", "1", "--format", "json"]),
            ("snnmem.compare", ["compare", "profiles/digits.yaml", "--steps", "1", "--batch", "2", "--strategies", "bptt", "--format", "json"]),
            ("snnmem.sweep", ["sweep", "profiles/digits.yaml", "--timesteps", "1,2", "--format", "json"]),
            ("snnmem.check", ["check", "profiles/digits.yaml", "--budget", "1GiB", "--format", "json"]),
        ]
        for (document, arguments) in commands {
            let json = try SnnmemProcess.json(arguments)
            XCTAssertEqual(json["document"] as? String, document, arguments.joined(separator: " "))
            XCTAssertEqual(json["formatVersion"] as? Int, 2, arguments.joined(separator: " "))
        }
    }

    /// `run` and `compare` describe the same measured step: the same keys for the same figures,
    /// and `run` names its profile, runtime and segment.
    func testRunAndCompareShareTheirKeys() throws {
        let run = try SnnmemProcess.json(["run", "profiles/digits.yaml", "--strategy", "checkpoint", "--segment", "2", "--steps", "1", "--batch", "2",
                                          "--format", "json"])
        XCTAssertEqual(run["profile"] as? String, "digits")
        XCTAssertEqual(run["runtime"] as? String, "snnmem")
        XCTAssertEqual(run["segment"] as? Int, 2)
        let compare = try SnnmemProcess.json(["compare", "profiles/digits.yaml", "--strategies", "checkpoint", "--segment", "2", "--steps", "1",
                                              "--batch", "2", "--format", "json"])
        let entry = try XCTUnwrap((compare["strategies"] as? [[String: Any]])?.first)
        for key in ["predictedPeakBytes", "measuredPeakBytes", "predictedHeldForBackwardBytes", "measuredHeldForBackwardBytes", "jemallocPeakBytes"] {
            XCTAssertNotNil(run[key] as? Int, "run lacks \(key)")
            XCTAssertNotNil(entry[key] as? Int, "compare lacks \(key)")
            // jemalloc's figure depends on the process; the tracked ones are exact.
            if key != "jemallocPeakBytes" { XCTAssertEqual(run[key] as? Int, entry[key] as? Int, key) }
        }
        let plan = try SnnmemProcess.json(["plan", "profiles/digits.yaml", "--runtime", "snnmem", "--strategy", "checkpoint", "--segment", "2",
                                           "--batch", "2", "--format", "json"])
        let planned = try XCTUnwrap((plan["strategies"] as? [[String: Any]])?.first)
        XCTAssertEqual(planned["heldForBackwardBytes"] as? Int, run["predictedHeldForBackwardBytes"] as? Int)
        XCTAssertNotNil(planned["bytesByRoleAtPeak"] as? [String: Int])
    }
}
