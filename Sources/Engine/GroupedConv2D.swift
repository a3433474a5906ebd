// Convolutions whose output plane is too small for per-sample GEMMs (Hout * Wout below 128: vgg11's
// 4x4 and 2x2 maps give N = 16 and 4, an eighth of the AVX-512 GEMM's 32-wide tile, and OpenBLAS
// re-packs the whole weight for every such sample). Instead, `sampleGroup` samples' im2col columns are
// laid side by side, [Cin*k*k, group * Hout*Wout], and one GEMM per group (split over the kernel lanes
// by the GEMM itself) computes them all; the outputs, whose layout is [B, Cout, Hout*Wout], are staged
// in the workspace as [Cout, group * Hout*Wout] and copied out. Backward stages the output gradients
// the same way, so that the weight gradient is one GEMM with K = group * Hout*Wout and the column
// gradient one GEMM with N = group * Hout*Wout.
//
// Workspace (`Conv2DShape.workspaceCount`): the columns, then the staged outputs.

/// Where a group's pieces lie in the workspace.
private struct ConvGroupLayout<T> {
    let columns: UnsafeMutablePointer<T>  // [Cin*k*k, width]
    let staged: UnsafeMutablePointer<T>   // [Cout, width]
    /// Columns of one row: samples of this group x Hout*Wout. The row stride is the full group's.
    let rowStride: Int

    init(_ s: Conv2DShape, workspace: UnsafeMutablePointer<T>) {
        rowStride = s.sampleGroup * s.outHeight * s.outWidth
        columns = workspace
        staged = workspace + s.inChannels * s.kernel * s.kernel * rowStride
    }
}

/// Forward of a grouped conv: see `conv2dForward`, which calls it when `shape.isGrouped`.
@_specialize(where T == Float)
func groupedConv2dForward<T: EngineScalar>(
    _ s: Conv2DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, workspace: UnsafeMutablePointer<T>
) {
    let inSample = s.inChannels * s.height * s.width, plane = s.outHeight * s.outWidth, outSample = s.outChannels * plane
    let coutG = s.outChannels / s.groups, rowsG = s.groupColumnRows
    let layout = ConvGroupLayout(s, workspace: workspace)
    let lanes = KernelLanes.count
    var first = 0
    while first < s.batch {
        let count = min(s.sampleGroup, s.batch - first)
        KernelLanes.runItems(count, threads: lanes) { j in
            im2col(s, columns: layout.columns + j * plane, input: input + (first + j) * inSample, rowStride: layout.rowStride)
        }
        // The columns of samples past `count` (a last, smaller group) are not read: N is count * plane.
        for g in 0..<s.groups {
            T.gemm(transposeA: false, transposeB: false, m: coutG, n: count * plane, k: rowsG,
                   alpha: 1, a: weight + g * coutG * rowsG, lda: rowsG,
                   b: layout.columns + g * rowsG * layout.rowStride, ldb: layout.rowStride,
                   beta: 0, c: layout.staged + g * coutG * layout.rowStride, ldc: layout.rowStride)
        }
        KernelLanes.runItems(count, threads: lanes) { j in
            let out = output + (first + j) * outSample
            for co in 0..<s.outChannels {
                let row = out + co * plane
                row.update(from: layout.staged + co * layout.rowStride + j * plane, count: plane)
                if let bias {
                    let value = bias[co]
                    for i in 0..<plane { row[i] += value }
                }
            }
        }
        first += count
    }
}

/// Backward of a grouped conv: see `conv2dBackward`, which calls it when `shape.isGrouped`.
@_specialize(where T == Float)
func groupedConv2dBackward<T: EngineScalar>(
    _ s: Conv2DShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
    dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, workspace: UnsafeMutablePointer<T>, spikes: SpikeProducts.WeightGradient?
) {
    let inSample = s.inChannels * s.height * s.width, plane = s.outHeight * s.outWidth, outSample = s.outChannels * plane
    let coutG = s.outChannels / s.groups, rowsG = s.groupColumnRows
    let layout = ConvGroupLayout(s, workspace: workspace)
    let lanes = KernelLanes.count
    var first = 0
    while first < s.batch {
        let count = min(s.sampleGroup, s.batch - first), width = count * plane
        // Each sample's columns and its output gradient, side by side with the group's others.
        KernelLanes.runItems(count, threads: lanes) { j in
            // With `spikes` each sample is indexed in its work area instead (its columns are not needed).
            if let spikes {
                spikes.prepare(sample: first + j, area: j, input: floats(input), dOutput: floats(dOutput))
            } else {
                im2col(s, columns: layout.columns + j * plane, input: input + (first + j) * inSample, rowStride: layout.rowStride)
            }
            let dOut = dOutput + (first + j) * outSample
            for co in 0..<s.outChannels {
                (layout.staged + co * layout.rowStride + j * plane).update(from: dOut + co * plane, count: plane)
            }
        }
        if let spikes {
            SpikeProducts.parts(rowsG) { rows in
                spikes.accumulate(areas: count, rows: rows)
            }
        } else {
            for g in 0..<s.groups {
                // dWeight += dOut [Cout, width] x columns [rows, width]^T.
                T.gemm(transposeA: false, transposeB: true, m: coutG, n: rowsG, k: width,
                       alpha: 1, a: layout.staged + g * coutG * layout.rowStride, lda: layout.rowStride,
                       b: layout.columns + g * rowsG * layout.rowStride, ldb: layout.rowStride,
                       beta: 1, c: dWeight + g * coutG * rowsG, ldc: rowsG)
            }
        }
        if let dBias {
            for co in 0..<s.outChannels { dBias[co] += blockedSum(layout.staged + co * layout.rowStride, width) }
        }
        if let dInput {
            // The column gradient replaces the columns (the weight gradient has read them), then each
            // sample's part goes back to its pixels.
            for g in 0..<s.groups {
                T.gemm(transposeA: true, transposeB: false, m: rowsG, n: width, k: coutG,
                       alpha: 1, a: weight + g * coutG * rowsG, lda: rowsG,
                       b: layout.staged + g * coutG * layout.rowStride, ldb: layout.rowStride,
                       beta: 0, c: layout.columns + g * rowsG * layout.rowStride, ldc: layout.rowStride)
            }
            KernelLanes.runItems(count, threads: lanes) { j in
                col2im(s, dInput: dInput + (first + j) * inSample, dColumns: layout.columns + j * plane, rowStride: layout.rowStride)
            }
        }
        first += count
    }
}
