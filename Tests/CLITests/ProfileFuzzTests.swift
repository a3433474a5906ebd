import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// Seeded mutation fuzzing of every bundled profile. Each mutant must either plan sanely or be
/// refused with a profile error at a line and column: never a trap, never more than a few seconds.
final class ProfileFuzzTests: XCTestCase {
    static let profilesFolder = SnnmemProcess.repositoryRoot.appendingPathComponent("profiles")

    static func bundledProfiles() throws -> [(name: String, text: String)] {
        try FileManager.default.contentsOfDirectory(at: profilesFolder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
            .map { ($0.lastPathComponent, try String(contentsOf: $0, encoding: .utf8)) }
    }

    /// A plan a user could act on: positive peak, made of its roles, at least what persists.
    func assertSane(_ plan: MemoryPlan, _ context: @autoclosure () -> String) {
        XCTAssertGreaterThan(plan.peakBytes, 0, context())
        XCTAssertGreaterThanOrEqual(plan.peakBytes, plan.persistentBytes, context())
        XCTAssertEqual(plan.bytesByRoleAtPeak.total, plan.peakBytes, context())
        XCTAssertTrue(plan.forwardFlops.isFinite && plan.forwardFlops >= 0, context())
    }

    /// In-process: thousands of mutants through the loader and the planner on every runtime.
    func testMutatedProfilesPlanOrFailAtALine() throws {
        let started = Date()
        var mutator = ProfileMutator(seed: 20261202)
        var counts = (planned: 0, refused: 0)
        let profiles = try Self.bundledProfiles()
        outer: for round in 0..<400 {
            for (name, text) in profiles {
                guard Date().timeIntervalSince(started) < 30 else { break outer }
                let mutant = mutator.mutate(text)
                let file = "mutant-\(round)-\(name)"
                let mutantStarted = Date()
                do {
                    let profile = try ProfileLoader.parse(yaml: mutant, file: file)
                    let runtime = Runtime.allCases[round % Runtime.allCases.count]
                    let (plans, _) = try Planner.planAll(profile, options: Planner.Options(runtime: runtime))
                    for plan in plans { assertSane(plan, "\(file) \(plan.strategy)\n\(mutant)") }
                    counts.planned += 1
                } catch let error as ProfileError {
                    XCTAssertEqual(error.file, file)
                    XCTAssertNotNil(error.location, "\(error)\n--- mutant:\n\(mutant)")
                    XCTAssertFalse(error.fix.isEmpty, "\(error)")
                    counts.refused += 1
                } catch {
                    XCTFail("\(file): \(type(of: error)) \(error)\n--- mutant:\n\(mutant)")
                }
                XCTAssertLessThan(Date().timeIntervalSince(mutantStarted), 5, "\(file) took too long\n\(mutant)")
            }
        }
        print("profile fuzz: \(counts.planned) mutants planned, \(counts.refused) refused at a line, in \(Int(Date().timeIntervalSince(started))) s")
        XCTAssertGreaterThan(counts.planned, 50)
        XCTAssertGreaterThan(counts.refused, 200)
    }

    /// Through the command line, as a user meets it: exit 0 with a JSON plan, or exit 2 with
    /// `FILE:LINE:COLUMN: error:`; a trap (signal) or a hang fails.
    func testMutatedProfilesThroughTheCLI() throws {
        let started = Date()
        var mutator = ProfileMutator(seed: 7)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var runs = 0
        let profiles = try Self.bundledProfiles()
        outer: for round in 0..<20 {
            for (name, text) in profiles {
                guard Date().timeIntervalSince(started) < 25 else { break outer }
                let path = folder.appendingPathComponent("\(round)-\(name)").path
                let mutant = mutator.mutate(text)
                try Data(mutant.utf8).write(to: URL(fileURLWithPath: path))
                let command = round % 3 == 2 ? ["max-batch", path, "--memory", "24GiB"] : ["plan", path, "--format", "json"]
                let result = try SnnmemProcess.run(command, timeoutSeconds: 20)
                runs += 1
                let context = "\(command.joined(separator: " ")) -> \(result.exitCode)\n\(result.stderr.prefix(600))\n--- mutant:\n\(mutant)"
                XCTAssertFalse(result.timedOut, "hang: \(context)")
                XCTAssertTrue(result.exitCode == 0 || result.exitCode == 2, context)
                if result.exitCode == 2 {
                    let located = result.stderr.range(of: "^\(NSRegularExpression.escapedPattern(for: path)):[0-9]+:[0-9]+: error: ",
                                                      options: .regularExpression) != nil
                    XCTAssertTrue(located, context)
                    XCTAssertFalse(result.stderr.contains("Fatal error"), context)
                } else if command[0] == "plan" {
                    let json = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
                    let strategies = json?["strategies"] as? [[String: Any]] ?? []
                    let skipped = json?["notApplicable"] as? [[String: Any]] ?? []
                    XCTAssertFalse(strategies.isEmpty && skipped.isEmpty, context)
                    for strategy in strategies { XCTAssertGreaterThan(strategy["peakBytes"] as? Int ?? 0, 0, context) }
                }
            }
        }
        print("profile fuzz (CLI): \(runs) mutants in \(Int(Date().timeIntervalSince(started))) s")
        XCTAssertGreaterThan(runs, 30)
    }
}
