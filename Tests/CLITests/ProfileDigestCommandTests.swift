import Foundation
import XCTest

/// Traces carry the SHA-256 of the profile file they were measured on, and `report --profile`
/// refuses a file with other content: before, only the profile's name was compared, so a trace
/// was drawn against the plan of an edited network without a word.
final class ProfileDigestCommandTests: XCTestCase {
    func sha256sum(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return String(output.prefix(64))
    }

    func testTraceCarriesTheProfileDigestAndReportRefusesAnotherFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-digest-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trace = folder + "/trace.json"
        let run = try SnnmemProcess.run(["run", "profiles/digits.yaml", "--strategy", "sltt", "--steps", "1", "--trace", trace])
        XCTAssertEqual(run.exitCode, 0, run.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        let header = try XCTUnwrap(object["header"] as? [String: Any])
        let bundled = SnnmemProcess.repositoryRoot.appendingPathComponent("profiles/digits.yaml").path
        XCTAssertEqual(header["profileSHA256"] as? String, try sha256sum(bundled))
        XCTAssertEqual(header["formatVersion"] as? Int, 2)

        // The file it was measured on: drawn.
        let same = try SnnmemProcess.run(["report", trace, "--profile", "profiles/digits.yaml", "--out", folder + "/same"])
        XCTAssertEqual(same.exitCode, 0, same.stderr)

        // Same name, edited batch: refused, naming both digests and the way out.
        let edited = folder + "/digits.yaml"
        let text = try String(contentsOfFile: bundled, encoding: .utf8)
        try text.replacingOccurrences(of: "\nbatch: 32\n", with: "\nbatch: 64\n").write(toFile: edited, atomically: true, encoding: .utf8)
        let editedDigest = try sha256sum(edited)
        XCTAssertNotEqual(editedDigest, header["profileSHA256"] as? String, "the fixture edit changed nothing")
        let refused = try SnnmemProcess.run(["report", trace, "--profile", edited, "--out", folder + "/edited"])
        XCTAssertEqual(refused.exitCode, 2, refused.stdout)
        XCTAssertTrue(refused.stderr.contains(trace) && refused.stderr.contains(editedDigest)
                      && refused.stderr.contains(header["profileSHA256"] as! String) && refused.stderr.contains("snnmem run"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/edited"), "no partial output")
    }
}
