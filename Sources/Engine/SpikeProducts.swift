import CKernels
import Foundation

/// The convolution products that skip zero inputs (`snn_sparse_conv.h`): the forward product and the
/// weight gradient of a stride-1, ungrouped Float convolution, computed from the input's nonzeros
/// instead of a dense im2col GEMM. Every conv after the first reads spikes (0 or 1), or spikes
/// average-pooled, which are mostly zeros: each nonzero input then costs k x k weight rows of Cout
/// multiply-adds, so the work follows the firing rate. The input gradient stays a dense GEMM.
///
/// Whether a call takes the path is decided from the call's input, counted exactly (one pass over
/// the batch, cheap beside the product): the nonzeros' work against the dense GEMM's in the cost
/// model below. Any input gives the dense product's value (each term is multiplied by the input's
/// value; for spikes the products are exact), up to the order of the additions.
///
/// Memory: inside a training step the weight's [K, Cout] transpose (or the weight gradient's,
/// accumulated, then added into dW) is the conv's panel (`SpikeStepPanels`), a tracked tensor the
/// trainer allocates with the parameters and the plan declares (`SpikePanel`), so the `snnmem`
/// runtime's predicted peak still equals the measured one. One work area per lane (the index of a
/// sample's nonzeros; its output gradient transposed), and the panel of a call outside a step, lie in
/// the calling thread's scratch, mapped outside jemalloc as the GEMM's packing buffers are and like
/// them not tensors. `SNNMEM_SPIKE_GEMM=off` runs the dense GEMM everywhere (for A/B measurements and
/// tests); the panels are still allocated, so the plan does not depend on the environment.
public enum SpikeProducts {
    /// When a convolution takes the path.
    public enum Mode: Sendable {
        /// Never: every product on the dense GEMM (SNNMEM_SPIKE_GEMM=off).
        case off
        /// Where the cost model says the input's nonzeros cost less than the dense GEMM (the default).
        case whenCheaper
        /// Wherever the kernels apply, whatever the input (tests of the kernels on small batches).
        case always
    }

    /// `.off` when the environment variable SNNMEM_SPIKE_GEMM is `off` (or `0`), else `.whenCheaper`
    /// (unset, empty, `on` or `1`; any other value is `environmentProblem`, which engine commands refuse).
    public static let environmentMode: Mode = {
        let value = ProcessInfo.processInfo.environment["SNNMEM_SPIKE_GEMM"]?.lowercased()
        return value == "off" || value == "0" ? .off : .whenCheaper
    }()

    /// Why SNNMEM_SPIKE_GEMM cannot be honoured (a value other than on, off, 1, 0), nil when it can:
    /// a typo would otherwise measure the path that was meant to be switched off.
    public static var environmentProblem: String? {
        guard let raw = ProcessInfo.processInfo.environment["SNNMEM_SPIKE_GEMM"],
              !["", "on", "off", "1", "0"].contains(raw.lowercased()) else { return nil }
        return "environment variable SNNMEM_SPIKE_GEMM=\(raw) is not a switch snnmem knows: set it to off (every convolution "
            + "on the dense GEMM) or on, or unset it (the spike products where they are cheaper)"
    }

    /// The mode now. Tests and benchmarks switch it with `withMode`.
    nonisolated(unsafe) public private(set) static var mode = environmentMode

    /// Whether convolutions may take the path now.
    public static var enabled: Bool { mode != .off }

    /// Runs `body` in `mode`, restoring the previous one after. Not for concurrent use: the setting
    /// is process-wide, as `GEMMBackend.current`.
    public static func withMode<R>(_ mode: Mode, _ body: () throws -> R) rethrows -> R {
        let previous = Self.mode
        Self.mode = mode
        defer { Self.mode = previous }
        return try body()
    }

    /// What the convolutions did since the process started (or `resetStatistics`): calls that
    /// counted their input, and those that took the path; nonzeros among the counted inputs.
    public struct Statistics: Equatable, Sendable {
        public var forwardCalls = 0, forwardSparseCalls = 0
        public var weightGradientCalls = 0, weightGradientSparseCalls = 0
        public var countedInputs = 0, nonzeroInputs = 0

