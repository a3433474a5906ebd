import CGemm
import COpenBLAS
import Foundation

/// Which single-precision GEMM the Float kernels call: snnmem's AVX-512 SGEMM (`snn_sgemm`, in
/// the CGemm target) where the processor has AVX-512, its AVX2 + FMA SGEMM (`snn_sgemm_avx2`) where
/// it has AVX2 but no AVX-512, each on the products its tiles fit, and OpenBLAS's `cblas_sgemm`
/// elsewhere. Double (the finite-difference checks) always runs OpenBLAS's dgemm.
///
/// Why: these machines pin OpenBLAS to its Haswell (AVX2) kernels through OPENBLAS_CORETYPE,
/// which halves the arithmetic rate of a processor with full-width 512-bit FMAs; on an AVX2
/// processor the AVX2 SGEMM runs level with OpenBLAS's Haswell kernels on the engine's GEMM shapes,
/// CIFARNet's step 1-9% faster round by round, VGG-11's level (README, "Speed"). The environment variable
/// `SNNMEM_GEMM=openblas` selects OpenBLAS anyway, and `SNNMEM_ISA=avx2|baseline` makes the process
/// choose as a processor without the levels above would (`InstructionSet`), for side-by-side
/// measurements.
public enum GEMMBackend: String, CaseIterable, Sendable {
    case avx512
    case avx2
    case openblas

    /// Whether this processor and OS can run `snn_sgemm`, and SNNMEM_ISA allows AVX-512.
    public static let avx512Supported = snn_sgemm_supported() && InstructionSet.ceiling >= .avx512

    /// Whether this processor and OS can run `snn_sgemm_avx2`, and SNNMEM_ISA allows AVX2.
    public static let avx2Supported = snn_sgemm_avx2_supported() && InstructionSet.ceiling >= .avx2

    /// The backend chosen at start: the one `SNNMEM_GEMM` names (openblas, avx2 or avx512) where this
    /// machine runs it, else snnmem's own GEMM for the best level allowed here, else OpenBLAS.
    public static let preferred: GEMMBackend = {
        if let requested = environmentRequest, requested.isSupported { return requested }
        if avx512Supported { return .avx512 }
        if avx2Supported { return .avx2 }
        return .openblas
    }()

    /// The backend the Float GEMM calls now. Benchmarks and tests switch it with `withBackend`.
    nonisolated(unsafe) public private(set) static var current: GEMMBackend = {
        openblas_set_num_threads(1)  // see `sgemm`
        return preferred
    }()

    /// The backend `SNNMEM_GEMM` names, nil when it is unset, empty or names none.
    static var environmentRequest: GEMMBackend? {
        ProcessInfo.processInfo.environment["SNNMEM_GEMM"].flatMap { GEMMBackend(rawValue: $0.lowercased()) }
    }

    /// Why `SNNMEM_GEMM` cannot be honoured (a name snnmem has no GEMM for, or one this machine or
    /// SNNMEM_ISA does not run), nil when it can: engine commands refuse it rather than time another GEMM.
    public static var environmentProblem: String? {
        guard let raw = ProcessInfo.processInfo.environment["SNNMEM_GEMM"], !raw.isEmpty else { return nil }
        let names = allCases.map(\.rawValue).joined(separator: ", ")
        guard let requested = environmentRequest else {
            return "environment variable SNNMEM_GEMM=\(raw) is not a GEMM snnmem knows: set it to one of \(names), or unset it (the best this processor runs)"
        }
        guard requested.isSupported else {
            return "environment variable SNNMEM_GEMM=\(raw) asks for a GEMM this processor (or SNNMEM_ISA) does not allow: "
                + "set it to openblas or a lower level, or unset it"
        }
        return nil
    }

    /// Whether `backend` can run on this machine.
    public var isSupported: Bool {
        switch self {
        case .avx512: Self.avx512Supported
        case .avx2: Self.avx2Supported
        case .openblas: true
        }
    }

    /// The micro-kernel's tile (rows, columns of C) of snnmem's own GEMMs; OpenBLAS's is not split
    /// by it (the AVX-512 one's, for the split of large products).
    public var tile: (rows: Int, columns: Int) {
        switch self {
        case .avx512, .openblas: (8, 32)
        case .avx2: (Int(snn_sgemm_avx2_tile_rows()), Int(snn_sgemm_avx2_tile_columns()))
        }
    }

    /// Runs `body` with `backend` selected, restoring the previous one after. Not for concurrent use:
    /// the selection is process-wide.
    public static func withBackend<R>(_ backend: GEMMBackend, _ body: () throws -> R) rethrows -> R {
        precondition(backend.isSupported, "the \(backend.rawValue) GEMM does not run on this processor")
        let previous = current
        current = backend
        defer { current = previous }
        return try body()
    }

