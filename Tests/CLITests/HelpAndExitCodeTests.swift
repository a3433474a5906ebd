import Foundation
import XCTest

/// What the help offers is what the command takes, and the exit code says what happened:
/// 0 an answer, 1 a failed check or nothing fits, 2 bad input, 3 out of memory.
final class HelpAndExitCodeTests: XCTestCase {
    private func help(_ command: String) throws -> String {
        let result = try SnnmemProcess.run([command, "--help"])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        return result.stdout
    }

    /// The text of one option's entry in the help (its line and the indented lines after it).
    private func entry(_ option: String, in help: String) -> String {
        let lines = help.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(option + " ") }) else { return "" }
        var text = [lines[start]]
        for line in lines[(start + 1)...] {
            guard line.hasPrefix("                        ") else { break }
            text.append(line)
        }
        return text.joined(separator: " ")
    }

    func testRunAndTrainOfferEveryStrategyAndOnlyTheFormatsTheyPrint() throws {
        for command in ["run", "train"] {
            let text = try help(command)
            XCTAssertTrue(entry("--strategy", in: text).contains("trevsnn"), "\(command): \(entry("--strategy", in: text))")
            let format = entry("--format", in: text)
            XCTAssertTrue(format.contains("json"), format)
            XCTAssertFalse(format.contains("markdown"), "\(command) offers markdown: \(format)")
            let refused = try SnnmemProcess.run([command, "profiles/digits.yaml", "--format", "markdown"])
            XCTAssertEqual(refused.exitCode, 2, refused.stderr)
        }
    }

    func testMaxBatchDoesNotOfferTheBatchItSearches() throws {
        let text = try help("max-batch")
        XCTAssertFalse(text.contains("--batch"), text)
        XCTAssertEqual(try SnnmemProcess.run(["max-batch", "profiles/digits.yaml", "--memory", "1GiB", "--batch", "4"]).exitCode, 2)
    }

    func testDTypeHelpListsOnlyTypesThatHoldActivations() throws {
        let dtype = entry("--dtype", in: try help("plan"))
        XCTAssertTrue(dtype.contains("bfloat16"), dtype)
        XCTAssertFalse(dtype.contains("int32") || dtype.contains("bool"), dtype)
    }

    func testMaxBatchWhereNothingFitsExitsOne() throws {
        let result = try SnnmemProcess.run(["max-batch", "profiles/cifarnet.yaml", "--memory", "1MiB", "--strategy", "bptt"])
        XCTAssertEqual(result.exitCode, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("nothing fits in 1.00 MiB") && result.stderr.contains("bptt needs"), result.stderr)
        // Where one strategy fits, the answer is that batch: exit 0.
        let some = try SnnmemProcess.run(["max-batch", "profiles/cifarnet.yaml", "--memory", "24GiB"])
        XCTAssertEqual(some.exitCode, 0, some.stderr)
    }

    /// At three significant digits the peak at the largest batch and at the next one both read
    /// "24.0 GiB"; the table prints as many digits as it takes to tell them apart.
    func testMaxBatchPeaksPrintDifferently() throws {
        for runtime in ["pytorch-cuda", "snnmem"] {
            let result = try SnnmemProcess.run(["max-batch", "profiles/cifarnet.yaml", "--memory", "24GiB", "--runtime", runtime])
            XCTAssertEqual(result.exitCode, 0, result.stderr)
            let rows = result.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("bptt ") || $0.hasPrefix("sltt ") }
            XCTAssertEqual(rows.count, 2, result.stdout)
            for row in rows {
                let cells = row.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                // ... "<atMax>" "<unit>" "<atMax+1>" "<unit>"
                let atMax = cells[cells.count - 4] + cells[cells.count - 3]
                let beyond = cells[cells.count - 2] + cells[cells.count - 1]
                XCTAssertNotEqual(atMax, beyond, "\(runtime): \(row)")
            }
        }
    }

    func testPlanTopListsTensorsForEveryStrategy() throws {
        let result = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--runtime", "snnmem", "--top", "3"])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        for strategy in ["bptt", "checkpoint", "sltt"] {
            XCTAssertTrue(result.stdout.contains("Largest tensors live at the peak: \(strategy)"), result.stdout)
        }
        // Unasked, several strategies list no tensors; one strategy lists its largest.
        let several = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--runtime", "snnmem"])
        XCTAssertFalse(several.stdout.contains("Largest tensors"), several.stdout)
        let one = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--runtime", "snnmem", "--strategy", "bptt"])
        XCTAssertTrue(one.stdout.contains("Largest tensors live at the peak\n"), one.stdout)
    }

    /// A step stopped by the memory limit measured nothing: no "measured peak", no jemalloc
    /// figure, and the reason said once.
    func testOutOfMemoryStopShowsNothingAsMeasured() throws {
        let result = try SnnmemProcess.run(["run", "profiles/digits.yaml", "--memory-limit", "20KiB"])
        XCTAssertEqual(result.exitCode, 3, result.stderr)
        XCTAssertFalse(result.stdout.contains("measured peak") || result.stdout.contains("held for backward: measured"), result.stdout)
        XCTAssertFalse(result.stdout.contains("jemalloc thread peak"), result.stdout)
        XCTAssertTrue(result.stdout.contains("STOPPED, out of memory"), result.stdout)
        XCTAssertTrue(result.stdout.contains("memory limit (--memory-limit)"), result.stdout)
        let text = result.stdout + result.stderr
        XCTAssertFalse(text.contains("out of memory: out of memory"), text)
        XCTAssertEqual(result.stderr.components(separatedBy: "out of memory").count - 1, 1, result.stderr)
        let json = try SnnmemProcess.run(["run", "profiles/digits.yaml", "--memory-limit", "20KiB", "--format", "json"])
        XCTAssertEqual(json.exitCode, 3)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["outOfMemory"] as? Bool, true)
        XCTAssertTrue(object["measuredPeakBytes"] is NSNull || object["measuredPeakBytes"] == nil, "\(object)")
    }
}
