import MemoryModel
import Profiles

/// A float32 transposed convolution as PyTorch 2.15 runs it on an AVX-512 CPU (`mkldnn` backend,
/// oneDNN 3.13): what oneDNN books as scratchpad, which PyTorch allocates through its own allocator
/// around each call (python/LAYOUT-NOTES.md §9, `scripts/probe-convtranspose-cpu.py`).
///
/// - Forward (stride 2 or more): `brg_deconv`, which runs the backward-data brgemm convolution
///   (`brgconv_strided`) nested in it. Per thread it books a brgemm batch (4 KiB of 40-byte elements:
///   4120 B), the deconvolution's input copied with the rows and columns the kernel overhangs
///   ((k - 1 - p) / s each side without output padding) and all its channels, rounded up to 4096 floats, and a byte mask of
///   the output blocks (4096 B while there are at most 4096 of them); when the output width is not a
///   multiple of the stride also one output row buffer (the width rounded up to the stride, times the
///   stride and the output channels, rounded up to 4096 floats). Each booking carries 4096 B of
///   alignment, the nested scratchpad 128.
/// - Input gradient: `jit:avx512_core` backward-data, no scratchpad.
/// - Weight gradient: `jit:avx512_core` backward-weights on the convolution from the output gradient
///   to the input. Its `balance` splits the threads over samples and channel blocks to minimise an
///   estimate of each thread's memory traffic; every sample thread after the first accumulates a
///   float32 weight and bias gradient of its own (the bias sized by the input channels, padded to 16),
///   booked with 128 B of alignment, beside a page-aligned barrier (4096 + 4096 B) and 128 B.
/// Equal to what PyTorch allocated, event for event, in all 156 probed shapes the layout covers (1, 2
/// and 4 threads; Tests/PlannerTests/Fixtures/onednn); `notModelledReason` names what it does not cover.
public struct OneDNNDeconvolution: Hashable, Sendable {
    public var conv: ConvSpec
    /// One sample's [Cin, H, W] and [Cout, Hout, Wout].
    public var input: TensorShape
    public var output: TensorShape

    public init(conv: ConvSpec, input: TensorShape, output: TensorShape) {
        self.conv = conv
        self.input = input
        self.output = output
    }

    /// The pass whose scratchpad a step books.
    public enum Pass: String, Hashable, Sendable { case forward, weightGradient }

    static let block = 16  // float32 lanes of a zmm register
    static let page = 4096

