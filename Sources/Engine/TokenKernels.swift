/// The kernels of spiking transformers, on [channels, tokens] tensors per sample (row-major).

/// A kernel-1 conv1d call: input [batch, inChannels, tokens] -> output [batch, outChannels, tokens].
public struct Conv1DShape: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var outChannels: Int
    public var tokens: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, tokens: Int) {
        precondition(batch > 0 && inChannels > 0 && outChannels > 0 && tokens > 0)
        (self.batch, self.inChannels, self.outChannels, self.tokens) = (batch, inChannels, outChannels, tokens)
    }
}

/// output[b] = weight · input[b] (+ bias per output channel); weight is [outChannels, inChannels].
@_specialize(where T == Float)
public func conv1dForward<T: EngineScalar>(_ s: Conv1DShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
                                           weight: UnsafePointer<T>, bias: UnsafePointer<T>?) {
    for b in 0..<s.batch {
        let out = output + b * s.outChannels * s.tokens
        T.gemm(transposeA: false, transposeB: false, m: s.outChannels, n: s.tokens, k: s.inChannels,
               alpha: 1, a: weight, lda: s.inChannels, b: input + b * s.inChannels * s.tokens, ldb: s.tokens,
               beta: 0, c: out, ldc: s.tokens)
        if let bias {
            for o in 0..<s.outChannels { for n in 0..<s.tokens { out[o * s.tokens + n] += bias[o] } }
        }
    }
}

/// dWeight += Σ_b dOutput[b] · input[b]ᵀ, dBias += Σ_b,n dOutput, dInput[b] = weightᵀ · dOutput[b]
/// (overwritten; nil when the input needs no gradient).
@_specialize(where T == Float)
public func conv1dBackward<T: EngineScalar>(_ s: Conv1DShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
                                            dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
                                            weight: UnsafePointer<T>) {
    for b in 0..<s.batch {
        let dOut = dOutput + b * s.outChannels * s.tokens
        T.gemm(transposeA: false, transposeB: true, m: s.outChannels, n: s.inChannels, k: s.tokens,
               alpha: 1, a: dOut, lda: s.tokens, b: input + b * s.inChannels * s.tokens, ldb: s.tokens,
               beta: 1, c: dWeight, ldc: s.inChannels)
        if let dBias {
            for o in 0..<s.outChannels { for n in 0..<s.tokens { dBias[o] += dOut[o * s.tokens + n] } }
        }
        if let dInput {
            T.gemm(transposeA: true, transposeB: false, m: s.inChannels, n: s.tokens, k: s.outChannels,
                   alpha: 1, a: weight, lda: s.inChannels, b: dOut, ldb: s.tokens,
                   beta: 0, c: dInput + b * s.inChannels * s.tokens, ldc: s.tokens)
        }
    }
}

/// output[b, c] = mean over n of input[b, c, n]: `count` rows of `tokens` values.
@_specialize(where T == Float)
public func tokenMeanForward<T: EngineScalar>(rows: Int, tokens: Int, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>) {
    for r in 0..<rows {
        var sum: T = 0
        for n in 0..<tokens { sum += input[r * tokens + n] }
        output[r] = sum / T(tokens)
    }
}

/// dInput[b, c, n] = dOutput[b, c] / tokens (overwritten).
@_specialize(where T == Float)
public func tokenMeanBackward<T: EngineScalar>(rows: Int, tokens: Int, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>) {
    for r in 0..<rows {
        let g = dOutput[r] / T(tokens)
        for n in 0..<tokens { dInput[r * tokens + n] = g }
    }
}

/// Spiking self-attention's products for one call: q, k, v and the output [batch, heads·width,
/// tokens], the map [batch, heads, tokens, tokens]. Head h is channels h·width ..< (h+1)·width, as
/// the reference code's `reshape(..., N, heads, width)` splits them.
public struct AttentionShape: Hashable, Sendable {
    public var batch: Int
    public var heads: Int
    public var width: Int
    public var tokens: Int
    public var scale: Double

    public init(batch: Int, heads: Int, width: Int, tokens: Int, scale: Double) {
        precondition(batch > 0 && heads > 0 && width > 0 && tokens > 0)
        (self.batch, self.heads, self.width, self.tokens, self.scale) = (batch, heads, width, tokens, scale)
    }

    var headValues: Int { width * tokens }
    var mapValues: Int { tokens * tokens }
}

