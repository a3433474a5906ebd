// The engine's own GEMM against OpenBLAS on the very GEMMs CIFARNet's and VGG-11's convolutions
// issue (T=4, batch 16): one thread each, thread CPU time (what the product itself costs, whatever
// else the machine runs), best of N, the two interleaved call by call.
import CGemm
import COpenBLAS
import Engine
import Foundation

/// One GEMM as the conv kernels call it: C[m, n] = op(A)[m, k] x op(B)[k, n].
struct GEMMShape {
    var name: String
    var transposeA: Bool, transposeB: Bool
    var m: Int, n: Int, k: Int

    /// The three GEMMs of a 3x3, padding-1 conv on `group` samples laid side by side (Hout x Wout
    /// below 128 groups up to 256 / (Hout x Wout) of them): forward W[Cout, K] x col[K, N];
    /// dWeight dOut[Cout, N] x col^T, one lane's part of the columns (4 parts, multiples of 32);
    /// dColumns W^T x dOut. K = Cin * 9, N = group * Hout * Wout.
    static func conv(_ name: String, cin: Int, cout: Int, size: Int, group: Int = 1, inputGradient: Bool = true) -> [GEMMShape] {
        let k = cin * 9, n = group * size * size, part = (k / 4 + 31) / 32 * 32
        var shapes = [GEMMShape(name: "\(name) fwd", transposeA: false, transposeB: false, m: cout, n: n, k: k),
                      GEMMShape(name: "\(name) dW", transposeA: false, transposeB: true, m: cout, n: min(part, k), k: n)]
        if inputGradient { shapes.append(GEMMShape(name: "\(name) dX", transposeA: true, transposeB: false, m: k, n: n, k: cout)) }
        return shapes
    }
}

func threadSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// GFLOP/s of snnmem's `own` GEMM and OpenBLAS (one thread) on each shape, best of `iterations`.
func compareGEMMShapes(own: GEMMBackend, iterations: Int) {
    let shapes = GEMMShape.conv("cifarnet conv1", cin: 3, cout: 64, size: 32, inputGradient: false)
        + GEMMShape.conv("cifarnet conv2", cin: 64, cout: 128, size: 32)
        + GEMMShape.conv("cifarnet conv3", cin: 128, cout: 256, size: 16)
        + GEMMShape.conv("cifarnet conv4 (4 grouped)", cin: 256, cout: 256, size: 8, group: 4)
        + GEMMShape.conv("vgg11 conv2", cin: 64, cout: 128, size: 16)
        + GEMMShape.conv("vgg11 conv4 (4 grouped)", cin: 256, cout: 256, size: 8, group: 4)
        + GEMMShape.conv("vgg11 conv6 (16 grouped)", cin: 512, cout: 512, size: 4, group: 16)
        + GEMMShape.conv("vgg11 conv8 (16 grouped)", cin: 512, cout: 512, size: 2, group: 16)
        + [GEMMShape(name: "512^3", transposeA: false, transposeB: false, m: 512, n: 512, k: 512)]
    let previousThreads = openblas_get_num_threads()
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(previousThreads) }
    let tile = own.tile
    print("\nthe engine's GEMMs alone, one thread, thread CPU time, best of \(iterations) (interleaved); GFLOP/s; 'engine' is what")
    print("  the engine calls for the shape (\(own.rawValue) where its \(tile.rows)x\(tile.columns) tiles fit, else OpenBLAS)")
    print("shape                              |     m      n      k | \(own.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) openblas | engine")
    for s in shapes {
        let a = buffer(s.m * s.k, seed: 31), b = buffer(s.k * s.n, seed: 32), c = buffer(s.m * s.n, seed: 33)
        defer { for p in [a, b, c] { p.deallocate() } }
        let lda = s.transposeA ? s.m : s.k, ldb = s.transposeB ? s.k : s.n
        var best = [Double.infinity, Double.infinity]
        for _ in 0...iterations {  // the first round warms up (packing buffers, caches) and counts too: best-of
            for which in 0..<2 {
                let start = threadSeconds()
                if which == 0 {
                    if own == .avx512 {
                        snn_sgemm(s.transposeA, s.transposeB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n)
                    } else {
                        snn_sgemm_avx2(s.transposeA, s.transposeB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n)
                    }
                } else {
                    cblas_sgemm(CblasRowMajor, s.transposeA ? CblasTrans : CblasNoTrans, s.transposeB ? CblasTrans : CblasNoTrans,
                                Int32(s.m), Int32(s.n), Int32(s.k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(s.n))
                }
                best[which] = min(best[which], threadSeconds() - start)
            }
        }
        let flops = 2 * Double(s.m * s.n * s.k)
        let fits = GEMMBackend.fitsTiles(m: s.m, n: s.n, k: s.k, tileRows: tile.rows, tileColumns: tile.columns)
        print(s.name.padding(toLength: 34, withPad: " ", startingAt: 0), "|", String(format: "%5d %6d %6d", s.m, s.n, s.k), "|",
              gflops(flops, best[0]), " ", gflops(flops, best[1]), "|", fits ? own.rawValue : "openblas")
    }
}