        /// Fraction of nonzeros among the counted inputs (nil before any count).
        public var density: Double? { countedInputs == 0 ? nil : Double(nonzeroInputs) / Double(countedInputs) }
    }

    /// Updated by the thread that calls the convolutions (the lanes do not touch it).
    nonisolated(unsafe) public private(set) static var statistics = Statistics()

    public static func resetStatistics() { statistics = Statistics() }

    /// The kernels' shape for `s`, nil where they do not apply (stride, groups, Cout not a multiple of 16).
    static func kernelShape(_ s: Conv2DShape) -> snn_sparse_conv_shape? {
        guard s.stride == 1, s.groups == 1 else { return nil }
        var shape = snn_sparse_conv_shape(in_channels: s.inChannels, height: s.height, width: s.width,
                                          out_channels: s.outChannels, kernel: s.kernel, padding: s.padding)
        return snn_sparse_conv_supports(&shape) ? shape : nil
    }

    // The cost model, in the dense GEMM's multiply-adds. Measured on the 2-core AMD EPYC (Zen 5,
    // AVX-512), one thread, CIFARNet's conv2 (64 -> 128 channels, 32x32) with random spikes at 5-30%
    // density, against im2col + snn_sgemm (README, "Speed"): a nonzero's multiply-add costs
    // `nonzeroCost` dense ones (its weight rows come from L2, one FMA a cycle where the GEMM's panels
    // keep two busy), and every element the path indexes, transposes or adds back (each sample's
    // input and output, the weight panel) about `elementCost`.
    static let nonzeroCost = 2.5
    static let elementCost = 80.0

    /// Whether the kernels take the shape (the planner's `SpikePanel.shape` declares a panel for exactly these).
    public static func takes(_ s: Conv2DShape) -> Bool { kernelShape(s) != nil }

    /// Whether the path is cheaper than the dense GEMM for `nonzeros` nonzero inputs in the batch.
    /// `panelMade`: the call transposes the weight (or adds its gradient's panel into dW) itself; a
    /// panel kept over a training step is made once for all the step's calls, as the dense GEMM packs
    /// the weight at every call, and is not counted.
    static func isCheaper(_ s: Conv2DShape, nonzeros: Int, panelMade: Bool) -> Bool {
        let k2 = Double(s.kernel * s.kernel), cout = Double(s.outChannels)
        let K = Double(s.groupColumnRows), plane = Double(s.outHeight * s.outWidth), batch = Double(s.batch)
        let dense = batch * cout * K * plane
        let indexed = batch * (Double(s.inChannels * s.height * s.width) + cout * plane) + (panelMade ? K * cout : 0)
        let sparse = nonzeroCost * Double(nonzeros) * k2 * cout + elementCost * indexed
        return sparse < dense
    }

    /// Counts the batch's nonzero inputs and decides; nil when the path does not apply.
    static func decide(_ s: Conv2DShape, input: UnsafePointer<Float>, forward: Bool, panelKept: Bool) -> snn_sparse_conv_shape? {
        guard mode != .off, let shape = kernelShape(s) else { return nil }
        let nonzeros = snn_count_nonzero(input, s.inputCount)
        let cheaper = mode == .always || isCheaper(s, nonzeros: nonzeros, panelMade: !panelKept)
        statistics.countedInputs += s.inputCount
        statistics.nonzeroInputs += nonzeros
        if forward {
            statistics.forwardCalls += 1
            if cheaper { statistics.forwardSparseCalls += 1 }
        } else {
            statistics.weightGradientCalls += 1
            if cheaper { statistics.weightGradientSparseCalls += 1 }
        }
        return cheaper ? shape : nil
    }

    @inline(__always)
    static func aligned(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }

    /// The calling thread's scratch: a [rows, Cout] panel (none for rows 0), then `areas` work areas.
    struct Scratch {
        let panel: UnsafeMutablePointer<Float>
        let work: UnsafeMutableRawPointer
        let workBytes: Int

