import Foundation
import XCTest

final class PlanCommandTests: XCTestCase {
    func testPlanJSONHasTheDocumentedKeys() throws {
        let json = try SnnmemProcess.json(["plan", "profiles/cifarnet.yaml", "--format", "json", "--batch", "4", "--timesteps", "2",
                                           "--runtime", "snnmem"])
        XCTAssertEqual(json["profile"] as? String, "cifarnet")
        XCTAssertEqual(json["runtime"] as? String, "snnmem")
        XCTAssertEqual(json["batch"] as? Int, 4)
        XCTAssertEqual(json["timesteps"] as? Int, 2)
        let strategies = try XCTUnwrap(json["strategies"] as? [[String: Any]])
        XCTAssertEqual(strategies.compactMap { $0["strategy"] as? String }, ["bptt", "checkpoint", "sltt"])
        for strategy in strategies {
            XCTAssertGreaterThan(strategy["peakBytes"] as? Int ?? 0, 0)
            let roles = try XCTUnwrap(strategy["bytesByRoleAtPeak"] as? [String: Int])
            XCTAssertEqual(Set(roles.keys), ["parameters", "gradients", "optimizerState", "activations", "neuronState", "workspace", "input"])
            XCTAssertEqual(roles.values.reduce(0, +), strategy["peakBytes"] as? Int, "roles at the peak add up to the peak")
            let saved = try XCTUnwrap(strategy["savedTensors"] as? [[String: Any]])
            XCTAssertFalse(saved.isEmpty)
            for key in ["layer", "timestep", "role", "shape", "bytes"] { XCTAssertNotNil(saved[0][key], key) }
            XCTAssertNotNil(strategy["forwardFlops"] as? Double)
            XCTAssertNotNil(strategy["recomputeFlops"] as? Double)
        }
        let skipped = try XCTUnwrap(json["notApplicable"] as? [[String: String]])
        XCTAssertEqual(skipped.map { $0["strategy"] }, ["revsnn", "trevsnn"])
        XCTAssertTrue(skipped.allSatisfy { !($0["reason"] ?? "").isEmpty })
    }

    /// The event stream is the same in every process: Swift seeds each process's dictionary order
    /// differently, so a walk over a dictionary (PyTorch checkpoint's held states, once) showed up as
    /// frees in another order from run to run.
    func testEventStreamIsTheSameInEveryProcess() throws {
        for runtime in ["pytorch-cpu", "pytorch-cuda"] {
            let arguments = ["plan", "profiles/cifar10dvs.yaml", "--strategy", "checkpoint", "--runtime", runtime, "--batch", "2",
                             "--timesteps", "4", "--format", "json", "--events"]
            let first = try SnnmemProcess.run(arguments)
            XCTAssertEqual(first.exitCode, 0, first.stderr)
            for _ in 0..<4 { XCTAssertEqual(try SnnmemProcess.run(arguments).stdout, first.stdout, runtime) }
        }
    }

