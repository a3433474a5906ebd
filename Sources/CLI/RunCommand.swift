import OutputFiles
import Allocator
import ArgumentParser
import Reports
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train K steps on random data through jemalloc and hold every measured byte against the plan.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var batchOption: BatchOption

    @Option(help: LogFormat.help)
    var format: LogFormat = .table

    @Option(help: ArgumentHelp("The training strategy: \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "strategy"))
    var strategy: String = "bptt"

    @Option(help: "Checkpoint segment length k (checkpoint only).")
    var segment: Int?

    @Option(help: "Training steps to run.")
    var steps: Int = 3

    @Option(name: .customLong("memory-limit"), help: "Stop with an out-of-memory error when tracked bytes would exceed this, e.g. 512MiB.")
    var memoryLimit: String?

    @Option(help: "Write the measured trace (JSON) to this file.")
    var trace: String?

    @Option(help: "Seed for weights and data.")
    var seed: UInt64 = 1

    func validate() throws {
        guard Strategy(rawValue: strategy) != nil else {
            throw ValidationError("unknown strategy '\(strategy)': use one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        try checkStepCount(steps)
        if let memoryLimit { _ = try parseSize(memoryLimit, option: "--memory-limit") }
        if segment != nil && strategy != "checkpoint" { throw ValidationError("--segment applies to --strategy checkpoint only") }
    }

    func run() throws {
        if let trace { try reportingErrors { try AtomicOutput.checkFileTarget(trace) } }
        let profile = try options.loadProfile()
        let strategy = Strategy(rawValue: strategy)!
        let limit = try memoryLimit.map { try parseSize($0, option: "--memory-limit") }
        let table = format == .table
        let progress = ProgressBar(total: steps, label: "\(profile.name) \(strategy.rawValue)")
        progress.begin("step 1")
        defer { progress.finish() }
        let result = try reportingErrors {
            try MemoryRun.measure(profile: profile, strategy: strategy, batch: batchOption.batch, timesteps: options.timesteps,
                                  segment: segment, steps: steps, memoryLimit: limit, seed: seed) { done, total, step in
                if table {
                    if done == 1 { progress.printLine("step      loss   step ms") }
                    progress.printLine(String(done).padding(toLength: 4, withPad: " ", startingAt: 0)
                          + ByteCount.formatFixed(step.loss, digits: 4).leftPadded(10) + ByteCount.formatFixed(step.stepMs, digits: 1).leftPadded(10))
                }
                progress.update(done, detail: "loss \(ByteCount.formatFixed(step.loss, digits: 4))")
            }
        }
        progress.finish()
        if let trace {
            try reportingErrors { try TraceFile.write(result.trace, to: trace) }
        }
        if table {
            print(RunReport.table(result, profile: profile, tracePath: trace))
        } else {
            print(try Formatting.json(RunJSON(result, profile: profile), kind: .run))
        }
        if let refused = result.outOfMemory {
            // The table says where it stopped; the error line says why, once, for scripts and logs.
            throw CLIFailure(message: "error: out of memory: \(refused); the plan's peak is \(Formatting.bytes(result.predictedPeakBytes))",
                             exitCode: 3)
        }
    }
}

/// `snnmem run --format json`. After an out-of-memory stop nothing was measured: the measured
/// figures are null, not the bytes live when the request was refused.
struct RunJSON: Codable {
    var profile: String
    var runtime: String
    var strategy: String
    var batch: Int
    var timesteps: Int
    var segment: Int?
    var predictedPeakBytes: Int
    var predictedAllocatedPeakBytes: Int
    var measuredPeakBytes: Int?
    var measuredAllocatedPeakBytes: Int?
    var jemallocPeakBytes: Int?
    var untrackedBytes: Int?
    var predictedHeldForBackwardBytes: Int
    var measuredHeldForBackwardBytes: Int?
    var firstDifference: String?
    var stepMs: [Double]
    var loss: [Double]
    var outOfMemory: Bool
    var outOfMemoryAt: String?
    /// The Float GEMM the step ran on: "avx512" or "avx2" (snnmem's, with OpenBLAS for the products
    /// its tiles fit badly) or "openblas".
    var gemm: String
    /// The instruction set of the Float elementwise kernels (neurons, batch norm): "avx512", "avx2" or "baseline".
    var elementwise: String
    /// Whether the convolutions skipped their inputs' zeros (`SpikeProducts`), and how often.
    var spikeProducts: SpikeProductsJSON

    init(_ r: MemoryRunResult, profile: Profile) {
        self.profile = profile.name
        runtime = Runtime.snnmem.rawValue
        strategy = r.strategy.rawValue
        batch = r.batch
        timesteps = r.timesteps
        segment = r.segment
        predictedPeakBytes = r.predictedPeakBytes
        predictedAllocatedPeakBytes = r.predictedAllocatedPeakBytes
        predictedHeldForBackwardBytes = r.predictedActivationBytes
        let measured = r.outOfMemory == nil
        measuredPeakBytes = measured ? r.measuredPeakBytes : nil
        measuredAllocatedPeakBytes = measured ? r.measuredAllocatedPeakBytes : nil
        jemallocPeakBytes = measured ? r.jemallocPeakBytes : nil
        untrackedBytes = measured ? r.untrackedBytes : nil
        measuredHeldForBackwardBytes = measured ? r.measuredActivationBytes : nil
        firstDifference = r.comparison?.firstDifference
        stepMs = r.stepMs
        loss = r.loss
        outOfMemory = r.outOfMemory != nil
        outOfMemoryAt = r.outOfMemory.map(\.description)
        gemm = GEMMBackend.current.rawValue
        elementwise = ElementwiseKernels.level
        spikeProducts = SpikeProductsJSON(SpikeProducts.statistics, panelBytes: r.spikePanelBytes)
    }
}

/// `spikeProducts` of `snnmem run --format json`: whether the path was allowed (SNNMEM_SPIKE_GEMM), the
/// conv calls that counted their input and those that took the path, forward and weight gradient, and
/// the fraction of nonzeros among the inputs counted (null when none was).
struct SpikeProductsJSON: Codable {
    var enabled: Bool
    var forwardCalls: Int
    var forwardSparseCalls: Int
    var weightGradientCalls: Int
    var weightGradientSparseCalls: Int
    var inputDensity: Double?
    /// Bytes of the convs' weight panels kept over a step: tracked tensors (role workspace, `weight.panel`)
    /// allocated with the parameters, in the predicted and the measured peak.
    var panelBytes: Int
    /// Bytes mapped outside jemalloc for the convolutions' work areas (the step's thread; not tensors).
    var scratchBytes: Int

    init(_ s: SpikeProducts.Statistics, panelBytes: Int) {
        enabled = SpikeProducts.enabled
        forwardCalls = s.forwardCalls
        forwardSparseCalls = s.forwardSparseCalls
        weightGradientCalls = s.weightGradientCalls
        weightGradientSparseCalls = s.weightGradientSparseCalls
        inputDensity = s.density
        self.panelBytes = panelBytes
        scratchBytes = SpikeProducts.scratchBytes
    }
}

enum RunReport {
    /// ", SNNMEM_ISA=avx2" where the environment lowered the instruction set, so a forced timing is never
    /// read as the processor's own.
    static var forcedLevel: String {
        guard let requested = try? InstructionSet.requested(), requested < InstructionSet.processor else { return "" }
        return ", SNNMEM_ISA=\(requested.name)"
    }

    static func table(_ r: MemoryRunResult, profile: Profile, tracePath: String?) -> String {
        if let refused = r.outOfMemory { return stoppedTable(r, refused: refused, profile: profile, tracePath: tracePath) }
        var t = TextTable(["", "bytes", "difference"], alignments: [.left, .right, .right])
        func diff(_ a: Int, _ b: Int) -> String { a == b ? "0 B" : (a > b ? "+" : "") + Formatting.bytes(a - b) }
        t.add(["predicted peak (planner, requested bytes)", Formatting.bytes(r.predictedPeakBytes), ""])
        t.add(["measured peak (tracked, requested bytes)", Formatting.bytes(r.measuredPeakBytes), diff(r.measuredPeakBytes, r.predictedPeakBytes)])
        t.add(["predicted peak (jemalloc size classes)", Formatting.bytes(r.predictedAllocatedPeakBytes), ""])
        t.add(["measured peak (tracked, allocated bytes)", Formatting.bytes(r.measuredAllocatedPeakBytes),
               diff(r.measuredAllocatedPeakBytes, r.predictedAllocatedPeakBytes)])
        t.add(["jemalloc thread peak", Formatting.bytes(r.jemallocPeakBytes), diff(r.jemallocPeakBytes, r.measuredAllocatedPeakBytes)])
        t.add(["held for backward: predicted", Formatting.bytes(r.predictedActivationBytes), ""])
        t.add(["held for backward: measured", Formatting.bytes(r.measuredActivationBytes),
               diff(r.measuredActivationBytes, r.predictedActivationBytes)])
        var lines = ["", title(r, profile: profile), t.text()]
        let sortedMs = r.stepMs.sorted()
        if !sortedMs.isEmpty {
            lines.append("median step \(ByteCount.formatFixed(sortedMs[sortedMs.count / 2], digits: 1)) ms over \(sortedMs.count) steps"
                         + " (GEMM: \(GEMMBackend.current.rawValue), elementwise: \(ElementwiseKernels.level)\(forcedLevel))")
        }
        lines.append(spikeLine(SpikeProducts.statistics, panelBytes: r.spikePanelBytes))
        lines.append(Formatting.wrap("The jemalloc figure is the thread's peak growth during a step plus the tracked bytes live "
            + "when it was reset; its difference from the tracked allocated peak is memory outside the tensors "
            + "(the engine's small arrays and dictionaries, Swift runtime metadata), within jemalloc's peak "
            + "granularity of about 64 KiB. GEMM packing buffers are mapped outside jemalloc, once per thread.", indent: ""))
        if let difference = r.comparison?.firstDifference {
            lines.append("PLAN AND MEASUREMENT DIFFER at \(difference)")
        } else if r.comparison != nil {
            lines.append("every allocation and free of the first step matched the plan")
        }
        if let tracePath { lines.append("trace written to \(tracePath)") }
        return lines.joined(separator: "\n")
    }

    /// Whether the convolutions skipped their inputs' zeros (`SpikeProducts`).
    /// `panelBytes`: the convs' weight panels, tracked tensors in both peaks (allocated whether or not the path runs).
    static func spikeLine(_ s: SpikeProducts.Statistics, panelBytes: Int) -> String {
        let panels = "the convs' weight panels (\(Formatting.bytes(panelBytes))) are tracked tensors in both peaks"
        guard SpikeProducts.enabled else {
            return "spike products: off (SNNMEM_SPIKE_GEMM=off), every conv ran the dense GEMM; \(panels), allocated all the same"
        }
        let density = s.density.map { ", inputs \(ByteCount.formatFixed(100 * $0, digits: 1))% nonzero" } ?? ""
        return "spike products: \(s.forwardSparseCalls) of \(s.forwardCalls) conv forward calls and \(s.weightGradientSparseCalls) of "
            + "\(s.weightGradientCalls) weight gradients skipped the zeros of their input\(density); \(panels); "
            + "their work areas \(Formatting.bytes(SpikeProducts.scratchBytes)), mapped outside jemalloc"
    }

    static func title(_ r: MemoryRunResult, profile: Profile) -> String {
        "\(profile.name) \(r.strategy.rawValue): batch \(r.batch), T \(r.timesteps)" + (r.segment.map { ", k \($0)" } ?? "")
            + ", runtime snnmem (this engine)"
    }

    /// A step stopped by the memory limit measured no peak: the table shows what the plan needs,
    /// the limit, and what was live when the request was refused, and nothing as if measured.
    static func stoppedTable(_ r: MemoryRunResult, refused: OutOfMemory, profile: Profile, tracePath: String?) -> String {
        var t = TextTable(["", "bytes"], alignments: [.left, .right])
        t.add(["predicted peak (planner, requested bytes)", Formatting.bytes(r.predictedPeakBytes)])
        t.add(["memory limit (--memory-limit)", Formatting.bytes(refused.limitBytes)])
        t.add(["live when refused (tracked, requested bytes)", Formatting.bytes(refused.liveBytes)])
        t.add(["refused request", Formatting.bytes(refused.requestedBytes)])
        var lines = ["", title(r, profile: profile), t.text(),
                     Formatting.wrap("STOPPED, out of memory: \(refused). "
                                     + "Nothing was measured; a limit of \(Formatting.bytes(r.predictedPeakBytes)) or more fits the plan.", indent: "")]
        if let tracePath { lines.append("trace up to the refusal written to \(tracePath)") }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
