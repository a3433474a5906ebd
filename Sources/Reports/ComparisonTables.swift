import MemoryModel

/// The comparison as two tables (memory; time and exactness), each within 80 columns.
extension ComparisonReport {
    static func bytes(_ value: Int) -> String { ByteCount.format(value) }

    static func signedBytes(_ value: Int) -> String { value == 0 ? "0 B" : (value > 0 ? "+" : "") + ByteCount.format(value) }

    static func percent(_ ratio: Double) -> String { ByteCount.formatFixed(ratio * 100, digits: 0) + "%" }

    static func scientific(_ value: Double) -> String {
        guard value > 0 else { return "0" }
        var exponent = 0
        var mantissa = value
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        return ByteCount.formatFixed(mantissa, digits: 1) + "e" + String(exponent)
    }

    public func memoryTable() -> TextTable {
        var table = TextTable(["strategy", "predicted", "measured", "diff", "jemalloc", "held for bwd"])
        for e in strategies {
            table.add([e.strategy + (e.segment.map { " k=\($0)" } ?? ""), Self.bytes(e.predictedPeakBytes), Self.bytes(e.measuredPeakBytes),
                       Self.signedBytes(e.measuredPeakBytes - e.predictedPeakBytes), Self.bytes(e.jemallocPeakBytes),
                       Self.bytes(e.measuredHeldForBackwardBytes)])
        }
        return table
    }

    public func computeTable() -> TextTable {
        var table = TextTable(["strategy", "step ms", "time", "recompute", "grad diff", "vs", "loss"],
                              alignments: [.left, .right, .right, .right, .right, .left, .right])
        for e in strategies {
            let time = timeRatio(e).map { ($0 >= 1 ? "+" : "") + Self.percent($0 - 1) } ?? "-"
            table.add([e.strategy, ByteCount.formatFixed(e.stepMs, digits: 1), time, Self.percent(e.recomputeOverForward),
                       e.gradientMaxRelDiff.map(Self.scientific) ?? "-", e.gradientReference.map { $0 == "bptt" ? "bptt" : "bptt cut" } ?? "",
                       ByteCount.formatFixed(e.loss, digits: 4)])
        }
        return table
    }

    public func render(markdown: Bool) -> String {
        // In Markdown a blank line ends a table; without it the note below becomes a table row.
        func table(_ t: TextTable) -> String { markdown ? t.markdown() + "\n" : t.text() }
        let title = "\(profile): batch \(batch), T \(timesteps), \(steps) step\(steps == 1 ? "" : "s") per strategy, runtime snnmem (this engine)"
        var sections = [markdown ? "## " + title : title]
        sections.append((markdown ? "### " : "") + "Peak memory of a training step\n" + table(memoryTable()) + "\n"
                        + "predicted and measured: tracked bytes as requested; jemalloc: its thread peak, size classes and\n"
                        + "untracked bookkeeping included; held for bwd: the most bytes saved for backward live at once")
        sections.append((markdown ? "### " : "") + "Time and exactness\n" + table(computeTable()) + "\n"
                        + "time: median step time against bptt's; recompute: the planner's recomputed FLOPs over the\n"
                        + "forward pass's; grad diff: largest gradient difference against the reference, relative per tensor")
        let mismatches = strategies.filter { $0.firstDifference != nil }
        sections.append(mismatches.isEmpty
            ? "Every allocation and free of every schedule's first step matched the plan."
            : mismatches.map { "PLAN AND MEASUREMENT DIFFER for \($0.strategy): \($0.firstDifference!)" }.joined(separator: "\n"))
        if !notApplicable.isEmpty {
            sections.append("Not applicable to this profile:\n" + notApplicable.map { (markdown ? "- " : "  ") + "\($0.strategy): \($0.reason)" }
                .joined(separator: "\n"))
        }
        return sections.joined(separator: "\n\n")
    }
}
