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
        XCTAssertTrue(over.stdout.contains("profiles/cifarnet.yaml snnmem bptt") && over.stdout.contains("exceeds the budget"), over.stdout)
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
        XCTAssertTrue(text.contains("| profiles/digits.yaml"), text)
        // GitHub renders a line right after a table as one more row: a blank line must end it.
        let lines = text.components(separatedBy: "\n")
        let lastRow = try XCTUnwrap(lines.lastIndex { $0.hasPrefix("|") })
        XCTAssertEqual(lines[lastRow + 1], "", text)
        XCTAssertTrue(lines[(lastRow + 2)...].contains("all 3 within bounds"), text)
    }

    func testCommittedBaselineHolds() throws {
        let result = try SnnmemProcess.run(["check"] + (try FileManager.default.contentsOfDirectory(atPath: SnnmemProcess.repositoryRoot.appendingPathComponent("profiles").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "profiles/" + $0 }) + ["--budget", "24GiB", "--runtime", "all", "--baseline", "baselines/memory.json"])
        XCTAssertEqual(result.exitCode, 0, result.stdout)
    }

    /// A scratch folder holding a copy of a bundled profile, removed after the test.
    func scratchProfile(_ name: String, as file: String = "p.yaml") throws -> (folder: String, profile: String) {
        let folder = temporary("profiles")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        let profile = folder + "/" + file
        try FileManager.default.copyItem(atPath: SnnmemProcess.repositoryRoot.appendingPathComponent("profiles/\(name).yaml").path, toPath: profile)
        return (folder, profile)
    }

    func edit(_ path: String, _ body: (String) -> String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let edited = body(text)
        XCTAssertNotEqual(edited, text, "the edit changed nothing in \(path)")
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The issue's case: batch 16 -> 256 and T 4 -> 16 (peak 18.7 GiB, still under the budget)
    /// printed `ok` and exited 0 because entries were matched on name, batch and T. Now the
    /// entry is the file's, and its content, batch and T differ: CHANGED, exit 1.
    func testEditedProfileIsChangedAndFails() throws {
        let (folder, profile) = try scratchProfile("cifarnet")
        let baseline = folder + "/baseline.json"
        let write = try SnnmemProcess.run(["check", profile, "--budget", "24GiB", "--write-baseline", baseline])
        XCTAssertEqual(write.exitCode, 0, write.stderr)
        try edit(profile) { $0.replacingOccurrences(of: "\nbatch: 16\n", with: "\nbatch: 256\n")
            .replacingOccurrences(of: "\ntimesteps: 4\n", with: "\ntimesteps: 16\n") }
        let bigger = try SnnmemProcess.run(["check", profile, "--budget", "24GiB", "--baseline", baseline])
        XCTAssertEqual(bigger.exitCode, 1, bigger.stdout)
        XCTAssertTrue(bigger.stdout.contains("CHANGED") && bigger.stdout.contains("batch 16 -> 256, T 4 -> 16")
                      && bigger.stdout.contains("not comparable"), bigger.stdout)
        XCTAssertFalse(bigger.stdout.contains(" ok"), bigger.stdout)
        // A tolerance does not make changed figures comparable.
        XCTAssertEqual(try SnnmemProcess.run(["check", profile, "--budget", "24GiB", "--baseline", baseline, "--tolerance", "10000"]).exitCode, 1)

        // An edit that leaves batch and T alone (a wider layer, here only a comment) is a content change.
        XCTAssertEqual(try SnnmemProcess.run(["check", profile, "--budget", "24GiB", "--write-baseline", baseline]).exitCode, 0)
        try edit(profile) { $0 + "\n# edited\n" }
        let content = try SnnmemProcess.run(["check", profile, "--budget", "24GiB", "--baseline", baseline])
        XCTAssertEqual(content.exitCode, 1, content.stdout)
        XCTAssertTrue(content.stdout.contains("the profile file's content (sha256"), content.stdout)
    }

    /// Renaming the file (same name inside) made no difference before; now it is new plus stale.
    func testRenamedProfileIsNewAndStale() throws {
        let (folder, profile) = try scratchProfile("digits")
        let baseline = folder + "/baseline.json"
        XCTAssertEqual(try SnnmemProcess.run(["check", profile, "--budget", "1GiB", "--write-baseline", baseline]).exitCode, 0)
        let renamed = folder + "/renamed.yaml"
        try FileManager.default.moveItem(atPath: profile, toPath: renamed)
        let result = try SnnmemProcess.run(["check", renamed, "--budget", "1GiB", "--baseline", baseline])
        XCTAssertEqual(result.exitCode, 1, result.stdout)
        XCTAssertTrue(result.stdout.contains("STALE") && result.stdout.contains("new"), result.stdout)
        XCTAssertTrue(result.stdout.contains("removed or renamed (its content is now \(renamed))"), result.stdout)
    }

    /// New entries are reported; --fail-on-new fails on them.
    func testFailOnNew() throws {
        let (folder, profile) = try scratchProfile("digits")
        let baseline = folder + "/baseline.json"
        XCTAssertEqual(try SnnmemProcess.run(["check", profile, "--budget", "1GiB", "--strategy", "bptt", "--write-baseline", baseline]).exitCode, 0)
        let reported = try SnnmemProcess.run(["check", profile, "--budget", "1GiB", "--baseline", baseline])
        XCTAssertEqual(reported.exitCode, 0, reported.stdout)
        XCTAssertTrue(reported.stdout.contains("NEW (not failing"), reported.stdout)
        let failing = try SnnmemProcess.run(["check", profile, "--budget", "1GiB", "--baseline", baseline, "--fail-on-new"])
        XCTAssertEqual(failing.exitCode, 1, failing.stdout)
        XCTAssertTrue(failing.stdout.contains("(failing: --fail-on-new)"), failing.stdout)
    }

    /// Rewrites every entry's peak (and activations with it) by `delta` bytes.
    func shift(_ baseline: String, by delta: Int) throws {
        let url = URL(fileURLWithPath: baseline)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object["entries"] = try XCTUnwrap(object["entries"] as? [[String: Any]]).map { entry in
            var entry = entry
            var roles = entry["bytesByRoleAtPeak"] as! [String: Int]
            roles["activations"]! += delta
            entry["bytesByRoleAtPeak"] = roles
            entry["peakBytes"] = (entry["peakBytes"] as! Int) + delta
            return entry
        }
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    /// Shrunk past the tolerance: exit 4 ("update the baseline"); grown: exit 1; the absolute
    /// tolerance covers either when the change is within it.
    func testImprovedExitsFourAndAbsoluteTolerance() throws {
        let (folder, profile) = try scratchProfile("digits")
        let baseline = folder + "/baseline.json"
        let arguments = ["check", profile, "--budget", "1GiB", "--strategy", "bptt", "--baseline", baseline]
        XCTAssertEqual(try SnnmemProcess.run(Array(arguments.dropLast(2)) + ["--write-baseline", baseline]).exitCode, 0)
        try shift(baseline, by: 1 << 20)
        let improved = try SnnmemProcess.run(arguments)
        XCTAssertEqual(improved.exitCode, 4, improved.stdout)
        XCTAssertTrue(improved.stdout.contains("IMPROVED") && improved.stdout.contains("update the baseline"), improved.stdout)
        XCTAssertEqual(try SnnmemProcess.run(arguments + ["--tolerance-bytes", "1MiB"]).exitCode, 0)
        try shift(baseline, by: -(2 << 20))
        let grew = try SnnmemProcess.run(arguments)
        XCTAssertEqual(grew.exitCode, 1, grew.stdout)
        XCTAssertTrue(grew.stdout.contains("GREW") && grew.stdout.contains("+1.00 MiB"), grew.stdout)
        XCTAssertEqual(try SnnmemProcess.run(arguments + ["--tolerance-bytes", "1MiB"]).exitCode, 0, "exactly at the tolerance passes")
        XCTAssertEqual(try SnnmemProcess.run(arguments + ["--tolerance-bytes", "1048575"]).exitCode, 1)
        XCTAssertEqual(try SnnmemProcess.run(arguments + ["--tolerance-bytes", "lots"]).exitCode, 2)
    }

    /// Checking one profile, runtime or strategy against the whole committed baseline marks the
    /// rest "not checked", not stale: their files still exist and were not named.
    func testSubsetOfTheCommittedBaselineIsNotStale() throws {
        for extra in [["--runtime", "all"], ["--runtime", "snnmem", "--strategy", "sltt"]] {
            let result = try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "24GiB", "--baseline", "baselines/memory.json"] + extra)
            XCTAssertEqual(result.exitCode, 0, result.stdout)
            XCTAssertTrue(result.stdout.contains("baseline entries not checked"), result.stdout)
            XCTAssertFalse(result.stdout.contains("STALE"), result.stdout)
        }
        // However the file is spelled, it is the committed entry's.
        let spelled = try SnnmemProcess.run(["check", "./profiles//digits.yaml", SnnmemProcess.repositoryRoot.path + "/profiles/digits.yaml",
                                             "--budget", "24GiB", "--baseline", "baselines/memory.json", "--fail-on-new"])
        XCTAssertEqual(spelled.exitCode, 0, spelled.stdout)
    }

    /// Each committed entry carries `sha256sum` of its profile file.
    func testCommittedBaselineCarriesEachFilesDigest() throws {
        let url = SnnmemProcess.repositoryRoot.appendingPathComponent("baselines/memory.json")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        XCTAssertEqual(object["formatVersion"] as? Int, 2)
        let entries = try XCTUnwrap(object["entries"] as? [[String: Any]])
        let files = Set(entries.compactMap { $0["profileFile"] as? String })
        XCTAssertFalse(files.isEmpty)
        for file in files.sorted() {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            process.arguments = [SnnmemProcess.repositoryRoot.appendingPathComponent(file).path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let digest = String(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64))
            process.waitUntilExit()
            for entry in entries where entry["profileFile"] as? String == file {
                XCTAssertEqual(entry["profileSHA256"] as? String, digest, "\(file): write the baseline again")
            }
        }
    }

    /// A baseline of format 1 (keyed by profile name) is refused with how to write it again.
    func testFormatOneBaselineIsRefused() throws {
        let path = temporary("v1.json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"formatVersion": 1, "toolVersion": "0.1.0", "entries": []}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try SnnmemProcess.run(["check", "profiles/digits.yaml", "--budget", "1GiB", "--baseline", path])
        XCTAssertEqual(result.exitCode, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains(path) && result.stderr.contains("version 1") && result.stderr.contains("--write-baseline"), result.stderr)
    }

    func testHelpDocumentsVerdictsAndExitCodes() throws {
        let help = try SnnmemProcess.run(["check", "--help"])
        XCTAssertEqual(help.exitCode, 0)
        let text = help.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        for words in ["--tolerance-bytes", "--fail-on-new", "stale", "changed", "improved", "Exit codes: 0", "4 nothing failed"] {
            XCTAssertTrue(text.contains(words), "check --help lacks '\(words)': \(help.stdout)")
        }
    }

    /// check loads profiles and plans entries side by side: what it reports must not depend on
    /// which finishes first. Entries come in the order named (then runtime, then strategy), and of
    /// several bad inputs the one a serial check would meet first is the error: the baseline, then
    /// the first bad profile named.
    func testConcurrentWorkKeepsTheOrderNamed() throws {
        let badSyntax = temporary("syntax.yaml"), missingKey = temporary("missing.yaml"), badBaseline = temporary("baseline.json")
        defer { for path in [badSyntax, missingKey, badBaseline] { try? FileManager.default.removeItem(atPath: path) } }
        try "layers: [conv: {out: 4\n".write(toFile: badSyntax, atomically: true, encoding: .utf8)
        try "timesteps: 2\nlayers:\n  - flatten\n".write(toFile: missingKey, atomically: true, encoding: .utf8)
        try "{not json".write(toFile: badBaseline, atomically: true, encoding: .utf8)
        for _ in 0..<3 {
            let second = try SnnmemProcess.run(["check", "profiles/vgg13.yaml", missingKey, "profiles/resnet19.yaml", badSyntax, "--budget", "1GiB"])
            XCTAssertEqual(second.exitCode, 2)
            XCTAssertTrue(second.stderr.contains(missingKey) && !second.stderr.contains(badSyntax), second.stderr)
            let swapped = try SnnmemProcess.run(["check", badSyntax, "profiles/digits.yaml", missingKey, "--budget", "1GiB"])
            XCTAssertEqual(swapped.exitCode, 2)
            XCTAssertTrue(swapped.stderr.contains(badSyntax) && !swapped.stderr.contains(missingKey), swapped.stderr)
            let baselineFirst = try SnnmemProcess.run(["check", missingKey, "--budget", "1GiB", "--baseline", badBaseline])
            XCTAssertEqual(baselineFirst.exitCode, 2)
            XCTAssertTrue(baselineFirst.stderr.contains(badBaseline) && !baselineFirst.stderr.contains(missingKey), baselineFirst.stderr)
        }
        let names = ["profiles/vgg11.yaml", "profiles/digits.yaml", "profiles/revsresnet21.yaml", "profiles/cifarnet.yaml"]
        for order in [names, names.reversed()] {
            let json = try SnnmemProcess.json(["check"] + order + ["--budget", "24GiB", "--runtime", "all", "--format", "json"])
            let entries = try XCTUnwrap(json["results"] as? [[String: Any]]).compactMap { $0["entry"] as? [String: Any] }
            let files = entries.compactMap { $0["profileFile"] as? String }
            var firstSeen: [String] = []
            for file in files where firstSeen.last != file { firstSeen.append(file) }
            XCTAssertEqual(firstSeen, order, "entries grouped by profile, in the order named")
            let runtimes = entries.filter { $0["profileFile"] as? String == "profiles/revsresnet21.yaml" }.compactMap { $0["runtime"] as? String }
            let expected: [String] = ["snnmem", "pytorch-cuda", "pytorch-cpu"].flatMap { runtime in [String](repeating: runtime, count: 4) }
            XCTAssertEqual(runtimes, expected)
            let strategies = entries.filter { $0["profileFile"] as? String == "profiles/revsresnet21.yaml" && $0["runtime"] as? String == "snnmem" }
                .compactMap { $0["strategy"] as? String }
            XCTAssertEqual(strategies, ["bptt", "checkpoint", "sltt", "revsnn"])
        }
    }
}
