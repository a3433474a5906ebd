/// Adaptive average pooling of [B, C, H, W] to [B, C, outHeight, outWidth] with PyTorch's windows:
/// output row o averages input rows floor(o H / oh) ..< ceil((o + 1) H / oh), and the same for
/// columns. Windows may differ in size, overlap (uneven ratios) or repeat a row (upsampling).
public struct AdaptivePool2DShape: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var outHeight: Int
    public var outWidth: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, outHeight: Int, outWidth: Int) {
        precondition(batch > 0 && channels > 0 && height > 0 && width > 0 && outHeight > 0 && outWidth > 0)
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.outHeight = outHeight
        self.outWidth = outWidth
    }

    var planes: Int { batch * channels }
    public var inputCount: Int { planes * height * width }
    public var outputCount: Int { planes * outHeight * outWidth }

    /// The input indices under output index `o` of `outSize` over an axis of `size`.
    @inline(__always)
    static func window(_ o: Int, size: Int, outSize: Int) -> Range<Int> {
        (o * size / outSize)..<((o + 1) * size + outSize - 1) / outSize
    }
}

@_specialize(where T == Float)
public func adaptiveAvgPool2dForward<T: EngineScalar>(_ shape: AdaptivePool2DShape, output: UnsafeMutablePointer<T>,
                                                      input: UnsafePointer<T>) {
    let s = shape
    KernelLanes.forEachChunk(count: s.planes, itemCost: s.height * s.width, align: 1) { planes in
        for p in planes {
            let x = input + p * s.height * s.width, y = output + p * s.outHeight * s.outWidth
            for oh in 0..<s.outHeight {
                let rows = AdaptivePool2DShape.window(oh, size: s.height, outSize: s.outHeight)
                for ow in 0..<s.outWidth {
                    let cols = AdaptivePool2DShape.window(ow, size: s.width, outSize: s.outWidth)
                    var sum: T = 0
                    for ih in rows { for iw in cols { sum += x[ih * s.width + iw] } }
                    y[oh * s.outWidth + ow] = sum / T(rows.count * cols.count)
                }
            }
        }
    }
}

/// dInput (overwritten) = each output gradient spread evenly over its window, summed where windows overlap.
@_specialize(where T == Float)
public func adaptiveAvgPool2dBackward<T: EngineScalar>(_ shape: AdaptivePool2DShape, dInput: UnsafeMutablePointer<T>,
                                                       dOutput: UnsafePointer<T>) {
    let s = shape
    KernelLanes.forEachChunk(count: s.planes, itemCost: s.height * s.width, align: 1) { planes in
        for p in planes {
            let dx = dInput + p * s.height * s.width, dy = dOutput + p * s.outHeight * s.outWidth
            dx.update(repeating: 0, count: s.height * s.width)
            for oh in 0..<s.outHeight {
                let rows = AdaptivePool2DShape.window(oh, size: s.height, outSize: s.outHeight)
                for ow in 0..<s.outWidth {
                    let cols = AdaptivePool2DShape.window(ow, size: s.width, outSize: s.outWidth)
                    let g = dy[oh * s.outWidth + ow] / T(rows.count * cols.count)
                    for ih in rows { for iw in cols { dx[ih * s.width + iw] += g } }
                }
            }
        }
    }
}
