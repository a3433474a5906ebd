import Foundation
import XCTest

final class RunCommandTests: XCTestCase {
    func testRunJSONReportsPredictedAndMeasuredPeaks() throws {
        let json = try SnnmemProcess.json(["run", "profiles/digits.yaml", "--strategy", "bptt", "--steps", "2", "--batch", "8", "--format", "json"])
        XCTAssertEqual(json["strategy"] as? String, "bptt")
        let predicted = try XCTUnwrap(json["predictedPeakBytes"] as? Int)
        XCTAssertEqual(json["measuredPeakBytes"] as? Int, predicted)
        XCTAssertGreaterThan(json["jemallocPeakBytes"] as? Int ?? 0, 0)
        XCTAssertEqual((json["stepMs"] as? [Double])?.count, 2)
        XCTAssertEqual((json["loss"] as? [Double])?.count, 2)
        XCTAssertEqual(json["outOfMemory"] as? Bool, false)
        XCTAssertNil(json["firstDifference"] as? String)
        XCTAssertTrue(["avx512", "avx2", "openblas"].contains(json["gemm"] as? String ?? ""), "names the GEMM it ran on")
        XCTAssertTrue(["avx512", "avx2", "baseline"].contains(json["elementwise"] as? String ?? ""), "names the elementwise kernels' level")
    }

    /// SNNMEM_GEMM=openblas runs the same step on OpenBLAS: the same plan, measured exactly, and the
    /// same loss as the AVX-512 GEMM to float rounding.
    func testOpenBLASBackendOnRequestGivesTheSameStep() throws {
        let arguments = ["run", "profiles/digits.yaml", "--strategy", "bptt", "--steps", "2", "--batch", "8", "--format", "json"]
        let blas = try SnnmemProcess.run(arguments, environment: ["SNNMEM_GEMM": "openblas"])
        XCTAssertEqual(blas.exitCode, 0, blas.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(blas.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["gemm"] as? String, "openblas")
        XCTAssertEqual(json["measuredPeakBytes"] as? Int, json["predictedPeakBytes"] as? Int)
        let fast = try SnnmemProcess.json(arguments)
        let blasLoss = try XCTUnwrap(json["loss"] as? [Double]), fastLoss = try XCTUnwrap(fast["loss"] as? [Double])
        for (a, b) in zip(blasLoss, fastLoss) { XCTAssertEqual(a, b, accuracy: 1e-4 * abs(b)) }
    }

    func testMemoryLimitStopsWithExitThreeAndWritesTheTrace() throws {
        let trace = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-oom-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let result = try SnnmemProcess.run(["run", "profiles/digits.yaml", "--memory-limit", "256KiB", "--trace", trace])
        XCTAssertEqual(result.exitCode, 3, result.stderr)
        XCTAssertTrue(result.stderr.contains("out of memory"), result.stderr)
        XCTAssertTrue(result.stderr.contains("limit 256 KiB") && result.stderr.contains("conv1:im2col@t0"), "names the layer and the limit: \(result.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: trace), "the trace up to the refusal is kept")
    }

    func testTrainJSON() throws {
        let json = try SnnmemProcess.json(["train", "profiles/digits.yaml", "--data", "digits", "--epochs", "1", "--format", "json"])
        let epochs = try XCTUnwrap(json["epochs"] as? [[String: Any]])
        XCTAssertEqual(epochs.count, 1)
        for key in ["epoch", "trainAccuracy", "testAccuracy", "seconds"] { XCTAssertNotNil(epochs[0][key], key) }
        XCTAssertGreaterThan(epochs[0]["testAccuracy"] as? Double ?? 0, 0.3)
    }

    func testTrainRejectsAProfileThatDoesNotTakeDigits() throws {
        let result = try SnnmemProcess.run(["train", "profiles/cifarnet.yaml", "--epochs", "1"])
        XCTAssertEqual(result.exitCode, 2)
        XCTAssertTrue(result.stderr.contains("1x8x8"), result.stderr)
    }
}
