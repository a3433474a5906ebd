import CGemm
import Engine
import XCTest

/// snnmem's AVX-512 SGEMM against a Double reference, and the conv kernels against themselves on
/// OpenBLAS: every transpose combination, every partial tile (m, n, k off the 8 x 32 x 256 blocking,
/// n past one 1024-column block), padded leading dimensions, alpha and beta, beta = 0 over NaN.
final class GEMMBackendTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(GEMMBackend.avx512Supported, "no AVX-512 here (or SNNMEM_ISA rules it out): the engine runs its AVX2 GEMM or OpenBLAS")
    }

    /// A deterministic fill in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        var result = [Float](repeating: 0, count: count)
        result.withUnsafeMutableBufferPointer { RandomInput.fillUniform($0, low: -1, high: 1, using: &rng) }
        return result
    }

    func testMatchesDoubleReferenceOnEveryTransposeAndPartialTile() {
        let shapes: [(m: Int, n: Int, k: Int)] = [
            (1, 1, 1), (7, 5, 3), (8, 32, 256), (9, 33, 257), (64, 1024, 27), (130, 70, 600), (17, 1100, 300), (256, 64, 520),
        ]
        var worst = 0.0
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta) in [(Float(1.5), Float(0)), (Float(1), Float(0.5))] {
                        // Leading dimensions padded past the logical width, C rows padded with a canary.
                        let lda = (transposeA ? m : k) + 3, ldb = (transposeB ? k : n) + 5, ldc = n + 2
                        let a = Self.values((transposeA ? k : m) * lda, seed: 1), b = Self.values((transposeB ? n : k) * ldb, seed: 2)
                        let start = Self.values(m * ldc, seed: 3)
                        let canary = Float(12345)
                        var c = start.enumerated().map { $0.offset % ldc >= n ? canary : (beta == 0 ? Float.nan : $0.element) }
                        snn_sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, &c, ldc)
                        for i in 0..<m {
                            for j in 0..<ldc {
                                let got = Double(c[i * ldc + j])
                                if j >= n {
                                    XCTAssertEqual(got, Double(canary), "wrote past column \(n) in row \(i)")
                                    continue
                                }
                                var sum = 0.0, magnitude = 0.0
                                for p in 0..<k {
                                    let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                                    let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                                    sum += x * y
                                    magnitude += abs(x * y)
                                }
                                let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(start[i * ldc + j]))
                                // Float accumulation of k products errs by at most about k ulps of the magnitude sum;
                                // a wrong index or a missed K block errs by the size of a whole term.
                                let bound = Double(k + 2) * Double(Float.ulpOfOne) * (Double(alpha) * magnitude + Double(beta) * abs(Double(start[i * ldc + j])))
                                let error = abs(got - expected)
                                worst = max(worst, error / max(bound, 1e-30))
                                if !(error <= bound) {
                                    XCTFail("m\(m) n\(n) k\(k) tA \(transposeA) tB \(transposeB) beta \(beta): C[\(i)][\(j)] = \(got), expected \(expected)")
                                    return
                                }
                            }
                        }
                    }
                }
            }
        }
        print("AVX-512 SGEMM: worst error \(String(format: "%.3f", worst)) of the k-ulp bound over \(shapes.count * 8) products")
    }

    func testZeroDepthScalesByBetaAndZeroBetaOverwritesNaN() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        snn_sgemm(false, false, 2, 2, 0, 1, a, 1, b, 2, 0.5, &c, 2)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
        c = [.nan, .nan, .nan, .nan]
        snn_sgemm(false, false, 2, 2, 0, 1, a, 1, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [0, 0, 0, 0])
    }

    /// The conv kernels in Float, the same inputs through both backends: CIFARNet's conv3 shape
    /// (128 -> 256 at 16x16) and an odd one with partial tiles everywhere.
    func testConvKernelsAgreeWithOpenBLAS() {
        let shapes = [
            Conv2DShape(batch: 2, inChannels: 128, outChannels: 256, height: 16, width: 16, kernel: 3, stride: 1, padding: 1),
            // Partial tiles in every GEMM (44 rows, 120 = 10x12 columns, K 180), still fit for the AVX-512 path.
            Conv2DShape(batch: 3, inChannels: 20, outChannels: 44, height: 19, width: 23, kernel: 3, stride: 2, padding: 1),
        ]
        for s in shapes {
            let input = Self.values(s.inputCount, seed: 4), weight = Self.values(s.weightCount, seed: 5)
            let bias = Self.values(s.outChannels, seed: 6), dOutput = Self.values(s.outputCount, seed: 7)
            func run(_ backend: GEMMBackend) -> (out: [Float], dIn: [Float], dW: [Float], dB: [Float]) {
                GEMMBackend.withBackend(backend) {
                    var out = [Float](repeating: .nan, count: s.outputCount), dIn = [Float](repeating: .nan, count: s.inputCount)
                    var dW = [Float](repeating: 0, count: s.weightCount), dB = [Float](repeating: 0, count: s.outChannels)
                    var ws = [Float](repeating: .nan, count: s.workspaceCount)
                    conv2dForward(s, output: &out, input: input, weight: weight, bias: bias, workspace: &ws)
                    conv2dBackward(s, dInput: &dIn, dWeight: &dW, dBias: &dB, dOutput: dOutput, input: input, weight: weight, workspace: &ws)
                    return (out, dIn, dW, dB)
                }
            }
            let fast = run(.avx512), reference = run(.openblas)
            let name = "\(s.inChannels)->\(s.outChannels) @\(s.height)x\(s.width)"
            checkTensor("\(name) output", fast.out.map(Double.init), reference.out.map(Double.init), rtol: 1e-4, atol: 1e-4)
            checkTensor("\(name) dInput", fast.dIn.map(Double.init), reference.dIn.map(Double.init), rtol: 1e-4, atol: 1e-4)
            checkTensor("\(name) dWeight", fast.dW.map(Double.init), reference.dW.map(Double.init), rtol: 1e-4, atol: 1e-4)
            checkTensor("\(name) dBias", fast.dB.map(Double.init), reference.dB.map(Double.init), rtol: 1e-4, atol: 1e-4)
        }
    }

    func testPreferredBackendIsAVX512HereUnlessOverridden() {
        let override = ProcessInfo.processInfo.environment["SNNMEM_GEMM"].flatMap { GEMMBackend(rawValue: $0.lowercased()) }
        XCTAssertEqual(GEMMBackend.preferred, override.map { $0.isSupported ? $0 : .avx512 } ?? .avx512)
    }
}

