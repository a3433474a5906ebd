// Conv forward+backward throughput on CIFARNet's four conv shapes (k3 p1, batch 16), on both GEMM
// backends (snnmem's own SGEMM for this processor's level, AVX-512 or AVX2, and OpenBLAS), beside
// the raw GEMMs on the very shapes the kernels issue, so the cost of im2col/col2im, bias and the
// per-sample loop shows as the gap between the two; then the engine's GEMM shapes one by one
// (GEMMShapes.swift), the elementwise kernels, and the convolutions' spike products against the dense GEMMs.
// SNNMEM_ISA=avx2 measures as a processor without AVX-512 would. Build and run
// in release:
//   swift run -c release engine-kernel-benchmark [--iterations N] [--threads N] [--spikes-only]
import CGemm
import COpenBLAS
import Engine
import Foundation
import Profiles

struct Options {
    var iterations = 5
    var threads: Int?
    /// Only the last table, the spike products against the dense GEMMs.
    var spikesOnly = false

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            if flag == "--spikes-only" {
                spikesOnly = true
                continue
            }
            guard let value = rest.popFirst().flatMap(Int.init), value > 0 else {
                fatalError("usage: engine-kernel-benchmark [--iterations N] [--threads N] [--spikes-only]")
            }
            switch flag {
            case "--iterations": iterations = value
            case "--threads": threads = value
            default: fatalError("unknown option \(flag)")
            }
        }
    }
}

