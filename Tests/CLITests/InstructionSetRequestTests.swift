import Engine
import Foundation
import XCTest

/// SNNMEM_ISA lowers the instruction set `snnmem run` uses, as on a processor without the levels
/// above: the step names the GEMM and elementwise level it ran, measures exactly the plan, and an
/// unusable value stops an engine command with exit 2 (planning commands ignore it).
final class InstructionSetRequestTests: XCTestCase {
    static let arguments = ["run", "profiles/digits.yaml", "--strategy", "bptt", "--steps", "1", "--batch", "8", "--format", "json"]

    func runForced(_ isa: String) throws -> [String: Any] {
        let result = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_ISA": isa])
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["measuredPeakBytes"] as? Int, json["predictedPeakBytes"] as? Int, "\(isa): predicted == measured")
        return json
    }

    func testForcedLevelsAreNamedAndMeasuredExactly() throws {
        #if arch(x86_64)
        let baseline = try runForced("baseline")
        XCTAssertEqual(baseline["gemm"] as? String, "openblas")
        XCTAssertEqual(baseline["elementwise"] as? String, "baseline")
        #endif
        try XCTSkipUnless(InstructionSet.processor >= .avx2, "this processor has no AVX2")
        let avx2 = try runForced("avx2")
        XCTAssertEqual(avx2["gemm"] as? String, ProcessInfo.processInfo.environment["SNNMEM_GEMM"] == "openblas" ? "openblas" : "avx2")
        XCTAssertEqual(avx2["elementwise"] as? String, "avx2")
    }

    /// SNNMEM_SPIKE_GEMM takes on or off; anything else stops an engine command, naming the variable.
    func testUnknownSpikeSwitchStopsEngineCommands() throws {
        let typo = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_SPIKE_GEMM": "of"])
        XCTAssertEqual(typo.exitCode, 2)
        XCTAssertTrue(typo.stderr.contains("SNNMEM_SPIKE_GEMM=of") && typo.stderr.contains("set it to off"), typo.stderr)
        let off = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_SPIKE_GEMM": "OFF"])
        XCTAssertEqual(off.exitCode, 0, off.stderr)
        let plan = try SnnmemProcess.run(["plan", "profiles/digits.yaml"], environment: ["SNNMEM_SPIKE_GEMM": "of"])
        XCTAssertEqual(plan.exitCode, 0, "planning runs no kernels: \(plan.stderr)")
    }

    func testUnknownGEMMStopsEngineCommands() throws {
        let typo = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_GEMM": "openblass"])
        XCTAssertEqual(typo.exitCode, 2)
        XCTAssertTrue(typo.stderr.contains("SNNMEM_GEMM=openblass") && typo.stderr.contains("avx512, avx2, openblas"), typo.stderr)
        let plan = try SnnmemProcess.run(["plan", "profiles/digits.yaml"], environment: ["SNNMEM_GEMM": "openblass"])
        XCTAssertEqual(plan.exitCode, 0, "planning runs no kernels: \(plan.stderr)")
        if GEMMBackend.avx2Supported {
            // A level below the best is honoured, not replaced by the best.
            let avx2 = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_GEMM": "AVX2"])
            XCTAssertEqual(avx2.exitCode, 0, avx2.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(avx2.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(json?["gemm"] as? String, "avx2")
        } else {
            let unsupported = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_GEMM": "avx2"])
            XCTAssertEqual(unsupported.exitCode, 2)
            XCTAssertTrue(unsupported.stderr.contains("does not allow"), unsupported.stderr)
        }
    }

    func testUnknownOrUnsupportedLevelStopsEngineCommands() throws {
        let unknown = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_ISA": "avx3"])
        XCTAssertEqual(unknown.exitCode, 2)
        XCTAssertTrue(unknown.stderr.contains("SNNMEM_ISA=avx3") && unknown.stderr.contains("avx512, avx2, baseline"), unknown.stderr)
        let plan = try SnnmemProcess.run(["plan", "profiles/digits.yaml"], environment: ["SNNMEM_ISA": "avx3"])
        XCTAssertEqual(plan.exitCode, 0, "planning runs no kernels: \(plan.stderr)")
        if InstructionSet.processor < .avx512 {
            let unsupported = try SnnmemProcess.run(Self.arguments, environment: ["SNNMEM_ISA": "avx512"])
            XCTAssertEqual(unsupported.exitCode, 2)
            XCTAssertTrue(unsupported.stderr.contains("lacks"), unsupported.stderr)
        }
    }
}
