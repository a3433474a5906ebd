import Profiles

// Transposed convolution as the adjoint of a convolution: with `adjoint` the conv from the
// transposed conv's output ([Cout, Hout, Wout]) to its input ([Cin, H, W]), the transposed conv's
// forward is that conv's input gradient (W^T x, then col2im) and its backward is that conv's
// forward (im2col of dY, then W dY) and weight gradient (x times the columns of dY).

/// The shape of a transposed conv on a batch of [Cin, H, W] inputs: output (H - 1) * stride -
/// 2 * padding + kernel, weight [Cin, Cout, k, k].
public struct ConvTranspose2DShape: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var outChannels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0) {
        self.batch = batch
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// The shape of a profile's convtranspose layer on a batch.
    public init(_ spec: ConvSpec, batch: Int, layer: Layer) {
        self.init(batch: batch, inChannels: spec.inChannels, outChannels: spec.outChannels, height: layer.inputShape.dims[1],
                  width: layer.inputShape.dims[2], kernel: spec.kernel, stride: spec.stride, padding: spec.padding)
    }

    public var outHeight: Int { (height - 1) * stride - 2 * padding + kernel }
    public var outWidth: Int { (width - 1) * stride - 2 * padding + kernel }
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { inChannels * outChannels * kernel * kernel }

    /// The conv whose adjoint this is: Cout -> Cin channels, from Hout x Wout to H x W.
    var adjoint: Conv2DShape {
        Conv2DShape(batch: 1, inChannels: outChannels, outChannels: inChannels, height: outHeight, width: outWidth,
                    kernel: kernel, stride: stride, padding: padding)
    }

    /// Elements of the column buffer of one sample, (Cout * k * k) x (H * W); 0 when the
    /// adjoint conv is pointwise (the columns are the tensor itself).
    public var workspaceCount: Int { adjoint.columnCount }
}

/// output[b] = col2im(W^T x[b]) (+ bias). output [B, Cout, Hout, Wout]; input [B, Cin, H, W];
/// weight [Cin, Cout, k, k]; workspace `shape.workspaceCount` elements (nil when that is 0).
@_specialize(where T == Float)
public func convTranspose2dForward<T: EngineScalar>(
    _ shape: ConvTranspose2DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, workspace: UnsafeMutablePointer<T>?
) {
    let s = shape, a = shape.adjoint
    let inPlane = s.height * s.width, outPlane = s.outHeight * s.outWidth
    let rows = s.outChannels * s.kernel * s.kernel
    precondition(a.isPointwise || workspace != nil, "a transposed \(s.kernel)x\(s.kernel) conv needs its column workspace")
    for b in 0..<s.batch {
        let outB = output + b * s.outChannels * outPlane
        let columns = a.isPointwise ? outB : workspace!
        T.gemm(transposeA: true, transposeB: false, m: rows, n: inPlane, k: s.inChannels,
               alpha: 1, a: weight, lda: rows, b: input + b * s.inChannels * inPlane, ldb: inPlane,
               beta: 0, c: columns, ldc: inPlane)
        if !a.isPointwise { col2im(a, dInput: outB, dColumns: columns) }
        if let bias {
            for co in 0..<s.outChannels {
                let row = outB + co * outPlane, value = bias[co]
                for i in 0..<outPlane { row[i] += value }
            }
        }
    }
}

/// dInput[b] = W im2col(dY[b]); dWeight += x[b] im2col(dY[b])^T; dBias += the sums of dY[b] per
/// channel. dInput may be nil (nothing needs it); the parameter gradients accumulate.
@_specialize(where T == Float)
public func convTranspose2dBackward<T: EngineScalar>(
    _ shape: ConvTranspose2DShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
    dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, workspace: UnsafeMutablePointer<T>?
) {
    let s = shape, a = shape.adjoint
    let inPlane = s.height * s.width, outPlane = s.outHeight * s.outWidth
    let rows = s.outChannels * s.kernel * s.kernel
    precondition(a.isPointwise || workspace != nil, "a transposed \(s.kernel)x\(s.kernel) conv needs its column workspace")
    for b in 0..<s.batch {
        let dOutB = dOutput + b * s.outChannels * outPlane
        let columns: UnsafePointer<T>
        if a.isPointwise {
            columns = dOutB
        } else {
            im2col(a, columns: workspace!, input: dOutB)
            columns = UnsafePointer(workspace!)
        }
        T.gemm(transposeA: false, transposeB: true, m: s.inChannels, n: rows, k: inPlane,
               alpha: 1, a: input + b * s.inChannels * inPlane, lda: inPlane, b: columns, ldb: inPlane,
               beta: 1, c: dWeight, ldc: rows)
        if let dInput {
            T.gemm(transposeA: false, transposeB: false, m: s.inChannels, n: inPlane, k: rows,
                   alpha: 1, a: weight, lda: rows, b: columns, ldb: inPlane,
                   beta: 0, c: dInput + b * s.inChannels * inPlane, ldc: inPlane)
        }
        if let dBias {
            for co in 0..<s.outChannels { dBias[co] += blockedSum(dOutB + co * outPlane, outPlane) }
        }
    }
}
