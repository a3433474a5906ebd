import Foundation
import XCTest

/// Hostile numbers on the command line: a clear error and exit 2, fast, never a trap.
final class LimitsCommandTests: XCTestCase {
    func assertRefused(_ arguments: [String], mentioning text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let started = Date()
        let result = try SnnmemProcess.run(arguments, timeoutSeconds: 20)
        let context = "\(arguments.joined(separator: " ")) -> \(result.exitCode): \(result.stderr.prefix(400))"
        XCTAssertFalse(result.timedOut, context, file: file, line: line)
        XCTAssertEqual(result.exitCode, 2, context, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), context, file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), context, file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, context, file: file, line: line)
    }

    func testHugeBatchIsRefused() throws {
        for batch in ["1000000000000000", "4611686018427387904", "9223372036854775807"] {
            try assertRefused(["plan", "profiles/cifarnet.yaml", "--batch", batch], mentioning: "16,777,216")
        }
        try assertRefused(["run", "profiles/cifarnet.yaml", "--batch", "4611686018427387904", "--steps", "1"], mentioning: "16,777,216")
    }

    /// A run keeps every step's events for its trace: a step count whose events cannot be held
    /// is refused before training (it used to abort reserving petabytes).
    func testHugeStepCountIsRefused() throws {
        for steps in ["100000000000", "9223372036854775807"] {
            try assertRefused(["run", "profiles/digits.yaml", "--steps", steps, "--memory-limit", "1KiB"], mentioning: "use --steps")
            try assertRefused(["compare", "profiles/digits.yaml", "--steps", steps], mentioning: "use --steps")
        }
    }

    func testHugeTimestepsAreRefused() throws {
        try assertRefused(["plan", "profiles/cifarnet.yaml", "--timesteps", "1099511627776"], mentioning: "65,536")
        try assertRefused(["max-batch", "profiles/cifarnet.yaml", "--memory", "24GiB", "--timesteps", "1099511627776"], mentioning: "65,536")
        try assertRefused(["sweep", "profiles/cifarnet.yaml", "--timesteps", "1,1099511627776"], mentioning: "65,536")
        // Within the per-value bound, past what the network's layers allow: the planner's check names the largest T.
        try assertRefused(["plan", "profiles/sew-resnet34.yaml", "--timesteps", "60000"], mentioning: "the largest timesteps snnmem plans here is")
    }

    func testBatchTooLargeForTheShapesNamesTheLargest() throws {
        try assertRefused(["plan", "profiles/cifarnet.yaml", "--timesteps", "7000", "--batch", "16000000"],
                          mentioning: "the largest batch snnmem plans here is")
    }

    func testHugeDepthScaleIsRefusedBeforeWork() throws {
        try assertRefused(["sweep", "profiles/revsresnet21.yaml", "--depth-scale", "1,100000000"], mentioning: "the largest factor for it is")
    }

    /// A batch within the limits but past the machine's memory: refused from the plan, before
    /// training, instead of the kernel killing the process.
    func testRunPastTheMachinesMemoryIsRefusedBeforeTraining() throws {
        try assertRefused(["run", "profiles/cifarnet.yaml", "--batch", "16000000", "--steps", "1"], mentioning: "more than this machine's")
    }

    func testToleranceMustBeAFiniteNumber() throws {
        for tolerance in ["nan", "inf", "-inf", "-1"] {
            try assertRefused(["check", "profiles/cifarnet.yaml", "--budget", "24GiB", "--tolerance=\(tolerance)"], mentioning: "--tolerance")
        }
    }
}

/// `train --data` with a file that is not a data set is bad input: exit 2, not 1 (a failed check).
final class TrainDataErrorTests: XCTestCase {
    func testBadDataFilesExitTwo() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-data-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let malformed = folder.appendingPathComponent("bad.csv")
        try Data("1,2,x\n".utf8).write(to: malformed)
        for (path, text) in [("/nonexistent/digits.csv", "cannot open"), (folder.path, "is a folder"), (malformed.path, "bad.csv:1:")] {
            let result = try SnnmemProcess.run(["train", "profiles/digits.yaml", "--data", path, "--epochs", "1"])
            XCTAssertEqual(result.exitCode, 2, "\(path): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(text), "\(path): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("fix:"), result.stderr)
        }
    }
}
