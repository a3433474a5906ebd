/// The dimensions of a pooling call over [B, C, H, W] (B and C folded into `planes`).
public struct Pool2DShape: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, kernel: Int, stride: Int? = nil, padding: Int = 0) {
        let stride = stride ?? kernel
        precondition(batch > 0 && channels > 0 && kernel > 0 && stride > 0 && padding >= 0)
        // PyTorch's rule: a window then always covers at least one real pixel.
        precondition(padding <= kernel / 2, "padding \(padding) must be at most half the kernel \(kernel)")
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel)
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// Global average pooling: one window covering the whole (square) plane.
    public static func global(batch: Int, channels: Int, height: Int, width: Int) -> Pool2DShape {
        precondition(height == width, "global pooling as a pool needs a square plane")
        return Pool2DShape(batch: batch, channels: channels, height: height, width: width, kernel: height)
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    var planes: Int { batch * channels }
    /// 2x2 windows at stride 2 without padding over an even plane: the windows tile the input exactly.
    var isTiled2x2: Bool { kernel == 2 && stride == 2 && padding == 0 && height % 2 == 0 && width % 2 == 0 }
    public var inputCount: Int { planes * height * width }
    public var outputCount: Int { planes * outHeight * outWidth }

    /// The input rows (or columns) under output row `o`, clipped to the plane.
    @inline(__always)
    func window(_ o: Int, size: Int) -> Range<Int> {
        let start = o * stride - padding
        return max(start, 0)..<min(start + kernel, size)
    }
}

/// Average pooling forward. Padding counts as zeros in the divisor (PyTorch's count_include_pad=True,
/// what SpikingJelly's AvgPool2d uses), so every window divides by kernel * kernel.
@_specialize(where T == Float)
public func avgPool2dForward<T: EngineScalar>(_ shape: Pool2DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>) {
    let s = shape, outH = s.outHeight, outW = s.outWidth
    let scale = 1 / T(s.kernel * s.kernel)
    KernelLanes.forEachChunk(count: s.planes, itemCost: s.height * s.width, align: 1) { planes in
    for p in planes {
        let x = input + p * s.height * s.width, y = output + p * outH * outW
        if s.isTiled2x2 {
            // 2x2, stride 2, unpadded: every window is a full square, read row pair by row pair.
            for oh in 0..<outH {
                let top = x + 2 * oh * s.width, bottom = top + s.width, row = y + oh * outW
                for ow in 0..<outW {
                    row[ow] = (top[2 * ow] + top[2 * ow + 1] + bottom[2 * ow] + bottom[2 * ow + 1]) * scale
                }
            }
            continue
        }
        for oh in 0..<outH {
            let rows = s.window(oh, size: s.height)
            for ow in 0..<outW {
                let cols = s.window(ow, size: s.width)
                var sum: T = 0
                for ih in rows { for iw in cols { sum += x[ih * s.width + iw] } }
                y[oh * outW + ow] = sum * scale
            }
        }
    }
    }
}

/// Average pooling backward: each output gradient spread evenly over its window (dInput overwritten).
@_specialize(where T == Float)
public func avgPool2dBackward<T: EngineScalar>(_ shape: Pool2DShape, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>) {
    let s = shape, outH = s.outHeight, outW = s.outWidth
    let scale = 1 / T(s.kernel * s.kernel)
    KernelLanes.forEachChunk(count: s.planes, itemCost: s.height * s.width, align: 1) { planes in
    for p in planes {
        let dx = dInput + p * s.height * s.width, dy = dOutput + p * outH * outW
        if s.isTiled2x2 {
            // Each input pixel lies in exactly one window: written once, no zeroing pass.
            for oh in 0..<outH {
                let top = dx + 2 * oh * s.width, bottom = top + s.width, row = dy + oh * outW
                for ow in 0..<outW {
                    let g = row[ow] * scale
                    top[2 * ow] = g
                    top[2 * ow + 1] = g
                    bottom[2 * ow] = g
                    bottom[2 * ow + 1] = g
                }
            }
            continue
        }
        dx.update(repeating: 0, count: s.height * s.width)
        for oh in 0..<outH {
            let rows = s.window(oh, size: s.height)
            for ow in 0..<outW {
                let cols = s.window(ow, size: s.width)
                let g = dy[oh * outW + ow] * scale
                for ih in rows { for iw in cols { dx[ih * s.width + iw] += g } }
            }
        }
    }
    }
}

/// Max pooling forward; saves, per output, the index of the winning pixel within its H*W plane as
/// Int32 (the planner's `argmax`). Ties go to the first pixel in row-major order; padding never wins.
@_specialize(where T == Float)
public func maxPool2dForward<T: EngineScalar>(
    _ shape: Pool2DShape, output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>, input: UnsafePointer<T>
) {
    let s = shape, outH = s.outHeight, outW = s.outWidth
    for p in 0..<s.planes {
        let x = input + p * s.height * s.width, y = output + p * outH * outW
        let arg = argmax + p * outH * outW
        for oh in 0..<outH {
            let rows = s.window(oh, size: s.height)
            for ow in 0..<outW {
                let cols = s.window(ow, size: s.width)
                var best = -T.infinity, bestIndex = rows.lowerBound * s.width + cols.lowerBound
                for ih in rows {
                    for iw in cols where x[ih * s.width + iw] > best {
                        best = x[ih * s.width + iw]
                        bestIndex = ih * s.width + iw
                    }
                }
                y[oh * outW + ow] = best
                arg[oh * outW + ow] = Int32(bestIndex)
            }
        }
    }
}

/// Max pooling backward: each output gradient goes to its saved argmax (dInput overwritten).
@_specialize(where T == Float)
public func maxPool2dBackward<T: EngineScalar>(
    _ shape: Pool2DShape, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>, argmax: UnsafePointer<Int32>
) {
    let s = shape, outPlane = s.outHeight * s.outWidth
    dInput.update(repeating: 0, count: s.inputCount)
    for p in 0..<s.planes {
        let dx = dInput + p * s.height * s.width, dy = dOutput + p * outPlane, arg = argmax + p * outPlane
        for o in 0..<outPlane { dx[Int(arg[o])] += dy[o] }
    }
}
