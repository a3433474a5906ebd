import OutputFiles
import MemoryModel
import Profiles
import Reports
import XCTest

final class BudgetCheckTests: XCTestCase {
    static let digestA = SHA256.hex(Array("name: a\n".utf8))
    static let digestB = SHA256.hex(Array("name: b\n".utf8))

    func entry(_ peak: Int, activations: Int = 0, strategy: String = "bptt", file: String = "profiles/p.yaml",
               digest: String = digestA, batch: Int = 2, timesteps: Int = 4, measured: Bool = false) -> MemoryBaseline.Entry {
        var roles = RoleBytes()
        roles[.activation] = activations
        roles[.parameter] = peak - activations
        return MemoryBaseline.Entry(profileFile: file, profileSHA256: digest, profile: "p", strategy: strategy, batch: batch,
                                    timesteps: timesteps, peakBytes: peak, bytesByRoleAtPeak: roles, measured: measured)
    }

    func check(_ entries: [MemoryBaseline.Entry], against baseline: [MemoryBaseline.Entry], percent: Double = 0, bytes: Int = 0,
               failOnNew: Bool = false) -> BudgetCheck {
        BudgetCheck(entries: entries, budgetBytes: 1 << 30, baseline: MemoryBaseline(toolVersion: "test", entries: baseline),
                    tolerancePercent: percent, toleranceBytes: bytes, failOnNew: failOnNew)
    }

    func testToleranceEdge() {
        let baseline = [entry(1000, activations: 400)]
        XCTAssertEqual(check([entry(1100, activations: 500)], against: baseline, percent: 10).outcome, .passed,
                       "exactly at the tolerance passes")
        let grown = check([entry(1101, activations: 501)], against: baseline, percent: 10)
        XCTAssertEqual(grown.outcome, .failed)
        XCTAssertEqual(grown.results[0].verdict, .grew)
        XCTAssertEqual(grown.results[0].grownRoles, ["activations": 101])
        XCTAssertTrue(grown.failures()[0].contains("activations +101 B"), grown.failures()[0])
    }

    /// The absolute tolerance: within either band passes; past both fails. It matters for small
    /// peaks, where a few KiB of workspace is a large percentage.
    func testAbsoluteToleranceIsTheOtherBand() {
        let baseline = [entry(1000)]
        XCTAssertEqual(check([entry(1500)], against: baseline, percent: 10, bytes: 500).results[0].verdict, .ok,
                       "+500 B: past 10% but within 500 B")
        XCTAssertEqual(check([entry(1090)], against: baseline, percent: 5, bytes: 100).results[0].verdict, .ok,
                       "+90 B: past 5% but within 100 B")
        XCTAssertEqual(check([entry(1501)], against: baseline, percent: 10, bytes: 500).results[0].verdict, .grew)
        XCTAssertEqual(check([entry(499)], against: baseline, percent: 10, bytes: 500).results[0].verdict, .improved)
        XCTAssertTrue(check([entry(1501)], against: baseline, percent: 10, bytes: 500).render(markdown: false)
            .contains("tolerance 10.0% or 500 B"))
    }

