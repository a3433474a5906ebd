import ArgumentParser
import Reports
import MemoryModel
import Planner
import Profiles

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Plan one training step: every tensor saved for backward, the peak, and the peak by role.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var batchOption: BatchOption
    @OptionGroup var strategyOption: StrategyOption
    @OptionGroup var runtimeOption: RuntimeOption

    @Option(help: OutputFormat.help)
    var format: OutputFormat = .table

    @Flag(help: "Also list every layer with its inferred input and output shapes.")
    var layers = false

    @Option(help: "Round each tensor as an allocator would: exact, jemalloc or cuda.")
    var allocator: AllocatorRounding = .exact

    @Flag(help: "With --format json, also list every planned allocation and free in order (bytes, layer, tensor, phase).")
    var events = false

    @Option(help: "How many of the largest tensors live at the peak to list per strategy (table and markdown; default 8 for one strategy, none for several).")
    var top: Int?

    func validate() throws {
        if let top, top < 0 { throw ValidationError("--top must be 0 or more, got \(top)") }
        if events && format != .json { throw ValidationError("--events lists the allocation stream in JSON: add --format json") }
    }

    func run() throws {
        var profile = try options.loadProfile()
        if let dtype = options.dtype { profile.dtype = dtype }
        let strategies = try strategyOption.strategies()
        let plannerOptions = Planner.Options(batch: batchOption.batch, timesteps: options.timesteps,
                                             segment: strategyOption.segment, rounding: allocator,
                                             runtime: runtimeOption.runtime, dtype: options.dtype, cpuThreads: runtimeOption.plannedCPUThreads)
        let (plans, skipped) = try reportingErrors { () throws -> ([MemoryPlan], [(Strategy, String)]) in
            if !strategyOption.isAll,
               let reason = strategies[0].notApplicableReason(profile) ?? runtimeOption.runtime.notModelledReason(strategies[0], profile) {
                throw PlannerError.notApplicable(strategy: strategies[0], reason: reason)
            }
            let result = try Planner.planAll(profile, strategies: strategies, options: plannerOptions)
            return (result.plans, result.notApplicable)
        }
        let batch = batchOption.batch ?? profile.batch
        let timesteps = options.timesteps ?? profile.timesteps
        let layerRows = layers ? LayerRow.rows(profile) : nil
        switch format {
        case .json:
            print(try Formatting.json(PlanJSON(profile: profile, runtime: runtimeOption.runtime, cpuThreads: runtimeOption.plannedCPUThreads, batch: batch, timesteps: timesteps, rounding: allocator,
                                               plans: plans, notApplicable: skipped, layers: layerRows, events: events), kind: .plan))
        case .table, .markdown:
            let report = PlanText(profile: profile, runtime: runtimeOption.runtime, cpuThreads: runtimeOption.plannedCPUThreads, batch: batch, timesteps: timesteps, rounding: allocator, plans: plans,
                                  notApplicable: skipped, layers: layerRows, top: top, markdown: format == .markdown)
            print(report.render())
        }
    }
}

/// The table and Markdown renderings of a plan.
struct PlanText {
    var profile: Profile
    var runtime: Runtime
    /// pytorch-cpu: the threads oneDNN's scratchpads were sized for.
    var cpuThreads: Int?
    var batch: Int
    var timesteps: Int
    var rounding: AllocatorRounding
    var plans: [MemoryPlan]
    var notApplicable: [(Strategy, String)]
    var layers: [LayerRow]?
    /// Tensors to list per strategy; nil: 8 for one plan, none for several, since five tables
    /// of tensors would bury the summary.
    var top: Int?
    var markdown: Bool

    /// In Markdown a blank line ends a table: without it, the line below renders as a table row.
    func table(_ table: TextTable) -> String { markdown ? table.markdown() + "\n" : table.text() }

    func heading(_ text: String) -> String { markdown ? "### " + text : text }

