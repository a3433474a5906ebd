/// Layer norm over [rows, features, tokens]: each (row, token) pair (one sample of one timestep,
/// one token) normalised over its `features` values by its own mean and biased variance, as
/// PyTorch's `nn.LayerNorm` (`LayerNormSpec`): y = (x - mean) * rstd * gamma + beta,
/// rstd = 1 / sqrt(var + eps). With `tokens == 1` a row's features are contiguous (a whole sample);
/// on [C, N] tokens feature i of token j sits at i * tokens + j (channels at stride N, no transposed copy).
public struct LayerNormShape: Hashable, Sendable {
    public var rows: Int
    /// Values normalised together (one sample's [F] or [C, H, W], or a token's C channels).
    public var features: Int
    /// Groups normalised separately in one row, interleaved at stride `tokens`.
    public var tokens: Int

    public init(rows: Int, features: Int, tokens: Int = 1) {
        precondition(rows > 0 && features > 0 && tokens > 0)
        self.rows = rows
        self.features = features
        self.tokens = tokens
    }

    /// Means (and rstds): one per row and token.
    public var groups: Int { rows * tokens }

    /// Where group g's first value sits; its features follow at stride `tokens`.
    @inline(__always) func start(_ g: Int) -> Int { (g / tokens) * features * tokens + g % tokens }
}

/// Forward: writes the output and each group's mean and rstd (the planner's float32 `mean`/`rstd`
/// when T is Float), which backward needs with the input. Without affine, gamma and beta are nil.
@_specialize(where T == Float)
public func layerNormForward<T: EngineScalar>(
    _ shape: LayerNormShape, output: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<T>, rstd: UnsafeMutablePointer<T>,
    input: UnsafePointer<T>, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?, epsilon: Double
) {
    let n = shape.features, stride = shape.tokens
    // Groups are independent: the kernel lanes take a contiguous range each.
    KernelLanes.forEachChunk(count: shape.groups, itemCost: n, align: 1) { groups in
        for g in groups {
            let x = input + shape.start(g), y = output + shape.start(g)
            // Two passes in Double: the mean, then squared deviations from it.
            var sum = 0.0
            for i in 0..<n { sum += Double(x[i * stride]) }
            let m = sum / Double(n)
            var squares = 0.0
            for i in 0..<n { let d = Double(x[i * stride]) - m; squares += d * d }
            let inverse = 1 / (squares / Double(n) + epsilon).squareRoot()
            mean[g] = T(m)
            rstd[g] = T(inverse)
            let center = T(m), scale = T(inverse)
            for i in 0..<n {
                let normalized = (x[i * stride] - center) * scale
                y[i * stride] = gamma.map { normalized * $0[i] + beta![i] } ?? normalized
            }
        }
    }
}

/// Backward: with x̂ = (x - mean) rstd and g = dy * gamma (dy without affine),
/// dx = rstd (g - mean(g) - x̂ mean(g x̂)); dgamma += Σ_groups dy x̂, dbeta += Σ_groups dy (accumulated, as
/// every parameter gradient over timesteps). `dInput` may be nil when nothing needs it.
@_specialize(where T == Float)
public func layerNormBackward<T: EngineScalar>(
    _ shape: LayerNormShape, dInput: UnsafeMutablePointer<T>?, dGamma: UnsafeMutablePointer<T>?, dBeta: UnsafeMutablePointer<T>?,
    dOutput: UnsafePointer<T>, input: UnsafePointer<T>, gamma: UnsafePointer<T>?, mean: UnsafePointer<T>, rstd: UnsafePointer<T>
) {
    let n = shape.features, stride = shape.tokens
    if let dInput {
        KernelLanes.forEachChunk(count: shape.groups, itemCost: 2 * n, align: 1) { groups in
            for grp in groups {
                let x = input + shape.start(grp), dy = dOutput + shape.start(grp), dx = dInput + shape.start(grp)
                let center = mean[grp], scale = rstd[grp]
                var sumG = 0.0, sumGX = 0.0
                for i in 0..<n {
                    let g = gamma.map { dy[i * stride] * $0[i] } ?? dy[i * stride]
                    sumG += Double(g)
                    sumGX += Double(g) * Double((x[i * stride] - center) * scale)
                }
                let meanG = T(sumG / Double(n)), meanGX = T(sumGX / Double(n))
                for i in 0..<n {
                    let g = gamma.map { dy[i * stride] * $0[i] } ?? dy[i * stride]
                    dx[i * stride] = scale * (g - meanG - (x[i * stride] - center) * scale * meanGX)
                }
            }
        }
    }
    guard let dGamma, let dBeta else { return }
    // Features are independent for the parameter gradients: each lane sums its own over the groups.
    KernelLanes.forEachChunk(count: n, itemCost: shape.groups, align: 16) { features in
        for i in features {
            var sumDY = 0.0, sumDYX = 0.0
            for g in 0..<shape.groups {
                let at = shape.start(g) + i * stride
                let dy = Double(dOutput[at])
                sumDY += dy
                sumDYX += dy * Double((input[at] - mean[g]) * rstd[g])
            }
            dGamma[i] += T(sumDYX)
            dBeta[i] += T(sumDY)
        }
    }
}
