import Planner
import Profiles

/// The dimensions of one convolution call: a batch of [inChannels, height, width] samples.
public struct Conv2DShape: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var outChannels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var groups: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        precondition(batch > 0 && inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0)
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "groups \(groups) must divide inChannels \(inChannels) and outChannels \(outChannels)")
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "kernel \(kernel) larger than the padded \(height)x\(width) input")
        self.batch = batch
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
    }

    /// The shape of a profile's conv layer applied to a batch of [C, H, W] inputs.
    public init(_ spec: ConvSpec, batch: Int, height: Int, width: Int) {
        self.init(batch: batch, inChannels: spec.inChannels, outChannels: spec.outChannels, height: height, width: width,
                  kernel: spec.kernel, stride: spec.stride, padding: spec.padding, groups: spec.groups)
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * (inChannels / groups) * kernel * kernel }

    /// A 1x1, stride 1, unpadded conv multiplies the weight with the input as it lies: no im2col
    /// (the same test as `LayerMemoryTable.isPointwise`).
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// Elements of one sample's im2col columns: (inChannels * k * k) x (outHeight * outWidth), 0 for a
    /// pointwise conv.
    public var columnCount: Int {
        isPointwise ? 0 : inChannels * kernel * kernel * outHeight * outWidth
    }

    /// Samples whose columns go into one GEMM (`LayerMemoryTable.convSampleGroup`, at most the batch):
    /// 1 where each sample's GEMMs are wide enough to run per sample on the kernel lanes.
    public var sampleGroup: Int {
        isPointwise ? 1 : min(batch, LayerMemoryTable.convSampleGroup(outputPlane: outHeight * outWidth))
    }

    /// Whether the samples are gathered `sampleGroup` at a time (the planner decides by the plane alone,
    /// so a batch of one still takes this path when the plane is small).
    public var isGrouped: Bool { !isPointwise && LayerMemoryTable.convSampleGroup(outputPlane: outHeight * outWidth) > 1 }

    /// Elements of the im2col workspace, forward and backward alike, 0 for a pointwise conv. Per sample
    /// on the lanes: one sample's columns per kernel lane (`LayerMemoryTable.kernelLanes` x `columnCount`).
    /// Grouped: the group's columns side by side, then its outputs (or output gradients) side by side,
    /// `sampleGroup` x (Cin * k * k + Cout) x (Hout * Wout). This is the planner's `im2col` declaration
    /// at this batch; the kernels use no other scratch.
    public var workspaceCount: Int {
        isGrouped ? sampleGroup * (inChannels * kernel * kernel + outChannels) * outHeight * outWidth
                  : KernelLanes.count * columnCount
    }

    /// Rows of one group's im2col slice, and the GEMM's K: (inChannels / groups) * k * k.
    var groupColumnRows: Int { inChannels / groups * kernel * kernel }

    /// Multiply-adds of one forward pass (the FLOPs are twice this).
    public var forwardMultiplyAdds: Int { outputCount * groupColumnRows }
}

/// Forward: output[b] = W * im2col(input[b]) (+ bias), one GEMM per group and sample.
/// output [B, Cout, Hout, Wout]; input [B, Cin, H, W]; weight [Cout, Cin/groups, k, k]; bias [Cout] or nil;
/// workspace: `shape.workspaceCount` elements (nil allowed only for a pointwise conv).
/// Samples are claimed one at a time by the kernel lanes' threads, each thread with its own im2col slot
/// of the workspace and a single-threaded GEMM.
@_specialize(where T == Float)
public func conv2dForward<T: EngineScalar>(
    _ shape: Conv2DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, workspace: UnsafeMutablePointer<T>?
) {
    let s = shape
    let inPlane = s.height * s.width, outPlane = s.outHeight * s.outWidth
    let coutG = s.outChannels / s.groups, rowsG = s.groupColumnRows
    precondition(s.isPointwise || workspace != nil, "a \(s.kernel)x\(s.kernel) conv needs its im2col workspace")
    // Spikes (mostly zeros) in, where counting them says it is cheaper: the products skip the zeros.
    if T.self == Float.self,
       SpikeProducts.forward(s, output: floats(output), input: floats(input), weight: floats(weight), bias: bias.map { floats($0) }) {
        return
    }
    if s.isGrouped {
        groupedConv2dForward(s, output: output, input: input, weight: weight, bias: bias, workspace: workspace!)
        return
    }
    let lanes = min(KernelLanes.count, s.batch)
    // Samples are claimed one at a time by the lanes' threads, each sample's columns in the slot of the
    // thread that runs it.
    let body = { (b: Int, lane: Int) in
        let inB = input + b * s.inChannels * inPlane
        let outB = output + b * s.outChannels * outPlane
        // A pointwise conv's input already is its column matrix: Cin rows of H*W.
        let columns: UnsafePointer<T>
        if s.isPointwise {
            columns = inB
        } else {
            let slot = workspace! + lane * s.columnCount
            im2col(s, columns: slot, input: inB)
            columns = UnsafePointer(slot)
        }
        for g in 0..<s.groups {
            T.gemm(transposeA: false, transposeB: false, m: coutG, n: outPlane, k: rowsG,
                   alpha: 1, a: weight + g * coutG * rowsG, lda: rowsG,
                   b: columns + g * rowsG * outPlane, ldb: outPlane,
                   beta: 0, c: outB + g * coutG * outPlane, ldc: outPlane)
        }
        if let bias {
            for co in 0..<s.outChannels {
                let row = outB + co * outPlane, value = bias[co]
                for i in 0..<outPlane { row[i] += value }
            }
        }
    }
    if lanes > 1 {
        GEMMBackend.withOneThreadPerCall { KernelLanes.runItemsWithSlots(s.batch, slots: lanes, body) }
    } else {
        for b in 0..<s.batch { body(b, 0) }
    }
}

