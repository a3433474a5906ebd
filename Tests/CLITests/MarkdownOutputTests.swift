import Foundation
import XCTest

/// On GitHub a line right after a Markdown table is rendered as one more row of it: every table
/// the commands print ends with a blank line (or the end of the text).
final class MarkdownOutputTests: XCTestCase {
    static func linesGluedToTables(_ text: String) -> [String] {
        let lines = text.components(separatedBy: "\n")
        var glued: [String] = []
        for (index, line) in lines.enumerated().dropLast() where line.hasPrefix("|") {
            let next = lines[index + 1]
            if !next.isEmpty && !next.hasPrefix("|") { glued.append(next) }
        }
        return glued
    }

    func testTheDetectorFindsAGluedLine() {
        XCTAssertEqual(Self.linesGluedToTables("| a |\n|---|\n| 1 |\nall 3 within bounds"), ["all 3 within bounds"])
        XCTAssertEqual(Self.linesGluedToTables("| a |\n|---|\n| 1 |\n\nall 3 within bounds"), [])
    }

    func testEveryCommandEndsItsTablesWithABlankLine() throws {
        let commands: [[String]] = [
            ["plan", "profiles/cifarnet.yaml", "--format", "markdown"],
            ["plan", "profiles/cifarnet.yaml", "--format", "markdown", "--top", "3", "--layers"],
            ["plan", "profiles/cifarnet.yaml", "--format", "markdown", "--strategy", "bptt"],
            ["max-batch", "profiles/cifarnet.yaml", "--memory", "24GiB", "--format", "markdown"],
            ["sweep", "profiles/cifarnet.yaml", "--timesteps", "1,2", "--format", "markdown"],
            ["check", "profiles/digits.yaml", "--budget", "1GiB", "--format", "markdown"],
            ["check", "profiles/digits.yaml", "--budget", "1KiB", "--format", "markdown"],
            ["compare", "profiles/digits.yaml", "--steps", "1", "--batch", "2", "--strategies", "bptt", "--format", "markdown"],
        ]
        for arguments in commands {
            let result = try SnnmemProcess.run(arguments)
            XCTAssertTrue([0, 1].contains(result.exitCode), "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("|"), "\(arguments) printed no table")
            XCTAssertEqual(Self.linesGluedToTables(result.stdout), [], arguments.joined(separator: " "))
        }
    }
}
