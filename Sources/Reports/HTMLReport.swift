import MemoryModel

/// One self-contained page for a set of schedules: the summary side by side at the top, then per
/// schedule its timeline chart, the peak's moment and the tensors live at the peak.
public enum HTMLReport {
    /// The timeline charts' size in the page: narrow enough that at 800 px wide, scaled to fit,
    /// their 12 px labels stay about 10 px; at 1280 px they are drawn 1:1.
    static let chartWidth = 960, chartHeight = 440

    public static func render(title: String, comparison: ComparisonReport?, schedules: [(planned: Timeline, measured: Timeline?)]) -> String {
        let summary = ReportSummary(title: title, comparison: comparison, schedules: schedules)
        let ids = sectionIDs(schedules.map { $0.planned.strategy })
        // Header and summary stay compact so the first chart fits a 1280x800 screen whole; the links
        // sit in a div beside the subtitle (a <nav> inside a <p> would end the paragraph).
        let links = schedules.count > 1 ? "<nav>" + zip(ids, schedules).map { id, schedule in
            "<a href=\"#\(id)\">\(Markup.escape(schedule.planned.strategy))</a>"
        }.joined() + "</nav>" : ""
        var body = ["<header>", "<h1>\(Markup.escape(title))</h1>",
                    "<div class=\"meta\">\(Markup.escape(subtitle(comparison, schedules)))\(links)</div>", "</header>"]
        body.append("<section id=\"summary\">")
        body.append("<h2>Peak memory of a training step</h2>")
        if let comparison {
            body.append(HTMLPage.table(comparisonTable(comparison)))
            body.append("<p class=\"meta\">predicted and measured: tracked bytes as requested; jemalloc: its thread peak, size classes and "
                        + "bookkeeping included; held for bwd: the most bytes of tensors saved for backward live at one moment; "
                        + "time: median step time against bptt's; grad diff: largest gradient difference against the reference, "
                        + "relative per tensor.</p>")
            for entry in comparison.strategies {
                if let difference = entry.firstDifference {
                    body.append("<p class=\"warning\">Plan and measurement differ for \(Markup.escape(entry.strategy)): \(Markup.prose(difference))</p>")
                }
            }
            if !comparison.notApplicable.isEmpty {
                body.append("<p class=\"meta\">Not applicable to this profile: " + comparison.notApplicable.map {
                    "\(Markup.escape($0.strategy)) (\(Markup.prose($0.reason)))"
                }.joined(separator: "; ") + ".</p>")
            }
        } else {
            body.append(HTMLPage.table(summary.peakTable()))
            body.append("<p class=\"meta\">Role columns: bytes live at the \(schedules.contains { $0.measured != nil } ? "measured (else planned)" : "planned") peak.</p>")
        }
        // One y axis for every chart on the page, so schedules compare by eye: a chart scaled to its
        // own peak makes a schedule ten times smaller look the same height.
        let sharedTop = TimelineChart.highestBytes(schedules.flatMap { [$0.planned] + ($0.measured.map { [$0] } ?? []) })
        if schedules.count > 1 {
            body.append("<p class=\"meta\">The charts below share one y axis, up to the highest live bytes of any schedule here ("
                        + Markup.escape(ByteCount.format(sharedTop)) + "), so their heights compare directly.</p>")
        }
        body.append("</section>")
        for (index, schedule) in schedules.enumerated() {
            body.append(section(id: ids[index], schedule: schedule, summary: summary.schedules[index], yMaxBytes: sharedTop))
        }
        return HTMLPage.document(title: title, body: body)
    }

    static func subtitle(_ comparison: ComparisonReport?, _ schedules: [(planned: Timeline, measured: Timeline?)]) -> String {
        let measured = schedules.filter { $0.measured != nil }.count
        var parts = ["\(schedules.count) schedule\(schedules.count == 1 ? "" : "s")",
                     measured == 0 ? "planned only" : "\(measured) measured"]
        if let comparison {
            parts.insert("batch \(comparison.batch), T \(comparison.timesteps), \(comparison.steps) step\(comparison.steps == 1 ? "" : "s") per strategy", at: 0)
        }
        return parts.joined(separator: " · ") + " · written by snnmem"
    }

    /// Unique anchors, even for two schedules of one strategy (checkpoint at two segment lengths).
    static func sectionIDs(_ strategies: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return strategies.map { strategy in
            let base = "schedule-" + Markup.identifier(strategy)
            seen[base, default: 0] += 1
            return seen[base]! == 1 ? base : "\(base)-\(seen[base]!)"
        }
    }