/// Backward from the saved input: dWeight += dOut * im2col(input)^T, dBias += sum of dOut, and, when
/// dInput is given, dInput = col2im(W^T * dOut) (overwritten). The workspace first holds the
/// input's columns again, then the columns' gradient: one buffer of the forward's size.
///
/// The batch goes in rounds of `lanes` samples: each lane builds one sample's columns in its slot;
/// then the lanes split dWeight's columns (two parts a lane, claimed in turn), each part accumulating
/// every sample of the round into its own columns, so no lane writes another's (no partial sums, no
/// extra workspace; measured as fast as lanes with private dWeight partials, which would cost a
/// weight-sized buffer more);
/// then each lane turns its slot into its sample's column gradient and col2im's it, and builds the
/// next round's columns.
@_specialize(where T == Float)
public func conv2dBackward<T: EngineScalar>(
    _ shape: Conv2DShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
    dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, workspace: UnsafeMutablePointer<T>?
) {
    let s = shape
    let inPlane = s.height * s.width, outPlane = s.outHeight * s.outWidth
    let coutG = s.outChannels / s.groups, rowsG = s.groupColumnRows
    precondition(s.isPointwise || workspace != nil, "a \(s.kernel)x\(s.kernel) conv needs its im2col workspace")
    let lanes = min(KernelLanes.count, s.batch)
    // The weight gradient from the input's nonzeros where that is cheaper (`SpikeProducts`): each sample
    // indexed in a work area of its own instead of its im2col columns, accumulated into a transposed
    // panel, added into dWeight at the end. The input gradient stays the dense GEMM.
    let spikes = T.self == Float.self
        ? SpikeProducts.WeightGradient(s, input: floats(input), weight: floats(weight), dWeight: floats(dWeight),
                                       areas: s.isGrouped ? s.sampleGroup : lanes) : nil
    defer { spikes?.finish(into: floats(dWeight)) }
    if s.isGrouped {
        groupedConv2dBackward(s, dInput: dInput, dWeight: dWeight, dBias: dBias, dOutput: dOutput, input: input,
                              weight: weight, workspace: workspace!, spikes: spikes)
        return
    }

    /// The column matrix of sample b: its slot (filled by `gather`) or, pointwise, the input itself.
    func columns(_ b: Int, slot j: Int) -> UnsafePointer<T> {
        s.isPointwise ? input + b * s.inChannels * inPlane : UnsafePointer(workspace! + j * s.columnCount)
    }
    func gather(_ b: Int, slot j: Int) {
        if let spikes {
            spikes.prepare(sample: b, area: j, input: floats(input), dOutput: floats(dOutput))
        } else if !s.isPointwise {
            im2col(s, columns: workspace! + j * s.columnCount, input: input + b * s.inChannels * inPlane)
        }
    }
    /// One lane's share of dWeight and dBias from samples first..<first+count: dWeight's columns
    /// `columns` (rows of the im2col matrix, in every group) and dBias's `channels`. Splitting the
    /// columns, not the rows, lets each lane pack only its half of the (large) column matrices; the
    /// (smaller) dOut rows are packed by both.
    func accumulateWeights(first: Int, count: Int, columns part: Range<Int>, channels: Range<Int>) {
        if let spikes, !part.isEmpty {
            spikes.accumulate(areas: count, rows: part)
        } else if !part.isEmpty {
            for g in 0..<s.groups {
                for j in 0..<count {
                    let dOutB = dOutput + (first + j) * s.outChannels * outPlane
                    T.gemm(transposeA: false, transposeB: true, m: coutG, n: part.count, k: outPlane,
                           alpha: 1, a: dOutB + g * coutG * outPlane, lda: outPlane,
                           b: columns(first + j, slot: j) + (g * rowsG + part.lowerBound) * outPlane, ldb: outPlane,
                           beta: 1, c: dWeight + g * coutG * rowsG + part.lowerBound, ldc: rowsG)
                }
            }
        }
        if let dBias {
            for j in 0..<count {
                let dOutB = dOutput + (first + j) * s.outChannels * outPlane
                for co in channels { dBias[co] += blockedSum(dOutB + co * outPlane, outPlane) }
            }
        }
    }
    /// dInput of sample b from the column gradient, built in slot j (its columns are no longer needed).
    func scatter(_ b: Int, slot j: Int) {
        guard let dInput else { return }
        let dOutB = dOutput + b * s.outChannels * outPlane
        let dInB = dInput + b * s.inChannels * inPlane
        let dColumns = s.isPointwise ? dInB : workspace! + j * s.columnCount
        for g in 0..<s.groups {
            T.gemm(transposeA: true, transposeB: false, m: rowsG, n: outPlane, k: coutG,
                   alpha: 1, a: weight + g * coutG * rowsG, lda: rowsG,
                   b: dOutB + g * coutG * outPlane, ldb: outPlane,
                   beta: 0, c: dColumns + g * rowsG * outPlane, ldc: outPlane)
        }
        if !s.isPointwise { col2im(s, dInput: dInB, dColumns: dColumns) }
    }

    if lanes <= 1 {
        for b in 0..<s.batch {
            gather(b, slot: 0)
            accumulateWeights(first: b, count: 1, columns: 0..<rowsG, channels: 0..<s.outChannels)
            scatter(b, slot: 0)
        }
        return
    }
    GEMMBackend.withOneThreadPerCall {
        KernelLanes.run(min(lanes, s.batch)) { j in gather(j, slot: j) }
        var first = 0
        while first < s.batch {
            let count = min(lanes, s.batch - first), next = first + lanes
            // Two parts a lane, claimed in turn (a lane whose core another process holds leaves its
            // second part to the other), split at multiples of the GEMM's 32-column tile.
            let parts = 2 * lanes, step = (rowsG / parts + 31) / 32 * 32
            KernelLanes.runItems(parts, threads: lanes) { part in
                let columnRange = min(part * step, rowsG)..<(part == parts - 1 ? rowsG : min((part + 1) * step, rowsG))
                accumulateWeights(first: first, count: count, columns: columnRange,
                                  channels: part * s.outChannels / parts..<(part + 1) * s.outChannels / parts)
            }
            KernelLanes.run(lanes) { j in
                if j < count { scatter(first + j, slot: j) }
                if next + j < s.batch { gather(next + j, slot: j) }
            }
            first = next
        }
    }
}