    func testLayersListsEveryInferredShape() throws {
        let json = try SnnmemProcess.json(["plan", "profiles/digits.yaml", "--format", "json", "--layers", "--strategy", "bptt"])
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.first?["layer"] as? String, "conv1")
        XCTAssertEqual(layers.first?["outputShape"] as? [Int], [16, 8, 8])
        XCTAssertEqual(layers.last?["outputShape"] as? [Int], [10])
        let text = try SnnmemProcess.run(["plan", "profiles/digits.yaml", "--layers", "--strategy", "bptt"])
        XCTAssertTrue(text.stdout.contains("32x2x2"), text.stdout)
    }

    func testStrategyThatDoesNotApplyExitsTwoWithTheReason() throws {
        let result = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--strategy", "revsnn"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("no reversible stage"), result.stderr)
    }

    func testBadProfileExitsTwoWithLocationAndNoStackTrace() throws {
        let file = "Tests/ProfilesTests/BadProfiles/linear-in-mismatch.yaml"
        let result = try SnnmemProcess.run(["plan", file])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.hasPrefix("\(file):8:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("fix:"))
        XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Stack dump"))
        XCTAssertTrue(result.stdout.isEmpty)
    }

    func testBadArgumentsExitTwo() throws {
        for arguments in [["plan", "profiles/missing.yaml"], ["plan", "profiles/cifarnet.yaml", "--strategy", "magic"],
                          ["plan", "profiles/cifarnet.yaml", "--batch", "0"],
                          ["plan", "profiles/cifarnet.yaml", "--strategy", "bptt", "--segment", "2"],
                          ["plan", "profiles/cifarnet.yaml", "--strategy", "checkpoint", "--segment", "9"],
                          ["max-batch", "profiles/cifarnet.yaml", "--memory", "lots"],
                          ["max-batch", "profiles/cifarnet.yaml", "--memory", "1GiB", "--reserve", "2GiB"]] {
            let result = try SnnmemProcess.run(arguments)
            XCTAssertEqual(result.exitCode, 2, "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.isEmpty, "\(arguments)")
        }
    }

    func testTablesFitEightyColumns() throws {
        let profiles = try FileManager.default.contentsOfDirectory(atPath: SnnmemProcess.repositoryRoot.appendingPathComponent("profiles").path)
            .filter { $0.hasSuffix(".yaml") }
        for profile in profiles {
            // The default runtime (pytorch-cuda) lists what it does not model and still exits 0; snnmem models every profile.
            for arguments in [["plan", "profiles/" + profile], ["max-batch", "profiles/" + profile, "--memory", "8GiB"],
                              ["plan", "profiles/" + profile, "--runtime", "snnmem"],
                              ["plan", "profiles/" + profile, "--strategy", "bptt", "--runtime", "snnmem"],
                              ["max-batch", "profiles/" + profile, "--memory", "8GiB", "--runtime", "snnmem"]] {
                let result = try SnnmemProcess.run(arguments)
                XCTAssertEqual(result.exitCode, 0, result.stderr)
                // The title line names the file path and may be long; every table line must fit.
                for line in result.stdout.split(separator: "\n").dropFirst() {
                    XCTAssertLessThanOrEqual(line.count, 80, "\(arguments): \(line)")
                }
            }
        }
    }

    func testDefaultRuntimeIsPyTorchOnCUDA() throws {
        let json = try SnnmemProcess.json(["plan", "profiles/cifarnet.yaml", "--format", "json", "--batch", "2", "--timesteps", "2"])
        XCTAssertEqual(json["runtime"] as? String, "pytorch-cuda")
        let bptt = try XCTUnwrap((json["strategies"] as? [[String: Any]])?.first { $0["strategy"] as? String == "bptt" })
        // The fused neuron op keeps its input x_seq (the batch norm's output), v_init and h_seq:
        // bn1's output [T*B, 64, 32, 32] is kept by lif1, not by bn1.
        let layers = try XCTUnwrap(bptt["savedByLayer"] as? [[String: Any]])
        let lif1 = try XCTUnwrap(layers.first { $0["layer"] as? String == "lif1" }?["bytes"] as? Int)
        let activation = 2 * 2 * 64 * 32 * 32 * 4
        XCTAssertEqual(lif1, activation + activation + 2 * 64 * 32 * 32 * 4)
        let text = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--strategy", "bptt"])
        XCTAssertTrue(text.stdout.contains("runtime pytorch-cuda"), text.stdout)
        let events = try SnnmemProcess.json(["plan", "profiles/digits.yaml", "--format", "json", "--strategy", "bptt", "--events"])
        let plan = try XCTUnwrap((events["strategies"] as? [[String: Any]])?.first)
        let stream = try XCTUnwrap(plan["events"] as? [[String: Any]])
        var live = 0, peak = 0
        for event in stream { live += event["bytes"] as? Int ?? 0; peak = max(peak, live) }
        XCTAssertEqual(peak, plan["peakBytes"] as? Int, "the stream's running total reaches the planned peak")
        XCTAssertEqual(try SnnmemProcess.run(["plan", "profiles/digits.yaml", "--events"]).exitCode, 2, "--events needs --format json")
    }

    func testMarkdownFormat() throws {
        let result = try SnnmemProcess.run(["plan", "profiles/cifarnet.yaml", "--format", "markdown"])
        XCTAssertEqual(result.exitCode, 0)
        XCTAssertTrue(result.stdout.contains("| strategy"))
        XCTAssertTrue(result.stdout.contains("|---"))
    }
}

final class BadProfileCommandTests: XCTestCase {
    /// Every profile of the bad-profile corpus, through the real binary: exit 2, one located message.
    func testEveryBadProfileExitsTwo() throws {
        let folder = SnnmemProcess.repositoryRoot.appendingPathComponent("Tests/ProfilesTests/BadProfiles")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 20)
        for file in files {
            let path = "Tests/ProfilesTests/BadProfiles/" + file
            for command in [["plan", path], ["max-batch", path, "--memory", "1GiB"]] {
                let result = try SnnmemProcess.run(command)
                XCTAssertEqual(result.exitCode, 2, "\(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.hasPrefix(path + ":"), "\(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("error:") && result.stderr.contains("fix:"), result.stderr)
                XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr)
            }
        }
    }
}
