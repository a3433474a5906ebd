import Profiles

/// A conv1d with a window: input [batch, inChannels, tokens] -> output [batch, outChannels, outTokens],
/// weight [outChannels, inChannels / groups, kernel], zero padding on both ends, as PyTorch's nn.Conv1d.
/// Direct loops, no im2col: the kernel allocates nothing, so its memory declaration is the input kept
/// for the weight gradient and the weight itself (kernel-1 convs keep their GEMM in `conv1dForward`).
public struct Conv1DWindowShape: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var outChannels: Int
    public var tokens: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var groups: Int

    public init(_ conv: ConvSpec, batch: Int, tokens: Int) {
        precondition(batch > 0 && tokens > 0 && conv.kernel > 0 && conv.stride > 0 && conv.groups > 0)
        precondition(conv.inChannels % conv.groups == 0 && conv.outChannels % conv.groups == 0, "groups divide the channels")
        (self.batch, inChannels, outChannels, self.tokens) = (batch, conv.inChannels, conv.outChannels, tokens)
        (kernel, stride, padding, groups) = (conv.kernel, conv.stride, conv.padding, conv.groups)
        precondition(outTokens > 0, "the kernel fits the padded tokens")
    }

    public var outTokens: Int { (tokens + 2 * padding - kernel) / stride + 1 }

    /// The output positions o whose input position o * stride - padding + k lies inside 0..<tokens.
    func valid(tap k: Int) -> Range<Int> {
        let shift = k - padding
        let first = shift >= 0 ? 0 : (-shift + stride - 1) / stride
        let last = (tokens - 1 - shift) >= 0 ? (tokens - 1 - shift) / stride + 1 : 0
        return first..<max(first, min(outTokens, last))
    }
}

/// output[b, o, n] = bias[o] + Σ_{c in o's group, k} weight[o, c, k] input[b, c, n stride - padding + k].
@_specialize(where T == Float)
public func conv1dWindowForward<T: EngineScalar>(_ s: Conv1DWindowShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
                                                 weight: UnsafePointer<T>, bias: UnsafePointer<T>?) {
    let (inPerGroup, outPerGroup, outTokens) = (s.inChannels / s.groups, s.outChannels / s.groups, s.outTokens)
    let taps = (0..<s.kernel).map { s.valid(tap: $0) }
    for b in 0..<s.batch {
        for o in 0..<s.outChannels {
            let out = output + (b * s.outChannels + o) * outTokens
            let start = bias?[o] ?? 0
            for n in 0..<outTokens { out[n] = start }
            let firstIn = (o / outPerGroup) * inPerGroup
            for c in 0..<inPerGroup {
                let x = input + (b * s.inChannels + firstIn + c) * s.tokens
                for k in 0..<s.kernel {
                    let w = weight[(o * inPerGroup + c) * s.kernel + k]
                    for n in taps[k] { out[n] += w * x[n * s.stride - s.padding + k] }
                }
            }
        }
    }
}

/// dWeight += Σ_b,n dOutput[b, o, n] input[b, c, n stride - padding + k], dBias += Σ_b,n dOutput,
/// dInput (overwritten; nil when the input needs no gradient) = the transposed convolution of dOutput.
@_specialize(where T == Float)
public func conv1dWindowBackward<T: EngineScalar>(_ s: Conv1DWindowShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
                                                  dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>,
                                                  weight: UnsafePointer<T>) {
    let (inPerGroup, outPerGroup, outTokens) = (s.inChannels / s.groups, s.outChannels / s.groups, s.outTokens)
    let taps = (0..<s.kernel).map { s.valid(tap: $0) }
    dInput?.update(repeating: 0, count: s.batch * s.inChannels * s.tokens)
    for b in 0..<s.batch {
        for o in 0..<s.outChannels {
            let dOut = dOutput + (b * s.outChannels + o) * outTokens
            if let dBias { for n in 0..<outTokens { dBias[o] += dOut[n] } }
            let firstIn = (o / outPerGroup) * inPerGroup
            for c in 0..<inPerGroup {
                let row = (b * s.inChannels + firstIn + c) * s.tokens
                for k in 0..<s.kernel {
                    let index = (o * inPerGroup + c) * s.kernel + k
                    var dw: T = 0
                    for n in taps[k] { dw += dOut[n] * input[row + n * s.stride - s.padding + k] }
                    dWeight[index] += dw
                    if let dInput {
                        let w = weight[index]
                        for n in taps[k] { dInput[row + n * s.stride - s.padding + k] += w * dOut[n] }
                    }
                }
            }
        }
    }
}