/// Best of `iterations` timed runs after one warm-up, in seconds (the minimum is the least disturbed
/// by the other processes on a shared 2-core machine).
func bestTime(iterations: Int, _ body: () -> Void) -> Double {
    body()
    let clock = ContinuousClock()
    var best = Double.infinity
    for _ in 0..<iterations {
        let elapsed = clock.measure(body)
        best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
    return best
}

func buffer(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    var rng = SeededRandom(seed: seed)
    RandomInput.fillUniform(UnsafeMutableBufferPointer(start: p, count: count), low: -1, high: 1, using: &rng)
    return p
}

func gflops(_ flops: Double, _ seconds: Double) -> String {
    String(format: "%7.1f", flops / seconds / 1e9)
}

let options = Options(CommandLine.arguments)
// OpenBLAS's threads for the columns where OpenBLAS threads one call itself (per-sample, batched).
// Selecting the AVX-512 GEMM drops OpenBLAS to one thread (see GEMMBackend), so they set it back.
let openBLASThreads = Int32(options.threads ?? Int(openblas_get_num_threads()))
func withOpenBLASThreads(_ body: () -> Double) -> Double {
    let previous = openblas_get_num_threads()
    openblas_set_num_threads(openBLASThreads)
    defer { openblas_set_num_threads(previous) }
    return body()
}
if !options.spikesOnly {
let coreType = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)"
print("OpenBLAS \(String(cString: openblas_get_corename())) core, \(openBLASThreads) threads, OPENBLAS_CORETYPE=\(coreType); best of \(options.iterations)")
// snnmem's own GEMM at this process's level (SNNMEM_ISA applied), if any.
let own: GEMMBackend? = GEMMBackend.avx512Supported ? .avx512 : GEMMBackend.avx2Supported ? .avx2 : nil
let ownName = own?.rawValue ?? "own"
print("processor level \(InstructionSet.processor.name), running at \(InstructionSet.ceiling.name)"
      + (InstructionSet.ceiling < InstructionSet.processor ? " (SNNMEM_ISA)" : "") + "; the engine's GEMM: \(GEMMBackend.preferred.rawValue)"
      + ", elementwise kernels: \(ElementwiseKernels.level)")
print("conv: the engine's kernels (im2col, GEMMs, col2im; samples over 2 lanes) on each GEMM backend. GEMM columns: the")
print("  same GEMMs alone; per-sample: one OpenBLAS call per sample as OpenBLAS threads it; 2 lanes: the per-sample calls")
print("  split over 2 threads, single-threaded each (the engine's scheme), OpenBLAS and snn_sgemm; batched: one OpenBLAS")
print("  GEMM over the whole batch's columns (N = B*Hout*Wout), which would need B samples' im2col as workspace.")
print("  GFLOP/s of forward + backward.")
print("shape                      | \(ownName.padding(toLength: 6, withPad: " ", startingAt: 0)) fwd  bwd ms | conv GF/s \(ownName.padding(toLength: 6, withPad: " ", startingAt: 0)) openblas | OpenBLAS per-sample 2 lanes batched | \(ownName) 2 lanes")

/// The engine's scheme: two kernel lanes, each GEMM call single-threaded.
func lanes(_ body: (Int) -> Void) {
    GEMMBackend.withOneThreadPerCall { KernelLanes.run(2, body) }
}

let batch = 16
let layers: [(cin: Int, cout: Int, size: Int)] = [(3, 64, 32), (64, 128, 32), (128, 256, 16), (256, 256, 8)]
for (index, layer) in layers.enumerated() {
    let shape = Conv2DShape(batch: batch, inChannels: layer.cin, outChannels: layer.cout, height: layer.size, width: layer.size,
                            kernel: 3, stride: 1, padding: 1)
    // The first conv reads the image: training never needs its input gradient.
    let needsInputGradient = index > 0
    let input = buffer(shape.inputCount, seed: 1), weight = buffer(shape.weightCount, seed: 2), bias = buffer(shape.outChannels, seed: 3)
    let output = buffer(shape.outputCount, seed: 4), dOutput = buffer(shape.outputCount, seed: 5)
    let dInput = buffer(shape.inputCount, seed: 6), dWeight = buffer(shape.weightCount, seed: 7), dBias = buffer(shape.outChannels, seed: 8)
    let workspace = buffer(shape.workspaceCount, seed: 9)
    let m = shape.outChannels, n = shape.outHeight * shape.outWidth, k = shape.inChannels * 9
    let batchColumns = buffer(batch * n * k, seed: 10), batchOutput = buffer(batch * n * m, seed: 11)

    func convTimes(_ backend: GEMMBackend) -> (forward: Double, backward: Double)? {
        guard backend.isSupported else { return nil }
        return GEMMBackend.withBackend(backend) {
            let forward = bestTime(iterations: options.iterations) {
                conv2dForward(shape, output: output, input: input, weight: weight, bias: bias, workspace: workspace)
            }
            let backward = bestTime(iterations: options.iterations) {
                conv2dBackward(shape, dInput: needsInputGradient ? dInput : nil, dWeight: dWeight, dBias: dBias, dOutput: dOutput,
                               input: input, weight: weight, workspace: workspace)
            }
            return (forward, backward)
        }
    }
    let fast = own.flatMap(convTimes), blas = convTimes(.openblas)!

    // The same GEMMs alone, on the same buffers: per sample, forward W[Cout, K] x col[K, N];
    // dWeight dOut[Cout, N] x col^T; dColumns W^T x dOut[Cout, N]; K = Cin*9, N = Hout*Wout.
    // `useOwn`: snnmem's own SGEMM (AVX-512 or AVX2) instead of OpenBLAS.
    func gemm(_ useOwn: Bool, _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
              _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        if useOwn && own == .avx512 {
            snn_sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        } else if useOwn {
            snn_sgemm_avx2(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        } else {
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                        1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
    func sampleForward(_ b: Int, _ slot: UnsafeMutablePointer<Float>, own: Bool = false) {
        gemm(own, false, false, m, n, k, weight, k, slot, n, 0, output + b * m * n, n)
    }
    func sampleBackward(_ b: Int, _ slot: UnsafeMutablePointer<Float>, _ dW: UnsafeMutablePointer<Float>, own: Bool = false) {
        gemm(own, false, true, m, k, n, dOutput + b * m * n, n, slot, n, 1, dW, k)
        if needsInputGradient {
            gemm(own, true, false, k, n, m, weight, k, dOutput + b * m * n, n, 0, slot, n)
        }
    }
    let perSample = withOpenBLASThreads { bestTime(iterations: options.iterations) {
        for b in 0..<batch { sampleForward(b, workspace) }
        for b in 0..<batch { sampleBackward(b, workspace, dWeight) }
    } }
    // Two lanes: lane 1 accumulates its dWeight into `bias`-free scratch (dInput's buffer, large enough here).
    func twoLanes(own: Bool) -> Double {
        bestTime(iterations: options.iterations) {
            lanes { lane in
                for b in stride(from: lane, to: batch, by: 2) { sampleForward(b, workspace + lane * shape.columnCount, own: own) }
            }
            lanes { lane in
                for b in stride(from: lane, to: batch, by: 2) {
                    sampleBackward(b, workspace + lane * shape.columnCount, lane == 0 ? dWeight : batchOutput, own: own)
                }
            }
        }
    }
    let batched = withOpenBLASThreads { bestTime(iterations: options.iterations) {
        let bn = Int32(batch * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), bn, Int32(k), 1, weight, Int32(k),
                    batchColumns, bn, 0, batchOutput, bn)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(k), bn, 1, batchOutput, bn,
                    batchColumns, bn, 1, dWeight, Int32(k))
        if needsInputGradient {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), bn, Int32(m), 1, weight, Int32(k),
                        batchOutput, bn, 0, batchColumns, bn)
        }
    } }

    let forwardFlops = 2 * Double(shape.forwardMultiplyAdds)
    let totalFlops = forwardFlops * (needsInputGradient ? 3 : 2)
    let name = "\(layer.cin)->\(layer.cout) @\(layer.size)x\(layer.size)\(needsInputGradient ? "" : " (no dX)")"
    let shown = fast ?? blas
    print(name.padding(toLength: 26, withPad: " ", startingAt: 0),
          "|", String(format: "%10.2f %7.2f", shown.forward * 1e3, shown.backward * 1e3), "|          ",
          fast.map { gflops(totalFlops, $0.forward + $0.backward) } ?? "      -", "", gflops(totalFlops, blas.forward + blas.backward),
          "|            ", gflops(totalFlops, perSample), "", gflops(totalFlops, twoLanes(own: false)), "", gflops(totalFlops, batched),
          "|          ", own != nil ? gflops(totalFlops, twoLanes(own: true)) : "      -")

    for p in [input, weight, bias, output, dOutput, dInput, dWeight, dBias, workspace, batchColumns, batchOutput] { p.deallocate() }
}