        init?(_ shape: snn_sparse_conv_shape, panelRows rows: Int, areas: Int) {
            var shape = shape
            workBytes = SpikeProducts.aligned(snn_sparse_conv_work_bytes(&shape))
            let panelBytes = SpikeProducts.aligned(rows * shape.out_channels * MemoryLayout<Float>.size)
            guard let base = snn_sparse_conv_scratch(panelBytes + areas * workBytes) else { return nil }
            panel = base.assumingMemoryBound(to: Float.self)
            work = base + panelBytes
        }

        func area(_ i: Int) -> UnsafeMutableRawPointer { work + i * workBytes }
    }

    // MARK: Panels kept over a training step

    /// The panels of the step running now (`withStepPanels`), nil outside a step.
    nonisolated(unsafe) static var current: SpikeStepPanels?

    /// Runs one training step's forward and backward (`body`), in which the weights do not change:
    /// each conv with a panel in `panels` transposes its weight once for all its forward calls (T
    /// timesteps, recomputations) and accumulates its weight gradient in the transposed panel over all
    /// its backward calls, added into dW when `body` returns (or before the conv's next forward).
    /// Outside it, and for a conv without a panel, every call makes its own panel in the thread's
    /// scratch. The trainer's panels are tracked tensors in the plan (`SpikePanel`); calls nested in
    /// a step of the same panels run in it.
    public static func withStepPanels<R>(_ panels: SpikeStepPanels, _ body: () throws -> R) rethrows -> R {
        if current === panels { return try body() }
        let previous = current
        current = panels
        defer {
            panels.flushAll()
            current = previous
        }
        return try body()
    }

    /// Bytes of the calling thread's scratch (its lanes' work areas, and the panels of calls outside a step).
    public static var scratchBytes: Int { snn_sparse_conv_scratch_bytes() }

    /// The kept panel for `weight` ([rows, Cout]) of a conv the kernels take, nil outside a step. Inside
    /// one every such conv has its panel (the plan declares one per conv of this shape): a conv without
    /// would take weight-sized scratch outside the plan, so that is a programmer's mistake.
    static func stepPanel(_ weight: UnsafePointer<Float>, rows: Int, columns: Int) -> SpikeStepPanels.Panel? {
        guard let current else { return nil }
        guard let panel = current.panel(for: weight, rows: rows, columns: columns) else {
            preconditionFailure("a conv the spike products take ran in a training step without its declared weight panel ([\(rows), \(columns)])")
        }
        return panel
    }

    /// Adds a gradient panel into its target and marks it empty.
    static func flush(_ entry: SpikeStepPanels.Panel) {
        if case .gradient(let target) = entry.content {
            addPanel(entry.values, rows: entry.rows, columns: entry.columns, into: target)
        }
        entry.content = .nothing
    }

    /// weight[co][k] += panel[k][co], split over the lanes.
    static func addPanel(_ panel: UnsafePointer<Float>, rows: Int, columns: Int, into weight: UnsafeMutablePointer<Float>) {
        parts(rows) { range in snn_add_transposed(panel, rows, columns, range.lowerBound, range.count, weight) }
    }

    /// Row ranges of a [rows, ...] matrix for the lanes: two parts a lane, claimed in turn.
    @inline(__always)
    static func parts(_ rows: Int, _ body: (Range<Int>) -> Void) {
        let count = 2 * KernelLanes.count, step = (rows + count - 1) / count
        KernelLanes.runItems(count, threads: KernelLanes.count) { part in
            let range = min(part * step, rows)..<min((part + 1) * step, rows)
            if !range.isEmpty { body(range) }
        }
    }

