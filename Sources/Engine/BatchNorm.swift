import CKernels
/// Training-mode batch norm over [B, C, S] with S the spatial size H*W (1 for [B, F] features):
/// statistics per channel over the batch and spatial dimensions, as PyTorch's BatchNorm1d/2d.
public struct BatchNormShape: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    /// H * W of an image tensor, 1 for a [B, F] tensor.
    public var spatial: Int

    public init(batch: Int, channels: Int, spatial: Int = 1) {
        precondition(batch > 0 && channels > 0 && spatial > 0)
        self.batch = batch
        self.channels = channels
        self.spatial = spatial
    }

    public var count: Int { batch * channels * spatial }
    /// Values behind each channel's statistics.
    public var valuesPerChannel: Int { batch * spatial }
}

/// PyTorch's defaults.
public enum BatchNormDefaults {
    public static let epsilon = 1e-5
    public static let momentum = 0.1
}

/// Forward: output = gamma * (input - mean) * invstd + beta with the batch's mean and biased variance;
/// saves mean and invstd ([C] each, the planner's float32 `mean`/`invstd` when T is Float).
/// With `updateRunningStatistics` the running mean and (unbiased) variance move by `momentum`;
/// a recomputation passes false so that one training step moves them once.
@_specialize(where T == Float)
public func batchNormForward<T: EngineScalar>(
    _ shape: BatchNormShape, output: UnsafeMutablePointer<T>, saveMean: UnsafeMutablePointer<T>,
    saveInvstd: UnsafeMutablePointer<T>, input: UnsafePointer<T>, gamma: UnsafePointer<T>, beta: UnsafePointer<T>,
    runningMean: UnsafeMutablePointer<T>, runningVar: UnsafeMutablePointer<T>, updateRunningStatistics: Bool,
    momentum: Double = BatchNormDefaults.momentum, epsilon: Double = BatchNormDefaults.epsilon
) {
    let s = shape, n = s.valuesPerChannel
    precondition(!updateRunningStatistics || n > 1, "the unbiased running variance needs more than one value per channel")
    // Channels are independent: the kernel lanes take a contiguous range each.
    KernelLanes.forEachChunk(count: s.channels, itemCost: n, align: 1) { channels in
        for c in channels {
            // Two passes (mean, then squared deviations from it). Each row of `spatial` values is summed
            // in T with 16 partial sums, and the rows are added in Double: a float32 running sum of 16k
            // values loses digits the variance needs when the mean is large against the spread, a row's
            // blocked sum (64 values per partial sum for a 32x32 plane) does not.
            var sum = 0.0
            for b in 0..<s.batch {
                sum += Double(blockedSum(input + (b * s.channels + c) * s.spatial, s.spatial))
            }
            let mean = sum / Double(n)
            let center = T(mean)
            var squares = 0.0
            for b in 0..<s.batch {
                squares += Double(blockedSquaredDeviations(input + (b * s.channels + c) * s.spatial, s.spatial, center: center))
            }
            // The deviations were taken from T(mean); the exact mean is off by delta = mean - T(mean):
            // sum (x - mean)^2 = sum (x - T(mean))^2 - n * delta^2.
            let delta = mean - Double(center)
            let variance = max(squares / Double(n) - delta * delta, 0)
            let invstd = 1 / (variance + epsilon).squareRoot()
            saveMean[c] = T(mean)
            saveInvstd[c] = T(invstd)
            if updateRunningStatistics {
                runningMean[c] = T((1 - momentum) * Double(runningMean[c]) + momentum * mean)
                runningVar[c] = T((1 - momentum) * Double(runningVar[c]) + momentum * variance * Double(n) / Double(n - 1))
            }
            // y = x * scale + shift with scale = gamma * invstd, shift = beta - mean * scale.
            let scale = gamma[c] * T(invstd)
            let shift = beta[c] - T(mean) * scale
            for b in 0..<s.batch {
                let offset = (b * s.channels + c) * s.spatial
                let x = input + offset, y = output + offset
                if T.self == Float.self {
                    snn_scale_shift(s.spatial, floats(x), unsafeBitCast(scale, to: Float.self), unsafeBitCast(shift, to: Float.self), floats(y))
                    continue
                }
                for i in 0..<s.spatial { y[i] = x[i] * scale + shift }
            }
        }
    }
}

/// Backward from the saved input, mean and invstd (x-hat is recomputed, not saved):
///   dBeta += sum dy, dGamma += sum dy * xhat,
///   dInput = gamma * invstd / n * (n * dy - sum dy - xhat * sum(dy * xhat))   (overwritten).
@_specialize(where T == Float)
public func batchNormBackward<T: EngineScalar>(
    _ shape: BatchNormShape, dInput: UnsafeMutablePointer<T>, dGamma: UnsafeMutablePointer<T>,
    dBeta: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
    gamma: UnsafePointer<T>, mean: UnsafePointer<T>, invstd: UnsafePointer<T>
) {
    let s = shape, n = T(s.valuesPerChannel)
    KernelLanes.forEachChunk(count: s.channels, itemCost: s.valuesPerChannel, align: 1) { channels in
        for c in channels {
            let mu = mean[c], istd = invstd[c]
            // Per row blocked sums in T (16 partial sums), rows added in T as before.
            var sumDy: T = 0, sumDyCentered: T = 0
            for b in 0..<s.batch {
                let offset = (b * s.channels + c) * s.spatial
                let (dy, dyx) = blockedGradientSums(dOutput + offset, input + offset, s.spatial, center: mu)
                sumDy += dy
                sumDyCentered += dyx
            }
            let sumDyXhat = sumDyCentered * istd
            dBeta[c] += sumDy
            dGamma[c] += sumDyXhat
            let k = gamma[c] * istd / n
            for b in 0..<s.batch {
                let offset = (b * s.channels + c) * s.spatial
                let x = input + offset, dy = dOutput + offset, dx = dInput + offset
                if T.self == Float.self {
                    let f = { (value: T) in unsafeBitCast(value, to: Float.self) }
                    snn_batch_norm_input_gradient(s.spatial, floats(x), floats(dy), f(mu), f(istd), f(k), f(n), f(sumDy), f(sumDyXhat), floats(dx))
                    continue
                }
                for i in 0..<s.spatial {
                    let xhat = (x[i] - mu) * istd
                    dx[i] = k * (n * dy[i] - sumDy - xhat * sumDyXhat)
                }
            }
        }
    }
}
