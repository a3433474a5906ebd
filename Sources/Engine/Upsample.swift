/// Nearest-neighbour upsampling of [planes, height, width] by an integer factor (T-RevSNN's up path).
public struct UpsampleShape: Hashable, Sendable {
    /// batch * channels
    public var planes: Int
    public var height: Int
    public var width: Int
    public var factor: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, factor: Int) {
        precondition(batch > 0 && channels > 0 && height > 0 && width > 0 && factor > 0)
        planes = batch * channels
        self.height = height
        self.width = width
        self.factor = factor
    }

    public var outHeight: Int { height * factor }
    public var outWidth: Int { width * factor }
    public var inputCount: Int { planes * height * width }
    public var outputCount: Int { planes * outHeight * outWidth }
}

/// output[p][i][j] = input[p][i / factor][j / factor].
@_specialize(where T == Float)
public func upsampleNearestForward<T: EngineScalar>(_ shape: UpsampleShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>) {
    let s = shape, outW = s.outWidth
    for p in 0..<s.planes {
        let x = input + p * s.height * s.width, y = output + p * s.outHeight * outW
        for oh in 0..<s.outHeight {
            let src = x + (oh / s.factor) * s.width, dst = y + oh * outW
            for ow in 0..<outW { dst[ow] = src[ow / s.factor] }
        }
    }
}

/// dInput[p][i][j] = sum of the factor x factor output gradients it was copied to (overwritten).
@_specialize(where T == Float)
public func upsampleNearestBackward<T: EngineScalar>(_ shape: UpsampleShape, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>) {
    let s = shape, outW = s.outWidth
    dInput.update(repeating: 0, count: s.inputCount)
    for p in 0..<s.planes {
        let dx = dInput + p * s.height * s.width, dy = dOutput + p * s.outHeight * outW
        for oh in 0..<s.outHeight {
            let dst = dx + (oh / s.factor) * s.width, src = dy + oh * outW
            for ow in 0..<outW { dst[ow / s.factor] += src[ow] }
        }
    }
}
