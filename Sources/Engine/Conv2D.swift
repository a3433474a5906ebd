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

    /// Elements of the im2col workspace, forward and backward alike: (inChannels * k * k) x
    /// (outHeight * outWidth) for one sample, 0 for a pointwise conv. This is the planner's
    /// `im2col` declaration; the kernels use no other scratch.
    public var workspaceCount: Int {
        isPointwise ? 0 : inChannels * kernel * kernel * outHeight * outWidth
    }

    /// Rows of one group's im2col slice, and the GEMM's K: (inChannels / groups) * k * k.
    var groupColumnRows: Int { inChannels / groups * kernel * kernel }

    /// Multiply-adds of one forward pass (the FLOPs are twice this).
    public var forwardMultiplyAdds: Int { outputCount * groupColumnRows }
}

/// Forward: output[b] = W * im2col(input[b]) (+ bias), one GEMM per group and sample.
/// output [B, Cout, Hout, Wout]; input [B, Cin, H, W]; weight [Cout, Cin/groups, k, k]; bias [Cout] or nil;
/// workspace: `shape.workspaceCount` elements (nil allowed only for a pointwise conv).
@_specialize(where T == Float)
public func conv2dForward<T: EngineScalar>(
    _ shape: Conv2DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, workspace: UnsafeMutablePointer<T>?
) {
    let s = shape
    let inPlane = s.height * s.width, outPlane = s.outHeight * s.outWidth
    let coutG = s.outChannels / s.groups, rowsG = s.groupColumnRows
    precondition(s.isPointwise || workspace != nil, "a \(s.kernel)x\(s.kernel) conv needs its im2col workspace")
    for b in 0..<s.batch {
        let inB = input + b * s.inChannels * inPlane
        let outB = output + b * s.outChannels * outPlane
        // A pointwise conv's input already is its column matrix: Cin rows of H*W.
        let columns: UnsafePointer<T>
        if s.isPointwise {
            columns = inB
        } else {
            im2col(s, columns: workspace!, input: inB)
            columns = UnsafePointer(workspace!)
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
}

/// Backward from the saved input: dWeight += dOut * im2col(input)^T, dBias += sum of dOut, and, when
/// dInput is given, dInput = col2im(W^T * dOut) (overwritten). The workspace first holds the
/// input's columns again, then the columns' gradient: one buffer of the forward's size.
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
    for b in 0..<s.batch {
        let inB = input + b * s.inChannels * inPlane
        let dOutB = dOutput + b * s.outChannels * outPlane
        let columns: UnsafePointer<T>
        if s.isPointwise {
            columns = inB
        } else {
            im2col(s, columns: workspace!, input: inB)
            columns = UnsafePointer(workspace!)
        }
        for g in 0..<s.groups {
            T.gemm(transposeA: false, transposeB: true, m: coutG, n: rowsG, k: outPlane,
                   alpha: 1, a: dOutB + g * coutG * outPlane, lda: outPlane,
                   b: columns + g * rowsG * outPlane, ldb: outPlane,
                   beta: 1, c: dWeight + g * coutG * rowsG, ldc: rowsG)
        }
        if let dBias {
            for co in 0..<s.outChannels {
                let row = dOutB + co * outPlane
                var sum: T = 0
                for i in 0..<outPlane { sum += row[i] }
                dBias[co] += sum
            }
        }
        guard let dInput else { continue }
        let dInB = dInput + b * s.inChannels * inPlane
        // The columns are no longer needed: the same workspace now receives their gradient.
        let dColumns = s.isPointwise ? dInB : workspace!
        for g in 0..<s.groups {
            T.gemm(transposeA: true, transposeB: false, m: rowsG, n: outPlane, k: coutG,
                   alpha: 1, a: weight + g * coutG * rowsG, lda: rowsG,
                   b: dOutB + g * coutG * outPlane, ldb: outPlane,
                   beta: 0, c: dColumns + g * rowsG * outPlane, ldc: outPlane)
        }
        if !s.isPointwise { col2im(s, dInput: dInB, dColumns: UnsafePointer(dColumns)) }
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
func im2col<T: EngineScalar>(_ s: Conv2DShape, columns: UnsafeMutablePointer<T>, input: UnsafePointer<T>) {
    let outH = s.outHeight, outW = s.outWidth, outPlane = outH * outW
    for c in 0..<s.inChannels {
        let plane = input + c * s.height * s.width
        for ki in 0..<s.kernel {
            let rows = validOutputRange(offset: ki - s.padding, stride: s.stride, size: s.height, outSize: outH)
            for kj in 0..<s.kernel {
                let row = columns + ((c * s.kernel + ki) * s.kernel + kj) * outPlane
                let cols = validOutputRange(offset: kj - s.padding, stride: s.stride, size: s.width, outSize: outW)
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
@_specialize(where T == Float)
func col2im<T: EngineScalar>(_ s: Conv2DShape, dInput: UnsafeMutablePointer<T>, dColumns: UnsafePointer<T>) {
    let outH = s.outHeight, outW = s.outWidth, outPlane = outH * outW
    dInput.update(repeating: 0, count: s.inChannels * s.height * s.width)
    for c in 0..<s.inChannels {
        let plane = dInput + c * s.height * s.width
        for ki in 0..<s.kernel {
            let rows = validOutputRange(offset: ki - s.padding, stride: s.stride, size: s.height, outSize: outH)
            for kj in 0..<s.kernel {
                let row = dColumns + ((c * s.kernel + ki) * s.kernel + kj) * outPlane
                let cols = validOutputRange(offset: kj - s.padding, stride: s.stride, size: s.width, outSize: outW)
                if cols.isEmpty { continue }
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