/// The range of output columns `ow` whose input column `ow * stride - padding + kj` lies inside
/// [0, width): the rest of a column row reads padding. Computed once per row instead of testing
/// every element, which keeps the copy loop branch-free.
@inline(__always)
func validOutputRange(offset: Int, stride: Int, size: Int, outSize: Int) -> Range<Int> {
    // ow * stride + offset >= 0  <=>  ow >= ceil(-offset / stride)
    let lower = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // ow * stride + offset <= size - 1  <=>  ow <= floor((size - 1 - offset) / stride)
    let last = size - 1 - offset
    let upper = last < 0 ? 0 : last / stride + 1
    let lo = min(lower, outSize), hi = max(lo, min(upper, outSize))
    return lo..<hi
}

/// columns[(c*k + ki)*k + kj][oh*Wout + ow] = input[c][oh*stride - pad + ki][ow*stride - pad + kj], 0 outside.
@_specialize(where T == Float)
func im2col<T: EngineScalar>(_ s: Conv2DShape, columns: UnsafeMutablePointer<T>, input: UnsafePointer<T>, rowStride: Int? = nil) {
    let outH = s.outHeight, outW = s.outWidth, outPlane = outH * outW
    // A grouped conv lays several samples' columns side by side: row r of this sample starts at r * rowStride.
    let rowStride = rowStride ?? outPlane
    for c in 0..<s.inChannels {
        let plane = input + c * s.height * s.width
        for ki in 0..<s.kernel {
            let rows = validOutputRange(offset: ki - s.padding, stride: s.stride, size: s.height, outSize: outH)
            for kj in 0..<s.kernel {
                let row = columns + ((c * s.kernel + ki) * s.kernel + kj) * rowStride
                let cols = validOutputRange(offset: kj - s.padding, stride: s.stride, size: s.width, outSize: outW)
                if s.stride == 1 && outW == s.width {
                    // Stride 1 with a same-width output ("same" padding): within the valid rows the column
                    // row is the input plane shifted by one offset, so one contiguous copy from the first
                    // valid entry to the last, then zeros over what fell outside: whole rows above and
                    // below, and the few border columns whose copied values wrapped around from the
                    // neighbouring input row. One copy per (c, ki, kj) instead of one per output row.
                    let shift = (ki - s.padding) * s.width + (kj - s.padding)
                    if rows.isEmpty || cols.isEmpty {
                        row.update(repeating: 0, count: outPlane)
                        continue
                    }
                    let start = rows.lowerBound * outW + cols.lowerBound
                    let end = (rows.upperBound - 1) * outW + cols.upperBound
                    (row + start).update(from: plane + start + shift, count: end - start)
                    row.update(repeating: 0, count: rows.lowerBound * outW)
                    (row + rows.upperBound * outW).update(repeating: 0, count: (outH - rows.upperBound) * outW)
                    for oh in rows {
                        let dst = row + oh * outW
                        for ow in 0..<cols.lowerBound { dst[ow] = 0 }
                        for ow in cols.upperBound..<outW { dst[ow] = 0 }
                    }
                    continue
                }
                for oh in 0..<outH {
                    let dst = row + oh * outW
                    guard rows.contains(oh), !cols.isEmpty else {
                        dst.update(repeating: 0, count: outW)
                        continue
                    }
                    let src = plane + (oh * s.stride - s.padding + ki) * s.width + (kj - s.padding)
                    for ow in 0..<cols.lowerBound { dst[ow] = 0 }
                    if s.stride == 1 {
                        (dst + cols.lowerBound).update(from: src + cols.lowerBound, count: cols.count)
                    } else {
                        for ow in cols { dst[ow] = src[ow * s.stride] }
                    }
                    for ow in cols.upperBound..<outW { dst[ow] = 0 }
                }
            }
        }
    }
}