    /// Every verdict, and the outcome each one leads to.
    func testEachVerdictAndOutcome() {
        let baseline = [entry(1000, strategy: "bptt"), entry(1000, strategy: "sltt"), entry(1000, strategy: "checkpoint"),
                        entry(1000, strategy: "revsnn")]
        let improved = check([entry(1000, strategy: "bptt"), entry(900, strategy: "sltt"), entry(1000, strategy: "checkpoint"),
                              entry(1000, strategy: "revsnn")], against: baseline, percent: 5)
        XCTAssertEqual(improved.results.map(\.verdict), [.ok, .improved, .ok, .ok])
        XCTAssertEqual(improved.outcome, .improved, "nothing failed, one shrank past the tolerance: update the baseline")
        XCTAssertTrue(improved.render(markdown: false).contains("peak shrank 10.0% (-100 B) below the baseline 1000 B"),
                      improved.render(markdown: false))

        let mixed = check([entry(1000, strategy: "bptt", batch: 16, timesteps: 16), entry(990, strategy: "sltt", digest: Self.digestB),
                           entry(1000, strategy: "checkpoint", measured: true), entry(100, strategy: "trevsnn")],
                          against: baseline)
        XCTAssertEqual(mixed.results.map(\.verdict), [.changed, .changed, .changed, .new, .stale])
        XCTAssertEqual(mixed.results.map(\.failed), [true, true, true, false, true])
        XCTAssertEqual(mixed.outcome, .failed)
        XCTAssertEqual(mixed.results[0].differences, ["batch 2 -> 16", "T 4 -> 16"])
        XCTAssertTrue(mixed.results[1].differences[0].contains(String(Self.digestB.prefix(12))), "\(mixed.results[1].differences)")
        XCTAssertEqual(mixed.results[2].differences, ["planned in the baseline, measured now"])
        XCTAssertNil(mixed.results[0].growthBytes, "changed figures are not compared")
        let text = mixed.render(markdown: false)
        XCTAssertTrue(text.contains("STALE") && text.contains("CHANGED") && text.contains("not comparable"), text)
        XCTAssertFalse(text.contains("within bounds"), text)

        // New entries fail only when asked.
        XCTAssertEqual(check([entry(1)], against: [], failOnNew: false).outcome, .passed)
        XCTAssertEqual(check([entry(1)], against: [], failOnNew: true).outcome, .failed)
        // Out of scope: neither compared nor stale.
        let scoped = BudgetCheck(entries: [entry(1000)], budgetBytes: 1 << 30,
                                 baseline: MemoryBaseline(toolVersion: "t", entries: [entry(1000), entry(5, strategy: "sltt")]),
                                 tolerancePercent: 0, notChecked: { $0.strategy == "sltt" })
        XCTAssertEqual(scoped.outcome, .passed)
        XCTAssertEqual(scoped.notCheckedCount, 1)
        XCTAssertTrue(scoped.render(markdown: false).contains("1 baseline entry not checked"))
    }

    /// Matching by profile name let a renamed file pass; by file it is one new and one stale
    /// entry, and the same content on both sides is pointed out.
    func testRenamedProfileIsNewAndStale() {
        let renamed = check([entry(1000, file: "profiles/q.yaml")], against: [entry(1000, file: "profiles/p.yaml")])
        XCTAssertEqual(renamed.results.map(\.verdict), [.new, .stale])
        XCTAssertEqual(renamed.outcome, .failed)
        XCTAssertEqual(renamed.results.map(\.sameContentAs), ["profiles/p.yaml", "profiles/q.yaml"])
        XCTAssertTrue(renamed.failures()[0].contains("profiles/p.yaml snnmem bptt") && renamed.failures()[0].contains("removed or renamed (its content is now profiles/q.yaml)"),
                      renamed.failures()[0])
    }

    func testBudgetWithoutBaseline() {
        let check = BudgetCheck(entries: [entry(2000), entry(500, strategy: "sltt")], budgetBytes: 1000, baseline: nil, tolerancePercent: 0)
        XCTAssertEqual(check.outcome, .failed)
        XCTAssertTrue(check.results[0].overBudget)
        XCTAssertNil(check.results[1].verdict, "no baseline: only the budget is checked")
        XCTAssertFalse(check.results[1].failed)
        XCTAssertTrue(check.failures()[0].contains("exceeds the budget"))
        XCTAssertTrue(check.render(markdown: true).contains("| profiles/p.yaml "))
    }