    func render() -> String {
        var sections: [String] = []
        let title = "\(profile.name): batch \(batch), T \(timesteps), \(profile.dtype.rawValue), \(rounding.rawValue) bytes (\(profile.sourcePath))"
        sections.append((markdown ? "## " + title : title) + "\n" + "runtime \(runtime.rawValue): \(runtime.summary)" + (cpuThreads.map { ", \($0) threads" } ?? ""))
        if let layers {
            var t = TextTable(["layer", "kind", "input", "output", "params"], alignments: [.left, .left, .right, .right, .right])
            for row in layers { t.add([row.path, row.kind, row.input.description, row.output.description, "\(row.parameters)"]) }
            sections.append(heading("Layers and inferred shapes (per sample, per timestep)") + "\n" + table(t))
        }
        if !plans.isEmpty {
            var summary = TextTable(["strategy", "peak", "held for backward", "persistent", "peak at"],
                                    alignments: [.left, .right, .right, .right, .left])
            var compute = TextTable(["strategy", "forward GFLOP", "recompute GFLOP", "recompute / forward"])
            for plan in plans {
                let name = plan.strategy.rawValue + (plan.segment.map { " k=\($0)" } ?? "")
                summary.add([name, Formatting.bytes(plan.peakBytes), Formatting.bytes(plan.activationBytes),
                             Formatting.bytes(plan.persistentBytes), plan.sweep.peakPhase?.description ?? "-"])
                let extra = plan.forwardFlops > 0 ? Formatting.percent(plan.recomputeFlops / plan.forwardFlops) : "-"
                compute.add([name, Formatting.gflops(plan.forwardFlops), Formatting.gflops(plan.recomputeFlops), extra])
            }
            sections.append(heading("Peak of one training step") + "\n" + table(summary))
            if runtime == .pytorchCUDA {
                var gpu = TextTable(["strategy", "allocated", "reserved", "ratio", "+ cuDNN, context", "GPU total"])
                for plan in plans {
                    let e = CUDAMemoryEstimate.estimate(plan, profile: profile)
                    gpu.add([plan.strategy.rawValue, Formatting.bytes(e.peakAllocatedBytes), Formatting.bytes(e.peakReservedBytes),
                             ByteCount.formatFixed(e.reservedOverAllocated, digits: 2) + "x",
                             Formatting.bytes(e.cudnnWorkspaceBytes + e.contextBytes), Formatting.bytes(e.totalBytes)])
                }
                sections.append(heading("On the GPU: PyTorch's caching allocator replayed (cuBLAS workspaces inside)") + "\n" + table(gpu))
            }
            sections.append(heading("Compute per step") + "\n" + table(compute))

            let unit = 1024.0 * 1024.0
            var roles = TextTable(["strategy"] + TensorRole.allCases.map(\.shortLabel))
            for plan in plans {
                roles.add([plan.strategy.rawValue] + TensorRole.allCases.map {
                    ByteCount.formatFixed(Double(plan.bytesByRoleAtPeak[$0]) / unit, digits: 2)
                })
            }
            sections.append(heading("At the peak, by role (MiB)") + "\n" + table(roles))

            let listed = top ?? (plans.count == 1 ? 8 : 0)
            for plan in plans where listed > 0 {
                var live = TextTable(["tensor live at the peak", "role", "shape", "bytes"], alignments: [.left, .left, .right, .right])
                for tensor in plan.tensorsLiveAtPeak.prefix(listed) {
                    live.add([Formatting.elide(tensor.descriptor.label, to: 40), tensor.descriptor.role.shortLabel,
                              tensor.descriptor.shape.description,
                              Formatting.bytes(rounding.roundedBytes(tensor.bytes))])
                }
                let saved = plan.savedTensors
                let savedBytes = saved.reduce(0) { $0 + rounding.roundedBytes($1.bytes) }
                let which = plans.count > 1 ? ": \(plan.strategy.rawValue)" : ""
                sections.append(heading("Largest tensors live at the peak" + which) + "\n" + table(live) +
                                "\n" + Formatting.wrap("\(saved.count) tensors saved for backward over the step, \(Formatting.bytes(savedBytes)) summed, not all live at once (--format json lists them)", indent: ""))
            }
        }
        if !notApplicable.isEmpty {
            let lines = notApplicable.map { Formatting.wrap((markdown ? "- " : "  ") + "\($0.0.rawValue): \($0.1)") }
            sections.append((markdown ? "Not applicable:" : "Not applicable to this profile:") + "\n" + lines.joined(separator: "\n"))
        }
        return sections.joined(separator: "\n\n")
    }
}
