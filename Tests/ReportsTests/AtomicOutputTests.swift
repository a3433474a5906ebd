import OutputFiles
import Foundation
import Reports
import MemoryModel
import XCTest

final class AtomicOutputTests: XCTestCase {
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func testFolderIsReplacedWhole() throws {
        let base = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: base) }
        let out = base.appendingPathComponent("report").path
        try AtomicOutput.writeFolder(["a.txt": Data("one".utf8), "old.txt": Data("x".utf8)], to: out)
        try AtomicOutput.writeFolder(["a.txt": Data("two".utf8)], to: out)
        XCTAssertEqual(try String(contentsOfFile: out + "/a.txt", encoding: .utf8), "two")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/old.txt"), "the folder holds exactly the new files")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base.path), ["report"], "no staging folder is left")
    }

    func testFailureLeavesTheOldFolder() throws {
        let base = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: base) }
        let out = base.appendingPathComponent("report").path
        try AtomicOutput.writeFolder(["a.txt": Data("one".utf8)], to: out)
        // A file name that cannot be created makes the write fail part-way.
        XCTAssertThrowsError(try AtomicOutput.writeFolder(["a.txt": Data("two".utf8), "missing/b.txt": Data()], to: out))
        XCTAssertEqual(try String(contentsOfFile: out + "/a.txt", encoding: .utf8), "one")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base.path), ["report"])
    }

    func testFileWriteIsAtomicAndNamesAMissingFolder() throws {
        let base = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: base) }
        let file = base.appendingPathComponent("out.json").path
        try AtomicOutput.write(Data("{}".utf8), to: file)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "{}")
        XCTAssertThrowsError(try AtomicOutput.write(Data(), to: base.path + "/nope/out.json")) { error in
            XCTAssertTrue("\(error)".contains("does not exist"))
        }
    }

    /// `--out .` once deleted the user's files: a folder holding files snnmem did not write is refused, untouched.
    func testFolderWithForeignFilesIsRefusedAndKept() throws {
        let base = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: base) }
        let mine = base.appendingPathComponent("thesis.tex")
        try Data("precious".utf8).write(to: mine)
        XCTAssertThrowsError(try AtomicOutput.checkFolderTarget(base.path))
        XCTAssertThrowsError(try AtomicOutput.writeFolder(["report.md": Data("x".utf8)], to: base.path)) { error in
            XCTAssertTrue("\(error)".contains("thesis.tex"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: mine), Data("precious".utf8))
        // A report folder snnmem wrote, with a user's file added to it, is refused too.
        let out = base.appendingPathComponent("out")
        try AtomicOutput.writeFolder(["report.md": Data("one".utf8)], to: out.path)
        try Data("notes".utf8).write(to: out.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try AtomicOutput.writeFolder(["report.md": Data("two".utf8)], to: out.path))
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("notes.txt")), Data("notes".utf8))
        // An empty folder is fine.
        let empty = base.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        XCTAssertNoThrow(try AtomicOutput.writeFolder(["report.md": Data("x".utf8)], to: empty.path))
    }

    /// Temporaries of a killed run (a PID that no longer lives) are removed by the next write; a
    /// retired old folder is put back when the target is missing.
    func testStaleTemporariesAreCleanedAndTheJournalFinished() throws {
        let base = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: base) }
        let deadPID = 999_999_9  // above Linux's pid_max default: never a live process
        let fm = FileManager.default
        try Data("half".utf8).write(to: base.appendingPathComponent(".trace.json.tmp-\(deadPID)"))
        try AtomicOutput.write(Data("{}".utf8), to: base.appendingPathComponent("trace.json").path)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: base.path).sorted(), ["trace.json"])

        let out = base.appendingPathComponent("out")
        try AtomicOutput.writeFolder(["a.txt": Data("old".utf8)], to: out.path)
        try fm.moveItem(at: out, to: base.appendingPathComponent(".out.old-\(deadPID)"))
        try fm.createDirectory(at: base.appendingPathComponent(".out.new-\(deadPID)"), withIntermediateDirectories: false)
        AtomicOutput.removeStaleTemporariesForTesting(of: out)
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("a.txt"), encoding: .utf8), "old", "the journal was finished")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: base.path).sorted(), ["out", "trace.json"])
    }

    func testOutputPathsAreCheckedBeforeWork() {
        XCTAssertThrowsError(try AtomicOutput.checkFolderTarget("/nonexistent-snnmem/out"))
        XCTAssertThrowsError(try AtomicOutput.checkFileTarget("/nonexistent-snnmem/baseline.json"))
        XCTAssertThrowsError(try AtomicOutput.checkFileTarget(FileManager.default.temporaryDirectory.path)) { error in
            XCTAssertTrue("\(error)".contains("is a folder"), "\(error)")
        }
    }
}

/// A baseline's figures are validated on read, with the entry and field named.
final class BaselineValidationTests: XCTestCase {
    func testNegativeOrAbsurdFiguresAreRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-baseline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = MemoryBaseline(toolVersion: "test", entries: [
            MemoryBaseline.Entry(profileFile: "p.yaml", profileSHA256: ReaderFuzzTests.emptyFileSHA256, profile: "p", strategy: "bptt",
                                 batch: 2, timesteps: 4, peakBytes: 100, bytesByRoleAtPeak: RoleBytes(), measured: false),
        ])
        let path = folder.appendingPathComponent("baseline.json").path
        try AtomicOutput.write(try good.encoded(), to: path)
        XCTAssertNoThrow(try MemoryBaseline.read(path: path))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for (field, bad) in [("\"peakBytes\" : 100", "\"peakBytes\" : -5"), ("\"batch\" : 2", "\"batch\" : 9223372036854775807"),
                             ("\"timesteps\" : 4", "\"timesteps\" : 0")] {
            XCTAssertTrue(text.contains(field), "fixture lost \(field): \(text)")
            try AtomicOutput.write(Data(text.replacingOccurrences(of: field, with: bad).utf8), to: path)
            XCTAssertThrowsError(try MemoryBaseline.read(path: path)) { error in
                let name = field.split(separator: "\"")[0]
                XCTAssertTrue("\(error)".contains("'\(name)'") && "\(error)".contains("entry 0"), "\(error)")
            }
        }
    }
}