    /// Memory, time and exactness in one row per strategy.
    static func comparisonTable(_ comparison: ComparisonReport) -> TextTable {
        var table = TextTable(["strategy", "predicted peak", "measured peak", "diff", "jemalloc peak", "held for bwd", "step ms", "time",
                               "grad diff", "loss", "plan"],
                              alignments: [.left, .right, .right, .right, .right, .right, .right, .right, .right, .right, .left])
        for e in comparison.strategies {
            let time = comparison.timeRatio(e).map { ($0 >= 1 ? "+" : "") + ComparisonReport.percent($0 - 1) } ?? "-"
            let reference = e.gradientReference.map { $0 == "bptt" ? " vs bptt" : " vs bptt cut" } ?? ""
            table.add([e.strategy + (e.segment.map { " k=\($0)" } ?? ""), ByteCount.format(e.predictedPeakBytes), ByteCount.format(e.measuredPeakBytes),
                       ComparisonReport.signedBytes(e.measuredPeakBytes - e.predictedPeakBytes), ByteCount.format(e.jemallocPeakBytes),
                       ByteCount.format(e.measuredHeldForBackwardBytes), ByteCount.formatFixed(e.stepMs, digits: 1), time,
                       (e.gradientMaxRelDiff.map(ComparisonReport.scientific) ?? "-") + reference, ByteCount.formatFixed(e.loss, digits: 4),
                       e.firstDifference == nil ? "matched" : "DIFFERS"])
        }
        return table
    }

    static func section(id: String, schedule: (planned: Timeline, measured: Timeline?), summary: ReportSummary.Schedule, yMaxBytes: Int) -> String {
        let shown = summary.measured ?? summary.planned
        var lines = ["<section id=\"\(id)\">", "<h2>\(Markup.escape(summary.strategy))</h2>"]
        lines.append("<figure>" + TimelineChart.render(planned: schedule.planned, measured: schedule.measured, width: chartWidth,
                                                       height: chartHeight, yMaxBytes: yMaxBytes, namespace: false) + "</figure>")
        lines.append("<p>" + Markup.escape(peakSentence(shown, timeline: schedule.measured ?? schedule.planned)) + "</p>")
        if let measured = summary.measured {
            let difference = measured.peakBytes - summary.planned.peakBytes
            lines.append("<p class=\"meta\">" + Markup.escape("Planned peak \(ByteCount.format(summary.planned.peakBytes)) in "
                + "\(summary.planned.peakPhase ?? "-"); measured - planned = \(ComparisonReport.signedBytes(difference)).") + "</p>")
        }
        let total = max(1, shown.peakBytes)
        lines.append("<h3>Largest tensors live at the \(summary.measured == nil ? "planned" : "measured") peak</h3>")
        let rows = shown.topLiveTensors.enumerated().map { index, tensor in
            [String(index + 1), Markup.escape(tensor.label), HTMLPage.swatch(Palette.colour(tensor.role)) + Markup.escape(tensor.role.label),
             Markup.escape(ByteCount.format(tensor.bytes)), ByteCount.formatFixed(Double(tensor.bytes) / Double(total) * 100, digits: 1) + "%"]
        }
        lines.append(HTMLPage.table(headers: ["#", "tensor", "role", "bytes", "of peak"], numeric: [true, false, false, true, true], rows: rows,
                                    cellClass: [1: "label"]))
        let liveCount = (schedule.measured ?? schedule.planned).tensorsLiveAtPeak.count
        if liveCount > rows.count {
            lines.append("<p class=\"meta\">\(liveCount - rows.count) smaller tensors not listed.</p>")
        }
        lines.append("</section>")
        return lines.joined(separator: "\n")
    }

    static func peakSentence(_ peak: ReportSummary.Peak, timeline: Timeline) -> String {
        guard let index = peak.peakEventIndex else { return "No allocations in this step." }
        let event = timeline.events[index]
        return "Peak \(ByteCount.format(peak.peakBytes)) (\(Markup.grouped(peak.peakBytes)) B) at event \(index) of \(peak.eventCount)"
            + (peak.peakTimeMs.map { ", \(Markup.milliseconds($0)) into the step" } ?? "")
            + ", during \(peak.peakPhase ?? "-"), when \(event.label) (\(event.role.label)) was allocated."
    }
}
