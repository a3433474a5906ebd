/// Layer norm over [rows, features]: each row (one sample of one timestep) normalised by its own
/// mean and biased variance, as PyTorch's `nn.LayerNorm` over the trailing `features` values
/// (`LayerNormSpec`): y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps).
public struct LayerNormShape: Hashable, Sendable {
    public var rows: Int
    /// Values normalised together (one sample's [F] or [C, H, W]).
    public var features: Int

    public init(rows: Int, features: Int) {
        precondition(rows > 0 && features > 0)
        self.rows = rows
        self.features = features
    }
}

/// Forward: writes the output and each row's mean and rstd (the planner's float32 `mean`/`rstd`
/// when T is Float), which backward needs with the input. Without affine, gamma and beta are nil.
@_specialize(where T == Float)
public func layerNormForward<T: EngineScalar>(
    _ shape: LayerNormShape, output: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<T>, rstd: UnsafeMutablePointer<T>,
    input: UnsafePointer<T>, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?, epsilon: Double
) {
    let n = shape.features
    // Rows are independent: the kernel lanes take a contiguous range each.
    KernelLanes.forEachChunk(count: shape.rows, itemCost: n, align: 1) { rows in
        for r in rows {
            let x = input + r * n, y = output + r * n
            // Two passes in Double: the mean, then squared deviations from it.
            var sum = 0.0
            for i in 0..<n { sum += Double(x[i]) }
            let m = sum / Double(n)
            var squares = 0.0
            for i in 0..<n { let d = Double(x[i]) - m; squares += d * d }
            let inverse = 1 / (squares / Double(n) + epsilon).squareRoot()
            mean[r] = T(m)
            rstd[r] = T(inverse)
            let center = T(m), scale = T(inverse)
            for i in 0..<n {
                let normalized = (x[i] - center) * scale
                y[i] = gamma.map { normalized * $0[i] + beta![i] } ?? normalized
            }
        }
    }
}

/// Backward: with x̂ = (x - mean) rstd and g = dy * gamma (dy without affine),
/// dx = rstd (g - mean(g) - x̂ mean(g x̂)); dgamma += Σ_rows dy x̂, dbeta += Σ_rows dy (accumulated, as
/// every parameter gradient over timesteps). `dInput` may be nil when nothing needs it.
@_specialize(where T == Float)
public func layerNormBackward<T: EngineScalar>(
    _ shape: LayerNormShape, dInput: UnsafeMutablePointer<T>?, dGamma: UnsafeMutablePointer<T>?, dBeta: UnsafeMutablePointer<T>?,
    dOutput: UnsafePointer<T>, input: UnsafePointer<T>, gamma: UnsafePointer<T>?, mean: UnsafePointer<T>, rstd: UnsafePointer<T>
) {
    let n = shape.features
    if let dInput {
        KernelLanes.forEachChunk(count: shape.rows, itemCost: 2 * n, align: 1) { rows in
            for r in rows {
                let x = input + r * n, dy = dOutput + r * n, dx = dInput + r * n
                let center = mean[r], scale = rstd[r]
                var sumG = 0.0, sumGX = 0.0
                for i in 0..<n {
                    let g = gamma.map { dy[i] * $0[i] } ?? dy[i]
                    sumG += Double(g)
                    sumGX += Double(g) * Double((x[i] - center) * scale)
                }
                let meanG = T(sumG / Double(n)), meanGX = T(sumGX / Double(n))
                for i in 0..<n {
                    let g = gamma.map { dy[i] * $0[i] } ?? dy[i]
                    dx[i] = scale * (g - meanG - (x[i] - center) * scale * meanGX)
                }
            }
        }
    }
    guard let dGamma, let dBeta else { return }
    // Features are independent for the parameter gradients: each lane sums its own columns over the rows.
    KernelLanes.forEachChunk(count: n, itemCost: shape.rows, align: 16) { columns in
        for i in columns {
            var sumDY = 0.0, sumDYX = 0.0
            for r in 0..<shape.rows {
                let dy = Double(dOutput[r * n + i])
                sumDY += dy
                sumDYX += dy * Double((input[r * n + i] - mean[r]) * rstd[r])
            }
            dGamma[i] += T(sumDYX)
            dBeta[i] += T(sumDY)
        }
    }
}
