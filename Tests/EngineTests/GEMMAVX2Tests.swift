import CGemm
import CKernels
import Engine
import Foundation
import XCTest

/// snnmem's AVX2 + FMA SGEMM against a Double reference (every transpose, every partial 6 x 16 tile,
/// K blocks split unevenly, padded leading dimensions, alpha and beta, beta = 0 over NaN, nothing
/// written past C's columns), and the selection: SNNMEM_ISA's ceiling, the conv kernels on it against
/// OpenBLAS. Runs where the processor has AVX2 (an AVX-512 processor has it too).
final class GEMMAVX2Tests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(snn_sgemm_avx2_supported(), "this processor has no AVX2 + FMA: the engine runs OpenBLAS's sgemm")
    }

    typealias SGEMM = (Bool, Bool, Int, Int, Int, Float, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, Float,
                       UnsafeMutablePointer<Float>, Int) -> Void

    /// Each C element within (k + 2) ulps of the magnitude sum of its products, canaries past column n
    /// untouched; returns the worst error as a fraction of that bound, or nil after the first failure.
    static func checkAgainstDoubleReference(_ gemm: SGEMM, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
                                            alpha: Float, beta: Float, padding: Int) -> (worst: Double, failure: String?) {
        let lda = (transposeA ? m : k) + padding, ldb = (transposeB ? k : n) + 2 * padding, ldc = n + padding
        let a = GEMMBackendTests.values((transposeA ? k : m) * lda, seed: 11)
        let b = GEMMBackendTests.values((transposeB ? n : k) * ldb, seed: 12)
        let start = GEMMBackendTests.values(m * ldc, seed: 13)
        let canary = Float(12345)
        var c = start.enumerated().map { $0.offset % ldc >= n ? canary : (beta == 0 ? Float.nan : $0.element) }
        gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, &c, ldc)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<ldc {
                let got = Double(c[i * ldc + j])
                if j >= n {
                    if got != Double(canary) { return (worst, "wrote past column \(n) in row \(i)") }
                    continue
                }
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                    sum += x * y
                    magnitude += abs(x * y)
                }
                let old = Double(start[i * ldc + j])
                let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * old)
                let bound = Double(k + 2) * Double(Float.ulpOfOne) * (abs(Double(alpha)) * magnitude + abs(Double(beta) * old))
                let error = abs(got - expected)
                worst = max(worst, error / max(bound, 1e-30))
                if !(error <= bound) { return (worst, "C[\(i)][\(j)] = \(got), expected \(expected)") }
            }
        }
        return (worst, nil)
    }

    func testMatchesDoubleReferenceOnEveryTransposeAndPartialTile() {
        let tile = (rows: Int(snn_sgemm_avx2_tile_rows()), columns: Int(snn_sgemm_avx2_tile_columns()))
        XCTAssertEqual(tile.rows * tile.columns % 8, 0, "whole ymm rows")
        // Whole tiles, one short of them, one past; K past one 256 block (257, 600 in unequal blocks);
        // M past one 144-row block; N past one 1024-column block; 1 x 1 x 1.
        let shapes: [(m: Int, n: Int, k: Int)] = [
            (1, 1, 1), (tile.rows, tile.columns, 256), (tile.rows - 1, tile.columns - 1, 7), (tile.rows + 1, tile.columns + 1, 257),
            (5, 9, 8), (64, 1024, 27), (130, 70, 600), (150, 33, 40), (17, 1100, 300), (256, 64, 520), (12, 16, 16),
            // Edge tiles of every height 1...5 (the 2- and 4-row kernels take the short ones).
            (8, 20, 33), (9, 40, 64), (10, 17, 5), (11, 31, 12),
        ]
        var worst = 0.0, products = 0
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta, padding) in [(Float(1.5), Float(0), 3), (Float(1), Float(0.5), 0), (Float(-0.5), Float(2), 5)] {
                        let result = Self.checkAgainstDoubleReference(snn_sgemm_avx2, m: m, n: n, k: k, transposeA: transposeA,
                                                                      transposeB: transposeB, alpha: alpha, beta: beta, padding: padding)
                        worst = max(worst, result.worst)
                        products += 1
                        if let failure = result.failure {
                            XCTFail("m\(m) n\(n) k\(k) tA \(transposeA) tB \(transposeB) alpha \(alpha) beta \(beta) pad \(padding): \(failure)")
                            return
                        }
                    }
                }
            }
        }
        print("AVX2 SGEMM (\(tile.rows)x\(tile.columns) tile): worst error \(String(format: "%.3f", worst)) of the k-ulp bound over \(products) products")
    }

    func testZeroDepthOrAlphaScalesByBetaAndZeroBetaOverwritesNaN() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [1, 2], b: [Float] = [3, 4, 5, 6]
        snn_sgemm_avx2(false, false, 2, 2, 0, 1, a, 1, b, 2, 0.5, &c, 2)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
        snn_sgemm_avx2(false, false, 2, 2, 1, 0, a, 1, b, 2, 2, &c, 2)
        XCTAssertEqual(c, [1, 2, 3, 4], "alpha 0: beta * C only")
        c = [.nan, .nan, .nan, .nan]
        snn_sgemm_avx2(false, false, 2, 2, 0, 1, a, 1, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [0, 0, 0, 0])
        c = [.nan, .nan, .nan, .nan]
        snn_sgemm_avx2(false, false, 2, 2, 1, 1, a, 1, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [3, 4, 6, 8], "k 1: an outer product")
    }

    /// The conv kernels through `GEMMBackend.avx2` against OpenBLAS: CIFARNet's conv2 shape and one
    /// with partial 6 x 16 tiles in all three GEMMs.
    func testConvKernelsOnAVX2AgreeWithOpenBLAS() throws {
        try XCTSkipUnless(GEMMBackend.avx2.isSupported, "SNNMEM_ISA=\(InstructionSet.ceiling.name) rules AVX2 out")
        let shapes = [
            Conv2DShape(batch: 2, inChannels: 64, outChannels: 128, height: 32, width: 32, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 3, inChannels: 20, outChannels: 44, height: 19, width: 23, kernel: 3, stride: 2, padding: 1),
        ]
        for s in shapes {
            XCTAssertTrue(GEMMBackend.fitsTiles(m: s.outChannels, n: s.outHeight * s.outWidth, k: s.inChannels * 9,
                                                tileRows: GEMMBackend.avx2.tile.rows, tileColumns: GEMMBackend.avx2.tile.columns),
                          "the forward GEMM runs on the AVX2 kernel, not OpenBLAS")
            let input = GEMMBackendTests.values(s.inputCount, seed: 4), weight = GEMMBackendTests.values(s.weightCount, seed: 5)
            let bias = GEMMBackendTests.values(s.outChannels, seed: 6), dOutput = GEMMBackendTests.values(s.outputCount, seed: 7)
            func run(_ backend: GEMMBackend) -> [[Float]] {
                GEMMBackend.withBackend(backend) {
                    var out = [Float](repeating: .nan, count: s.outputCount), dIn = [Float](repeating: .nan, count: s.inputCount)
                    var dW = [Float](repeating: 0, count: s.weightCount), dB = [Float](repeating: 0, count: s.outChannels)
                    var ws = [Float](repeating: .nan, count: s.workspaceCount)
                    conv2dForward(s, output: &out, input: input, weight: weight, bias: bias, workspace: &ws)
                    conv2dBackward(s, dInput: &dIn, dWeight: &dW, dBias: &dB, dOutput: dOutput, input: input, weight: weight, workspace: &ws)
                    return [out, dIn, dW, dB]
                }
            }
            let fast = run(.avx2), reference = run(.openblas)
            for (name, index) in [("output", 0), ("dInput", 1), ("dWeight", 2), ("dBias", 3)] {
                checkTensor("\(s.inChannels)->\(s.outChannels) @\(s.height)x\(s.width) \(name)", fast[index].map(Double.init),
                            reference[index].map(Double.init), rtol: 1e-4, atol: 1e-4)
            }
        }
    }

    /// Float.gemm outside the lanes splits a large product between two threads at multiples of the
    /// AVX2 tile (6 rows, 16 columns): every transpose gives OpenBLAS's result.
    func testSplitGEMMOnAVX2MatchesOpenBLAS() throws {
        try XCTSkipUnless(GEMMBackend.avx2.isSupported, "SNNMEM_ISA=\(InstructionSet.ceiling.name) rules AVX2 out")
        for (m, n, k) in [(301, 70, 200), (40, 1000, 100)] {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let lda = transposeA ? m : k, ldb = transposeB ? k : n
                    let a = GEMMBackendTests.values(m * k, seed: 8), b = GEMMBackendTests.values(k * n, seed: 9)
                    let start = GEMMBackendTests.values(m * n, seed: 10)
                    func product(_ backend: GEMMBackend) -> [Double] {
                        var c = start
                        GEMMBackend.withBackend(backend) {
                            Float.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                                       b: b, ldb: ldb, beta: 2, c: &c, ldc: n)
                        }
                        return c.map(Double.init)
                    }
                    checkTensor("split \(m)x\(n)x\(k) tA \(transposeA) tB \(transposeB)", product(.avx2), product(.openblas),
                                rtol: 1e-4, atol: 1e-4)
                }
            }
        }
    }

    /// A level SNNMEM_ISA names caps both kinds of kernel; without it the processor's best is used.
    func testInstructionSetCeilingGovernsTheGEMMChoice() throws {
        let requested = try InstructionSet.requested()
        XCTAssertEqual(InstructionSet.ceiling, min(requested ?? InstructionSet.processor, InstructionSet.processor))
        XCTAssertEqual(ElementwiseKernels.level, InstructionSet.ceiling.name)
        let override = ProcessInfo.processInfo.environment["SNNMEM_GEMM"]
            .flatMap { GEMMBackend(rawValue: $0.lowercased()) }.flatMap { $0.isSupported ? $0 : nil }
        let expected: GEMMBackend = override != nil ? override!
            : InstructionSet.ceiling == .avx512 && snn_sgemm_supported() ? .avx512
            : InstructionSet.ceiling >= .avx2 ? .avx2 : .openblas
        XCTAssertEqual(GEMMBackend.preferred, expected)
        XCTAssertEqual(GEMMBackend.avx512.isSupported, InstructionSet.ceiling == .avx512 && snn_sgemm_supported())
    }
}

extension GEMMAVX2Tests {
    /// A thread's AVX2 packing buffers are mapped on its first call and unmapped when it exits.
    func testPackingBuffersAreReleasedWhenTheirThreadExits() {
        GEMMBackendTests.assertPackingBuffersReleased(in: self, live: { snn_sgemm_avx2_live_packing_buffers() }) { a, b, c in
            snn_sgemm_avx2(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2)
        }
    }
}