    /// Threads one Float GEMM call may use: 2 (the kernel lanes) when the caller runs alone, 1
    /// inside `withOneThreadPerCall`, where each lane already runs its own GEMMs.
    nonisolated(unsafe) private static var threadsPerCall = KernelLanes.count

    /// Runs `body` with each GEMM call limited to one thread, OpenBLAS's and snnmem's own (so that
    /// lanes calling GEMMs at the same time do not contend for the cores), restoring both after.
    /// OpenBLAS already runs one thread unless a benchmark raised its count. Reading `current` first
    /// sets that count to one; saved before, the restore would undo it (measured: OpenBLAS's pool
    /// then spun in sched_yield beside the lanes all run long).
    @inline(__always)
    public static func withOneThreadPerCall<R>(_ body: () -> R) -> R {
        _ = current
        let previousBLAS = openblas_get_num_threads(), previousOwn = threadsPerCall
        if previousBLAS > 1 { openblas_set_num_threads(1) }
        threadsPerCall = 1
        defer {
            if previousBLAS > 1 { openblas_set_num_threads(previousBLAS) }
            threadsPerCall = previousOwn
        }
        return body()
    }

    /// Whether a product suits a GEMM's register tiles (the AVX-512 GEMM's 8 x 32 by default): at
    /// least a few tiles' work, at least 3/4 of the tiles' area used (a 4x4 feature map fills half a
    /// 32-wide tile row, a depthwise conv's one-row GEMMs an eighth of the tile), and a K long enough
    /// (16) to amortize each tile's load and store of C. Measured on T-RevSNN's narrow and depthwise
    /// convs, which run faster on OpenBLAS; CIFARNet's and the VGGs' convs all fit.
    @inline(__always)
    public static func fitsTiles(m: Int, n: Int, k: Int, tileRows: Int = 8, tileColumns: Int = 32) -> Bool {
        guard k >= 16, m * n * k >= 1 << 15 else { return false }
        let tiledArea = (m + tileRows - 1) / tileRows * tileRows * ((n + tileColumns - 1) / tileColumns * tileColumns)
        return 4 * m * n >= 3 * tiledArea
    }

    /// The AVX2 GEMM's tile, read once.
    static let avx2Tile = GEMMBackend.avx2.tile

    /// Below this many multiply-adds a split is not worth a fork-join (microseconds).
    static let splitMultiplyAdds = 1 << 21

    /// Row-major C = alpha * op(A) * op(B) + beta * C through the current backend.
    ///
    /// OpenBLAS runs single-threaded under either backend, and products large enough to share out
    /// are split over the kernel lanes here, on both: OpenBLAS's own pool leaves its threads spinning
    /// in sched_yield for a while after each threaded call, on the cores the lanes need next (and,
    /// on a shared machine, beside another process's work). Measured on the 2-core EPYC, CIFARNet
    /// step on OpenBLAS, 3 interleaved rounds under others' load (2.9-3.0): 371-412 ms with
    /// OpenBLAS's 2 threads, 341-375 ms with 1; with one core busy, 725-749 ms against 656-676 ms.
    @inline(__always)
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let backend = current
        // snnmem's own kernel where its tiles fit the product (see `fitsTiles`), else OpenBLAS.
        let own: GEMMBackend
        switch backend {
        case .avx512: own = fitsTiles(m: m, n: n, k: k) ? .avx512 : .openblas
        case .avx2: own = fitsTiles(m: m, n: n, k: k, tileRows: avx2Tile.rows, tileColumns: avx2Tile.columns) ? .avx2 : .openblas
        case .openblas: own = .openblas
        }
        // One product on one thread of the chosen kernel.
        func product(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            switch own {
            case .avx512:
                snn_sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            case .avx2:
                snn_sgemm_avx2(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            case .openblas:
                cblas_sgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
                            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
            }
        }
        guard threadsPerCall > 1, m * n * k >= splitMultiplyAdds, max(m, n) >= 64 else {
            product(m, n, a, b, c)
            return
        }
        // Alone on the machine (a batch of one, a linear layer): split C between the lanes along its
        // longer side, at a multiple of the kernel's micro-tile, in two parts per lane claimed in turn
        // (a lane whose core another process holds leaves its second part to the other).
        let parts = threadsPerCall * 2
        let (tileRows, tileColumns) = own == .avx2 ? avx2Tile : GEMMBackend.avx512.tile
        if n >= m {
            let step = (n / parts + tileColumns - 1) / tileColumns * tileColumns
            KernelLanes.runItems((n + step - 1) / step, threads: threadsPerCall) { part in
                let first = part * step, count = min(step, n - first)
                product(m, count, a, transposeB ? b + first * ldb : b + first, c + first)
            }
        } else {
            let step = (m / parts + tileRows - 1) / tileRows * tileRows
            KernelLanes.runItems((m + step - 1) / step, threads: threadsPerCall) { part in
                let first = part * step, count = min(step, m - first)
                product(count, n, transposeA ? a + first : a + first * lda, b, c + first * ldc)
            }
        }
    }
}
