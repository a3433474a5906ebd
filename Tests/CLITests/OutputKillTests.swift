import Foundation
import XCTest

/// Report folders under real kills: `strace -e inject=...:signal=KILL:when=N` stops `snnmem sweep
/// --out` at its N-th write, fsync or rename. After every kill the folder is the old one or the
/// new one, complete; the next run leaves no temporaries behind.
final class OutputKillTests: XCTestCase {
    var workFolder: URL!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
            throw XCTSkip("strace is not installed (scripts/install-deps.sh installs it)")
        }
        workFolder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-kill-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workFolder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let workFolder { try? FileManager.default.removeItem(at: workFolder) }
    }

    func contents(_ folder: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            files[name] = try Data(contentsOf: folder.appendingPathComponent(name))
        }
        return files
    }

    func sweep(_ out: URL, timesteps: String, strace: [String] = []) throws -> SnnmemProcess.Result {
        let arguments = ["sweep", "profiles/cifarnet.yaml", "--timesteps", timesteps, "--runtime", "snnmem", "--out", out.path]
        if strace.isEmpty { return try SnnmemProcess.run(arguments, timeoutSeconds: 60) }
        return try SnnmemProcess.run(arguments, viaStrace: strace)
    }

    /// Kills at every N-th call of `syscalls` until a run completes; checks the folder after each.
    func killAtEveryCall(of syscalls: String, extraInjection: [String] = []) throws {
        let out = workFolder.appendingPathComponent("sweep-\(syscalls.replacingOccurrences(of: ",", with: "-"))")
        XCTAssertEqual(try sweep(out, timesteps: "1,2").exitCode, 0)
        let old = try contents(out)
        var newest: [String: Data]?
        var kills = 0
        for n in 1...400 {
            let injection = extraInjection + ["-e", "inject=\(syscalls):signal=KILL:when=\(n)"]
            let result = try sweep(out, timesteps: "1,3", strace: injection)
            if !FileManager.default.fileExists(atPath: out.path) {
                // Only between the fallback's two renames: the old folder waits under its journal name.
                let journal = try FileManager.default.contentsOfDirectory(atPath: workFolder.path)
                    .filter { $0.hasPrefix(".\(out.lastPathComponent).old-") }
                XCTAssertEqual(journal.count, 1, "kill at \(syscalls) #\(n): the folder is gone without a journal")
                if let name = journal.first { XCTAssertEqual(try contents(workFolder.appendingPathComponent(name)), old) }
                XCTAssertFalse(extraInjection.isEmpty, "with renameat2's exchange the folder is never missing")
                kills += 1
                continue
            }
            let now = try contents(out)
            let manifest = String(decoding: now[".snnmem-output"] ?? Data(), as: UTF8.self)
            let listed = Set(manifest.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
            XCTAssertEqual(Set(now.keys), listed.union([".snnmem-output"]), "kill at \(syscalls) #\(n): files do not match the manifest")
            let isOld = now == old
            if !isOld {
                if let newest { XCTAssertEqual(now, newest, "kill at \(syscalls) #\(n): a third state") } else { newest = now }
            }
            if result.exitCode == 0 { break }
            kills += 1
        }
        XCTAssertGreaterThan(kills, 0, "no \(syscalls) call was killed")
        XCTAssertEqual(try sweep(out, timesteps: "1,2").exitCode, 0)
        let litter = try FileManager.default.contentsOfDirectory(atPath: workFolder.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(litter, [], "temporaries left after a clean run")
    }

    func testKilledAtEveryRenameLeavesOldOrNewFolder() throws {
        try killAtEveryCall(of: "rename,renameat,renameat2")
    }

    func testKilledAtEveryFsyncLeavesOldOrNewFolder() throws {
        try killAtEveryCall(of: "fsync")
    }

    /// Where the file system cannot exchange two paths, the writer's two renames leave a journal
    /// that the next write finishes.
    func testKilledBetweenTheFallbackRenamesIsFinishedByTheNextRun() throws {
        try killAtEveryCall(of: "rename,renameat", extraInjection: ["-e", "inject=renameat2:error=EINVAL"])
    }
}

/// Output paths are checked before any training or planning work, and a folder of the user's is never emptied.
final class OutputPathCommandTests: XCTestCase {
    func testUnwritableOrForeignOutputFailsFirst() throws {
        let started = Date()
        let compare = try SnnmemProcess.run(["compare", "profiles/cifarnet.yaml", "--out", "/nonexistent-snnmem/out"], timeoutSeconds: 30)
        XCTAssertEqual(compare.exitCode, 2, compare.stderr)
        XCTAssertTrue(compare.stderr.contains("does not exist"), compare.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "compare trained before checking --out")

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-foreign-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let mine = folder.appendingPathComponent("notes.txt")
        try Data("mine".utf8).write(to: mine)
        let sweep = try SnnmemProcess.run(["sweep", "profiles/cifarnet.yaml", "--timesteps", "1,2", "--out", folder.path])
        XCTAssertEqual(sweep.exitCode, 2, sweep.stderr)
        XCTAssertTrue(sweep.stderr.contains("did not write"), sweep.stderr)
        XCTAssertEqual(try Data(contentsOf: mine), Data("mine".utf8))
        XCTAssertTrue(sweep.stdout.isEmpty, "nothing planned before the refusal: \(sweep.stdout.prefix(200))")
    }
}