    private static func roundUp(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b * b }
    private static func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }

    private var height: Int { input.dims[1] }
    private var width: Int { input.dims[2] }
    private var outHeight: Int { output.dims[1] }
    private var outWidth: Int { output.dims[2] }

    /// Why these rules do not describe this layer (whatever the batch), nil when they do.
    public var notModelledReason: String? {
        let (cin, cout, k, s, p) = (conv.inChannels, conv.outChannels, conv.kernel, conv.stride, conv.padding)
        if s < 2 {
            return "stride 1 (oneDNN's jit forward deconvolution, not measured)"
        }
        // The brgemm forward pads the output channels to its channel block (16, 32, 48 or 64, chosen by
        // an efficiency estimate): only 16 and multiples of 32 leave no padding whichever it picks. Other
        // input channel counts take 8-channel layouts and the AVX2 weight gradient.
        if cin % Self.block != 0 || !(cout == Self.block || cout % (2 * Self.block) == 0) {
            return "\(cin) -> \(cout) channels (modelled: input channels a multiple of 16, output channels 16 or a multiple of 32)"
        }
        if k > 10 || p > k / 2 {
            return "a \(k)x\(k) kernel with padding \(p) (modelled: kernels up to 10, padding up to half the kernel)"
        }
        if Self.ceilDiv(outHeight, s) * Self.ceilDiv(outWidth, s) > Self.page {
            return "a \(outHeight)x\(outWidth) output (its block mask outgrows 4096 bytes by a blocking heuristic)"
        }
        if outWidth % s != 0 && Self.roundUp(outWidth, s) * s * cout > Self.page {
            return "a \(outWidth)-wide output of \(cout) channels at stride \(s) (its row buffer's size follows a blocking heuristic)"
        }
        return nil
    }

    /// PyTorch's own `slow_conv_transpose2d` (column buffers, no oneDNN) takes a one-sample call with a
    /// kernel of 3 or less and at most 20480 input elements (`use_mkldnn` in ATen's Convolution.cpp).
    public func runsNativeKernel(samples: Int) -> Bool {
        samples == 1 && conv.kernel <= 3 && conv.inChannels * height * width <= 20480
    }

    /// Bytes of the pass's scratchpad on `samples` images; 0 when it books none.
    public func bytes(_ pass: Pass, samples: Int, threads: Int) -> Int {
        switch pass {
        case .forward: return forwardBytes(threads: threads)
        case .weightGradient: return weightGradientBytes(samples: samples, threads: threads)
        }
    }

    func forwardBytes(threads: Int) -> Int {
        let (cin, cout, k, s, p) = (conv.inChannels, conv.outChannels, conv.kernel, conv.stride, conv.padding)
        // Rows and columns the kernel overhangs before and after the input. The far side's padding comes
        // from the shapes, so an output padding (PyTorch's output_padding) shrinks it.
        let before = max(0, k - 1 - p) / s
        let afterRows = max(0, k - 1 - ((height - 1) * s + k - outHeight - p)) / s
        let afterColumns = max(0, k - 1 - ((width - 1) * s + k - outWidth - p)) / s
        let batchElements = 4120  // ceil(4096 / 40) brgemm batch elements of 40 bytes
        let inputCopy = 4 * Self.roundUp((height + before + afterRows) * (width + before + afterColumns) * cin, Self.page)
        var perThread = batchElements + inputCopy + Self.page  // + the mask
        var bookings = 3
        if outWidth % s != 0 {
            perThread += 4 * Self.roundUp(Self.roundUp(outWidth, s) * s * cout, Self.page)
            bookings += 1
        }
        return threads * perThread + bookings * Self.page + 128
    }

    func weightGradientBytes(samples: Int, threads: Int) -> Int {
        let sampleThreads = minibatchThreads(samples: samples, threads: threads)
        guard sampleThreads > 1 else { return 0 }
        let (cin, cout, k) = (conv.inChannels, conv.outChannels, conv.kernel)
        let reduction = (cin * cout * k * k + cin) * 4 * (sampleThreads - 1)
        return reduction + 128 + 2 * Self.page + 128
    }

    /// `balance` of the weight-gradient convolution (integer arithmetic as oneDNN does it): its input is
    /// the output gradient (Cout channels, Hout x Wout), its output the deconvolution's input (Cin, H x W).
    func minibatchThreads(samples mb: Int, threads: Int) -> Int {
        let (k, s) = (conv.kernel, conv.stride)
        let nbIC = Self.ceilDiv(conv.outChannels, Self.block), nbOC = Self.ceilDiv(conv.inChannels, Self.block)
        let (ih, iw, oh, ow) = (outHeight, outWidth, height, width)
        let rowReduction = oh > 9  // the 2-d harness also splits rows among the sample threads
        let (ihReduce, ohReduce) = rowReduction ? (ih, oh) : (1, 1)
        let (ihRest, ohRest) = rowReduction ? (1, 1) : (ih, oh)
        let ohThreads = max(1, ohReduce / 9)
        let b = Self.block
        func memory(_ m: Int, _ o: Int, _ i: Int) -> Int {
            let src = Self.ceilDiv(mb * ihReduce, m) * Self.ceilDiv(nbIC, i) * b * ihRest * iw / s / s
            let dst = Self.ceilDiv(mb * ohReduce, m) * Self.ceilDiv(nbOC, o) * b * ohRest * ow
            let weights = 8 * Self.ceilDiv(nbOC, o) * Self.ceilDiv(nbIC, i) * k * k * b * b
            return src + dst + weights
        }
        func compute(_ m: Int, _ o: Int, _ i: Int) -> Int {
            Self.ceilDiv(mb * ohReduce, m) * Self.ceilDiv(nbOC, o) * Self.ceilDiv(nbIC, i)
        }
        var candidates: [(Int, Int, Int)] = []
        for m in 1...max(1, min(threads, mb * ohThreads)) {
            let share = threads / m
            for o in stride(from: 1, through: min(share, nbOC), by: 1) { candidates.append((m, o, min(share / o, nbIC))) }
        }
        var best = (1, 1, 1)
        var leastMemory = memory(1, 1, 1)
        for c in candidates where memory(c.0, c.1, c.2) <= leastMemory { (best, leastMemory) = (c, memory(c.0, c.1, c.2)) }
        var leastCompute = compute(best.0, best.1, best.2)
        for c in candidates {
            let (mem, comp) = (memory(c.0, c.1, c.2), compute(c.0, c.1, c.2))
            if (comp <= leastCompute && Double(mem) < 1.1 * Double(leastMemory)) || 4 * comp <= 3 * leastCompute {
                (best, leastCompute) = (c, comp)
            }
        }
        var m = best.0
        if m > threads / 2 && m < threads { m = min(mb * ohThreads, threads) }
        return m
    }
}