/// The adjoint of im2col: dInput (overwritten) = sum of each column entry into the input pixel it read.
/// dColumns is scratch: entries that read padding may be overwritten with zeros.
@_specialize(where T == Float)
func col2im<T: EngineScalar>(_ s: Conv2DShape, dInput: UnsafeMutablePointer<T>, dColumns: UnsafeMutablePointer<T>,
                             rowStride: Int? = nil) {
    let outH = s.outHeight, outW = s.outWidth, outPlane = outH * outW
    let rowStride = rowStride ?? outPlane  // as in im2col
    dInput.update(repeating: 0, count: s.inChannels * s.height * s.width)
    for c in 0..<s.inChannels {
        let plane = dInput + c * s.height * s.width
        for ki in 0..<s.kernel {
            let rows = validOutputRange(offset: ki - s.padding, stride: s.stride, size: s.height, outSize: outH)
            for kj in 0..<s.kernel {
                let row = dColumns + ((c * s.kernel + ki) * s.kernel + kj) * rowStride
                let cols = validOutputRange(offset: kj - s.padding, stride: s.stride, size: s.width, outSize: outW)
                if cols.isEmpty || rows.isEmpty { continue }
                if s.stride == 1 && outW == s.width {
                    // Stride 1, same width (im2col's contiguous case): zero the border entries that read
                    // padding, which would otherwise wrap onto the neighbouring input row, then add the
                    // valid span in one contiguous loop (adding zeros changes nothing).
                    for oh in rows {
                        let src = row + oh * outW
                        for ow in 0..<cols.lowerBound { src[ow] = 0 }
                        for ow in cols.upperBound..<outW { src[ow] = 0 }
                    }
                    let shift = (ki - s.padding) * s.width + (kj - s.padding)
                    let start = rows.lowerBound * outW + cols.lowerBound
                    let end = (rows.upperBound - 1) * outW + cols.upperBound
                    // start + shift >= 0: the first valid entry reads the plane's first row and column at worst.
                    addTo(end - start, UnsafePointer(row + start), plane + (start + shift))
                    continue
                }
                for oh in rows {
                    let src = row + oh * outW
                    let dst = plane + (oh * s.stride - s.padding + ki) * s.width + (kj - s.padding)
                    if s.stride == 1 {
                        // Unit stride: a contiguous add the compiler vectorizes.
                        for ow in cols { dst[ow] += src[ow] }
                    } else {
                        for ow in cols { dst[ow * s.stride] += src[ow] }
                    }
                }
            }
        }
    }
}