/// attn = scale · qᵀk per head ([tokens, tokens], no softmax); output = v · attnᵀ, i.e.
/// output[d, n] = Σ_m attn[n, m] v[d, m].
@_specialize(where T == Float)
public func attentionForward<T: EngineScalar>(_ s: AttentionShape, output: UnsafeMutablePointer<T>, attention: UnsafeMutablePointer<T>,
                                              q: UnsafePointer<T>, k: UnsafePointer<T>, v: UnsafePointer<T>) {
    let n = s.tokens
    for head in 0..<(s.batch * s.heads) {
        let (offset, map) = (head * s.headValues, attention + head * s.mapValues)
        T.gemm(transposeA: true, transposeB: false, m: n, n: n, k: s.width, alpha: T(s.scale), a: q + offset, lda: n,
               b: k + offset, ldb: n, beta: 0, c: map, ldc: n)
        T.gemm(transposeA: false, transposeB: true, m: s.width, n: n, k: n, alpha: 1, a: v + offset, lda: n,
               b: map, ldb: n, beta: 0, c: output + offset, ldc: n)
    }
}

/// dv = dOutput · attn, dAttn = dOutputᵀ · v (in `mapWork`, one head's map), dq = scale · k · dAttnᵀ,
/// dk = scale · q · dAttn; dq, dk, dv overwritten.
@_specialize(where T == Float)
public func attentionBackward<T: EngineScalar>(_ s: AttentionShape, dQ: UnsafeMutablePointer<T>, dK: UnsafeMutablePointer<T>,
                                               dV: UnsafeMutablePointer<T>, mapWork: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>,
                                               attention: UnsafePointer<T>, q: UnsafePointer<T>, k: UnsafePointer<T>, v: UnsafePointer<T>) {
    let n = s.tokens
    let scale = T(s.scale)
    for head in 0..<(s.batch * s.heads) {
        let (offset, map) = (head * s.headValues, attention + head * s.mapValues)
        T.gemm(transposeA: false, transposeB: false, m: s.width, n: n, k: n, alpha: 1, a: dOutput + offset, lda: n,
               b: map, ldb: n, beta: 0, c: dV + offset, ldc: n)
        T.gemm(transposeA: true, transposeB: false, m: n, n: n, k: s.width, alpha: 1, a: dOutput + offset, lda: n,
               b: v + offset, ldb: n, beta: 0, c: mapWork, ldc: n)
        T.gemm(transposeA: false, transposeB: true, m: s.width, n: n, k: n, alpha: scale, a: k + offset, lda: n,
               b: mapWork, ldb: n, beta: 0, c: dQ + offset, ldc: n)
        T.gemm(transposeA: false, transposeB: false, m: s.width, n: n, k: n, alpha: scale, a: q + offset, lda: n,
               b: mapWork, ldb: n, beta: 0, c: dK + offset, ldc: n)
    }
}

/// SDSA's column sums: sums[r] = Σ_n k[r, n] v[r, n] over `rows` = batch · channels rows of `tokens`.
@_specialize(where T == Float)
public func columnSumForward<T: EngineScalar>(rows: Int, tokens: Int, sums: UnsafeMutablePointer<T>, k: UnsafePointer<T>,
                                              v: UnsafePointer<T>) {
    for r in 0..<rows {
        var sum: T = 0
        for n in 0..<tokens { sum += k[r * tokens + n] * v[r * tokens + n] }
        sums[r] = sum
    }
}

/// dk[r, n] = dSums[r] v[r, n], dv[r, n] = dSums[r] k[r, n] (overwritten).
@_specialize(where T == Float)
public func columnSumBackward<T: EngineScalar>(rows: Int, tokens: Int, dK: UnsafeMutablePointer<T>, dV: UnsafeMutablePointer<T>,
                                               dSums: UnsafePointer<T>, k: UnsafePointer<T>, v: UnsafePointer<T>) {
    for r in 0..<rows {
        for n in 0..<tokens {
            dK[r * tokens + n] = dSums[r] * v[r * tokens + n]
            dV[r * tokens + n] = dSums[r] * k[r * tokens + n]
        }
    }
}

/// SDSA's gate: output[r, n] = q[r, n] · spikes[r].
@_specialize(where T == Float)
public func gateForward<T: EngineScalar>(rows: Int, tokens: Int, output: UnsafeMutablePointer<T>, q: UnsafePointer<T>,
                                         spikes: UnsafePointer<T>) {
    for r in 0..<rows { for n in 0..<tokens { output[r * tokens + n] = q[r * tokens + n] * spikes[r] } }
}

/// dq[r, n] = dOutput[r, n] spikes[r], dSpikes[r] = Σ_n dOutput[r, n] q[r, n] (overwritten).
@_specialize(where T == Float)
public func gateBackward<T: EngineScalar>(rows: Int, tokens: Int, dQ: UnsafeMutablePointer<T>, dSpikes: UnsafeMutablePointer<T>,
                                          dOutput: UnsafePointer<T>, q: UnsafePointer<T>, spikes: UnsafePointer<T>) {
    for r in 0..<rows {
        var sum: T = 0
        for n in 0..<tokens {
            dQ[r * tokens + n] = dOutput[r * tokens + n] * spikes[r]
            sum += dOutput[r * tokens + n] * q[r * tokens + n]
        }
        dSpikes[r] = sum
    }
}