extension GEMMBackendTests {
    /// Counts read on the GEMM's thread, handed to the test's thread after `ran` is fulfilled.
    final class Counts: @unchecked Sendable {
        var beforeFirstCall = 0
        var afterFirstCall = 0
    }

    /// A thread's packing buffers are mapped on its first GEMM and unmapped when it exits: worker
    /// threads come and go over a long run, and buffers kept past them would leak. (Idle dispatch
    /// workers retiring meanwhile can only lower the count, so the checks are one-sided.)
    func testPackingBuffersAreReleasedWhenTheirThreadExits() {
        Self.assertPackingBuffersReleased(in: self, live: { snn_sgemm_live_packing_buffers() }) { a, b, c in
            snn_sgemm(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2)
        }
    }

    /// Runs `gemm` (C = A B, 2x2) on a new thread and checks through `live` that the thread mapped
    /// its own packing buffers and that they were unmapped when it exited; shared by each GEMM's tests.
    static func assertPackingBuffersReleased(in test: XCTestCase, live: @escaping () -> Int,
                                             gemm: @escaping (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        let ran = test.expectation(description: "GEMM on a new thread"), exited = test.expectation(description: "thread exited")
        let counts = Counts()
        let thread = Thread {
            var c = [Float](repeating: 0, count: 4)
            counts.beforeFirstCall = live()
            gemm(a, b, &c)
            counts.afterFirstCall = live()
            XCTAssertEqual(c, [19, 22, 43, 50])
            ran.fulfill()
        }
        thread.start()
        test.wait(for: [ran], timeout: 10)
        XCTAssertEqual(counts.afterFirstCall, counts.beforeFirstCall + 1, "the new thread mapped its own buffers")
        // Thread exit runs the key's destructor after the block returns; poll briefly for it.
        let liveAfterCall = counts.afterFirstCall
        DispatchQueue.global().async {
            for _ in 0..<400 where live() >= liveAfterCall { usleep(5_000) }
            exited.fulfill()
        }
        test.wait(for: [exited], timeout: 10)
        XCTAssertLessThan(live(), liveAfterCall, "the exited thread's buffers were unmapped")
    }
}

extension GEMMBackendTests {
    /// Float.gemm outside the kernel lanes splits a large product between two threads, along C's
    /// longer side (rows here, columns there): every transpose gives OpenBLAS's result.
    func testSplitGEMMOutsideLanesMatchesOpenBLAS() {
        for (m, n, k) in [(300, 70, 200), (40, 1000, 100)] {
            XCTAssertGreaterThanOrEqual(m * n * k, 1 << 21, "large enough to be split")
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let lda = transposeA ? m : k, ldb = transposeB ? k : n
                    let a = Self.values(m * k, seed: 8), b = Self.values(k * n, seed: 9), start = Self.values(m * n, seed: 10)
                    func product(_ backend: GEMMBackend) -> [Float] {
                        var c = start
                        GEMMBackend.withBackend(backend) {
                            Float.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                                       b: b, ldb: ldb, beta: 2, c: &c, ldc: n)
                        }
                        return c
                    }
                    checkTensor("split \(m)x\(n)x\(k) tA \(transposeA) tB \(transposeB)", product(.avx512).map(Double.init),
                                product(.openblas).map(Double.init), rtol: 1e-4, atol: 1e-4)
                }
            }
        }
    }
}

extension GEMMBackendTests {
    /// Which products the AVX-512 GEMM takes: CIFARNet's conv GEMMs (forward, dWeight per lane,
    /// dInput) all do; a depthwise conv's one-row GEMM, a 2x2 feature map's 4-column GEMM, a K of 9
    /// and a product of a few hundred multiply-adds go to OpenBLAS.
    func testAVX512TakesTheProductsItsTilesFit() {
        for (cin, cout, plane) in [(64, 128, 1024), (128, 256, 256), (256, 256, 64)] {
            XCTAssertTrue(GEMMBackend.fitsTiles(m: cout, n: plane, k: cin * 9), "forward \(cin)->\(cout)")
            XCTAssertTrue(GEMMBackend.fitsTiles(m: cout, n: cin * 9 / 2, k: plane), "dWeight \(cin)->\(cout)")
            XCTAssertTrue(GEMMBackend.fitsTiles(m: cin * 9, n: plane, k: cout), "dInput \(cin)->\(cout)")
        }
        XCTAssertFalse(GEMMBackend.fitsTiles(m: 1, n: 256, k: 9), "depthwise: one output channel per group")
        XCTAssertFalse(GEMMBackend.fitsTiles(m: 384, n: 4, k: 1728), "2x2 map: 4 of a tile's 32 columns")
        XCTAssertFalse(GEMMBackend.fitsTiles(m: 384, n: 864, k: 4), "K of 4: each tile's C traffic dominates")
        XCTAssertFalse(GEMMBackend.fitsTiles(m: 8, n: 32, k: 16), "a single tile's work")
    }
}