if let own { compareGEMMShapes(own: own, iterations: options.iterations) }

// vgg11's 512-channel convs on 4x4 and 2x2 maps at batch 16: the grouped GEMMs (the 16 samples' columns side
// by side, N = 256 or 64), one thread, snn_sgemm. Their weight gradient (512 x 4608, 9.4 MB, beyond L2) is
// updated over a short K per call, the case the micro-kernel's prefetch of its C tile is for.
if GEMMBackend.avx512Supported {
    print("\nvgg11's grouped GEMMs, batch 16, one thread (snn_sgemm), GFLOP/s: forward | weight gradient | input gradient")
    for (plane, name) in [(16, "512->512 @4x4"), (4, "512->512 @2x2")] {
        let m = 512, k = 512 * 9, n = batch * plane
        let weight = buffer(m * k, seed: 31), columns = buffer(k * n, seed: 32), out = buffer(m * n, seed: 33), dW = buffer(m * k, seed: 34)
        let flops = 2 * Double(m * n * k)
        let forward = bestTime(iterations: options.iterations) { snn_sgemm(false, false, m, n, k, 1, weight, k, columns, n, 0, out, n) }
        let weightGradient = bestTime(iterations: options.iterations) { snn_sgemm(false, true, m, k, n, 1, out, n, columns, n, 1, dW, k) }
        let inputGradient = bestTime(iterations: options.iterations) { snn_sgemm(true, false, k, n, m, 1, weight, k, out, n, 0, columns, n) }
        print(name.padding(toLength: 26, withPad: " ", startingAt: 0), "|", gflops(flops, forward), "|", gflops(flops, weightGradient),
              "|", gflops(flops, inputGradient))
        for p in [weight, columns, out, dW] { p.deallocate() }
    }
}

// Elementwise and per-channel kernels on CIFARNet's largest activation (16 x 128 x 32 x 32): memory-bound,
// so reported as nanoseconds per element. They also show that the Float paths run specialized code
// (an unspecialized generic loop costs tens of ns per element through witness-table calls).
do {
    let channels = 128, spatial = 32 * 32, count = batch * channels * spatial
    let x = buffer(count, seed: 11), v = buffer(count, seed: 12), spikes = buffer(count, seed: 13), h = buffer(count, seed: 14)
    let dS = buffer(count, seed: 15), dV = buffer(count, seed: 16), dX = buffer(count, seed: 17), y = buffer(count, seed: 18)
    let gamma = buffer(channels, seed: 19), beta = buffer(channels, seed: 20), mean = buffer(channels, seed: 21)
    let invstd = buffer(channels, seed: 22), runningMean = buffer(channels, seed: 23), runningVar = buffer(channels, seed: 24)
    let dGamma = buffer(channels, seed: 25), dBeta = buffer(channels, seed: 26)
    let lif = NeuronSpec(type: .lif, tau: 2, threshold: 1, reset: .hard, detachReset: false, surrogate: .atan, surrogateAlpha: 2)
    let bn = BatchNormShape(batch: batch, channels: channels, spatial: spatial)
    let timings: [(String, Double)] = [
        ("LIF forward", bestTime(iterations: options.iterations) {
            neuronForward(lif, count: count, spike: spikes, h: h, vNext: v, input: x, v: v)
        }),
        ("LIF backward (atan)", bestTime(iterations: options.iterations) {
            neuronBackward(lif, count: count, dInput: dX, dVPrevious: dV, dSpike: dS, dVNext: dV, h: h)
        }),
        ("batchnorm forward", bestTime(iterations: options.iterations) {
            batchNormForward(bn, output: y, saveMean: mean, saveInvstd: invstd, input: x, gamma: gamma, beta: beta,
                             runningMean: runningMean, runningVar: runningVar, updateRunningStatistics: false)
        }),
        ("batchnorm backward", bestTime(iterations: options.iterations) {
            batchNormBackward(bn, dInput: dX, dGamma: dGamma, dBeta: dBeta, dOutput: dS, input: x, gamma: gamma, mean: mean, invstd: invstd)
        }),
    ]
    print("\n16x128x32x32 (\(count) elements)")
    for (name, seconds) in timings {
        print(name.padding(toLength: 22, withPad: " ", startingAt: 0), String(format: "%7.2f ms  %6.2f ns/element", seconds * 1e3, seconds * 1e9 / Double(count)))
    }
}
}

