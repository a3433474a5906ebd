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

    /// `run` says whether its convolutions took the spike products: CIFARNet's convs after the first
    /// read spikes and take them; SNNMEM_SPIKE_GEMM=off runs the same step (same loss: the spikes, and so
    /// the logits, come out the same) without them.
    func testRunNamesTheSpikeProducts() throws {
        let arguments = ["run", "profiles/cifarnet.yaml", "--strategy", "bptt", "--steps", "1", "--batch", "4", "--timesteps", "2",
                         "--format", "json"]
        let on = try SnnmemProcess.json(arguments)
        let spikes = try XCTUnwrap(on["spikeProducts"] as? [String: Any])
        XCTAssertEqual(spikes["enabled"] as? Bool, true)
        XCTAssertEqual(spikes["forwardCalls"] as? Int, 8, "4 convs x 2 timesteps counted their input")
        XCTAssertGreaterThanOrEqual(spikes["forwardSparseCalls"] as? Int ?? 0, 4, "conv2 and conv3 at least, at both timesteps")
        // conv1-conv4's [Cin 9, Cout] panels: 960,192 floats, tracked tensors of the measured peak, on or off.
        XCTAssertEqual(spikes["panelBytes"] as? Int, 960_192 * 4)
        XCTAssertEqual(on["measuredPeakBytes"] as? Int, on["predictedPeakBytes"] as? Int)
        let offRun = try SnnmemProcess.run(arguments, environment: ["SNNMEM_SPIKE_GEMM": "off"])
        XCTAssertEqual(offRun.exitCode, 0, offRun.stderr)
        let off = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(offRun.stdout.utf8)) as? [String: Any])
        let offSpikes = try XCTUnwrap(off["spikeProducts"] as? [String: Any])
        XCTAssertEqual(offSpikes["enabled"] as? Bool, false)
        XCTAssertEqual(offSpikes["forwardSparseCalls"] as? Int, 0)
        XCTAssertEqual(offSpikes["panelBytes"] as? Int, 960_192 * 4)
        XCTAssertEqual(off["measuredPeakBytes"] as? Int, off["predictedPeakBytes"] as? Int)
        XCTAssertEqual(off["measuredPeakBytes"] as? Int, on["measuredPeakBytes"] as? Int)
        let lossOn = try XCTUnwrap(on["loss"] as? [Double]), lossOff = try XCTUnwrap(off["loss"] as? [Double])
        XCTAssertEqual(lossOn[0], lossOff[0], accuracy: 1e-5 * abs(lossOff[0]))
        let table = try SnnmemProcess.run(Array(arguments.dropLast(2)))
        XCTAssertTrue(table.stdout.contains("spike products:") && table.stdout.contains("skipped the zeros"), table.stdout)
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