    /// Forward through the path: output = W * im2col(input) (+ bias) for every sample, no workspace.
    /// False (nothing written) when the call does not take it: the caller runs the dense GEMM.
    static func forward(_ s: Conv2DShape, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) -> Bool {
        let K = s.groupColumnRows, cout = s.outChannels, slots = min(KernelLanes.count, s.batch)
        let kept = mode == .off || kernelShape(s) == nil ? nil : stepPanel(weight, rows: K, columns: cout)
        guard let shape = decide(s, input: input, forward: true, panelKept: kept != nil) else { return false }
        guard let scratch = Scratch(shape, panelRows: kept == nil ? K : 0, areas: slots) else { return false }
        let panel: UnsafeMutablePointer<Float>
        if let kept, kept.content == .transpose {
            panel = kept.values
        } else {
            if let kept { flush(kept) }
            panel = kept?.values ?? scratch.panel
            parts(cout) { rows in
                snn_transpose(weight + rows.lowerBound * K, rows.count, K, K, panel + rows.lowerBound, cout)
            }
            kept?.content = .transpose
        }
        let inSample = s.inChannels * s.height * s.width, plane = s.outHeight * s.outWidth
        withUnsafePointer(to: shape) { shape in
            KernelLanes.runItemsWithSlots(s.batch, slots: slots) { b, slot in
                let out = output + b * cout * plane
                _ = snn_sparse_conv_forward(shape, input + b * inSample, panel, out, Int.max, scratch.area(slot))
                if let bias {
                    for co in 0..<cout {
                        let row = out + co * plane, value = bias[co]
                        for i in 0..<plane { row[i] += value }
                    }
                }
            }
        }
        return true
    }

    /// The weight gradient of one backward call through the path: `prepare` indexes a sample in a
    /// work area, `accumulate` adds its terms to rows of the [K, Cout] gradient panel, `finish` adds
    /// the panel into dW, or leaves that to the end of the step when the panel is kept over it.
    struct WeightGradient {
        let shape: snn_sparse_conv_shape
        let scratch: Scratch
        let panel: UnsafeMutablePointer<Float>
        let kept: Bool
        let rows: Int
        let outChannels: Int
        let inSample: Int
        let outSample: Int

        init?(_ s: Conv2DShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
              areas: Int) {
            let entry = SpikeProducts.mode == .off || SpikeProducts.kernelShape(s) == nil
                ? nil : SpikeProducts.stepPanel(weight, rows: s.groupColumnRows, columns: s.outChannels)
            guard let shape = SpikeProducts.decide(s, input: input, forward: false, panelKept: entry != nil) else { return nil }
            rows = s.groupColumnRows
            outChannels = s.outChannels
            guard let scratch = Scratch(shape, panelRows: entry == nil ? rows : 0, areas: areas) else { return nil }
            self.shape = shape
            self.scratch = scratch
            inSample = s.inChannels * s.height * s.width
            outSample = s.outChannels * s.outHeight * s.outWidth
            kept = entry != nil
            panel = entry?.values ?? scratch.panel
            if let entry, entry.content == .gradient(target: dWeight) { return }
            if let entry {
                SpikeProducts.flush(entry)
                entry.content = .gradient(target: dWeight)
            }
            let panel = panel, width = outChannels
            SpikeProducts.parts(rows) { range in
                (panel + range.lowerBound * width).update(repeating: 0, count: range.count * width)
            }
        }

        func prepare(sample b: Int, area: Int, input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>) {
            withUnsafePointer(to: shape) { shape in
                _ = snn_sparse_conv_prepare_weight_gradient(shape, input + b * inSample, dOutput + b * outSample, Int.max,
                                                            scratch.area(area))
            }
        }

        /// Adds the terms of the samples prepared in areas 0 ..< areas to the panel's rows `range`.
        func accumulate(areas: Int, rows range: Range<Int>) {
            withUnsafePointer(to: shape) { shape in
                snn_sparse_conv_weight_gradient(shape, scratch.work, scratch.workBytes, areas, range.lowerBound, range.count, panel)
            }
        }

        func finish(into dWeight: UnsafeMutablePointer<Float>) {
            if !kept { SpikeProducts.addPanel(panel, rows: rows, columns: outChannels, into: dWeight) }
        }
    }
}