// The convolutions' spike products (SpikeProducts) against the dense im2col GEMMs, on the bundled networks'
// conv shapes after the first (batch 16, 2 lanes), with random spikes at several densities (the fraction of
// ones; the bundled networks' conv inputs run 2-36% at the start of training, README "Speed"). One timed
// unit is a training step's share of one conv: a forward and a backward at each of 4 timesteps on the
// same input, inside `withStepPanels` (the weight transposed once for the 4, its gradient's panel added
// into dW once), reported per timestep; forward + backward, the input gradient (a dense GEMM either way)
// included. Where the ratio passes 1 the engine keeps the dense GEMM (its cost model decides per call).
do {
    let shapes: [(name: String, cin: Int, cout: Int, size: Int)] = [
        ("cifarnet conv2", 64, 128, 32), ("cifarnet conv3", 128, 256, 16), ("cifarnet conv4", 256, 256, 8),
        ("vgg11 conv4", 256, 256, 8), ("vgg11 conv6", 512, 512, 4), ("vgg11 conv8", 512, 512, 2),
    ]
    let densities = [0.03, 0.1, 0.2, 0.3, 0.4], batch = 16
    print("\nspike products against the dense GEMMs (batch 16, 2 lanes, fwd + bwd per timestep, ms): dense | "
          + densities.map { String(format: "%.0f%%: spikes (ratio)", 100 * $0) }.joined(separator: " | "))
    for layer in shapes {
        let s = Conv2DShape(batch: batch, inChannels: layer.cin, outChannels: layer.cout, height: layer.size, width: layer.size,
                            kernel: 3, padding: 1)
        let weight = buffer(s.weightCount, seed: 41), output = buffer(s.outputCount, seed: 42), dOutput = buffer(s.outputCount, seed: 43)
        let dInput = buffer(s.inputCount, seed: 44), dWeight = buffer(s.weightCount, seed: 45), workspace = buffer(s.workspaceCount, seed: 46)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: s.inputCount)
        // The conv's kept panel, [K, Cout], page-aligned as the trainer allocates it with the parameters.
        let panel = UnsafeMutableRawPointer.allocate(byteCount: s.weightCount * MemoryLayout<Float>.size, alignment: 4096)
            .bindMemory(to: Float.self, capacity: s.weightCount)
        let panels = SpikeStepPanels()
        panels.add(weight: weight, panel: panel, rows: s.inChannels * s.kernel * s.kernel, columns: s.outChannels)
        func fill(_ density: Double) {
            var rng = SeededRandom(seed: 47)
            for i in 0..<s.inputCount { input[i] = rng.uniform(0, 1) < density ? 1 : 0 }
        }
        func timestepMs(_ mode: SpikeProducts.Mode) -> Double {
            1e3 / 4 * bestTime(iterations: options.iterations) {
                SpikeProducts.withMode(mode) {
                    SpikeProducts.withStepPanels(panels) {
                        for _ in 0..<4 {
                            conv2dForward(s, output: output, input: input, weight: weight, bias: nil, workspace: workspace)
                        }
                        for _ in 0..<4 {
                            conv2dBackward(s, dInput: dInput, dWeight: dWeight, dBias: nil, dOutput: dOutput, input: input, weight: weight,
                                           workspace: workspace)
                        }
                    }
                }
            }
        }
        fill(densities[0])
        let dense = timestepMs(.off)
        var cells: [String] = []
        for density in densities {
            fill(density)
            let spikes = timestepMs(.always)
            cells.append(String(format: "%6.2f (%.2f)", spikes, spikes / dense))
        }
        print("\(layer.name) \(layer.cin)->\(layer.cout) @\(layer.size)x\(layer.size)".padding(toLength: 32, withPad: " ", startingAt: 0),
              String(format: "| %6.2f | ", dense) + cells.joined(separator: " | "))
        for p in [weight, output, dOutput, dInput, dWeight, workspace, input, panel] { p.deallocate() }
    }
}