    /// GitHub renders a line right after a table as one more row: the table ends with a blank line.
    func testMarkdownTableIsFollowedByABlankLine() throws {
        for check in [check([entry(1000)], against: [entry(1000)]), check([entry(2000)], against: [entry(1000)]),
                      check([entry(900)], against: [entry(1000)]), check([entry(1000, file: "q.yaml")], against: [entry(1000)])] {
            let lines = check.render(markdown: true).components(separatedBy: "\n")
            let lastRow = try XCTUnwrap(lines.lastIndex { $0.hasPrefix("|") })
            XCTAssertLessThan(lastRow + 2, lines.count, "something follows the table")
            XCTAssertEqual(lines[lastRow + 1], "", check.render(markdown: true))
            let firstRow = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("|") })
            XCTAssertEqual(lines[firstRow - 1], "", "a blank line before the table too")
            // A paragraph after a list would continue its last item: lists end with a blank line.
            for (index, line) in lines.enumerated() where line.hasPrefix("- ") && index + 1 < lines.count {
                XCTAssertTrue(lines[index + 1].hasPrefix("- ") || lines[index + 1].isEmpty, check.render(markdown: true))
            }
        }
    }

    func testFileKeysAreNormalised() {
        let cwd = "/work/repo"
        XCTAssertEqual(MemoryBaseline.fileKey("profiles/a.yaml", currentDirectory: cwd), "profiles/a.yaml")
        XCTAssertEqual(MemoryBaseline.fileKey("./profiles//a.yaml", currentDirectory: cwd), "profiles/a.yaml")
        XCTAssertEqual(MemoryBaseline.fileKey("/work/repo/profiles/a.yaml", currentDirectory: cwd), "profiles/a.yaml")
        XCTAssertEqual(MemoryBaseline.fileKey("/work/repo/x/../profiles/a.yaml", currentDirectory: cwd + "/"), "profiles/a.yaml")
        XCTAssertEqual(MemoryBaseline.fileKey("/elsewhere/a.yaml", currentDirectory: cwd), "/elsewhere/a.yaml")
        XCTAssertEqual(MemoryBaseline.fileKey("../other/a.yaml", currentDirectory: cwd), "../other/a.yaml")
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

    /// A version-1 baseline (keyed by profile name, no digest) is refused, with how to rewrite it.
    func testVersionOneBaselineIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-baseline-v1-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let old = """
            {"formatVersion": 1, "toolVersion": "0.1.0", "entries": [{"profile": "cifarnet", "runtime": "snnmem", "strategy": "bptt",
             "batch": 16, "timesteps": 4, "peakBytes": 100, "bytesByRoleAtPeak": {}, "measured": false}]}
            """
        try Data(old.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try MemoryBaseline.read(path: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path) && text.contains("version 1") && text.contains("--write-baseline \(path)"), text)
        }
    }

    /// The new fields are validated on read like the figures: entry and field named.
    func testNewFieldsAreValidatedOnRead() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-baseline-fields-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = try String(decoding: MemoryBaseline(toolVersion: "test", entries: [entry(1000), entry(7, strategy: "sltt")]).encoded(),
                              as: UTF8.self)
        let damages: [(String, String, String)] = [
            ("\"profileSHA256\" : \"\(Self.digestA)\"", "\"profileSHA256\" : \"abc\"", "'profileSHA256'"),
            ("\"profileFile\" : \"profiles/p.yaml\"", "\"profileFile\" : \"\"", "'profileFile'"),
            ("\"runtime\" : \"snnmem\"", "\"runtime\" : \"tensorflow\"", "'runtime'"),
            ("\"strategy\" : \"sltt\"", "\"strategy\" : \"bptt\"", "repeats entry 0"),
            ("\"strategy\" : \"sltt\"", "\"strategy\" : \"magic\"", "'strategy'"),
            ("\"profile\" : \"p\"", "\"profile\" : \"\"", "'profile'"),
        ]
        for (field, bad, named) in damages {
            XCTAssertTrue(good.contains(field), "fixture lost \(field): \(good)")
            guard let range = good.range(of: field) else { continue }
            try AtomicOutput.write(Data(good.replacingCharacters(in: range, with: bad).utf8), to: path)
            XCTAssertThrowsError(try MemoryBaseline.read(path: path), bad) { error in
                XCTAssertTrue("\(error)".contains(named) && "\(error)".contains("entry "), "\(error)")
            }
        }
    }
}
