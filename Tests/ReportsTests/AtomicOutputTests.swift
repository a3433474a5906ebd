import Foundation
import Reports
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
}
