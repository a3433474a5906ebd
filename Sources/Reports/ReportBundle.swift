import OutputFiles
import Foundation
import MemoryModel

/// The files of a report folder, for `AtomicOutput.writeFolder`: the page, its Markdown and JSON
/// summaries and the Chrome trace; or, for a sweep, its chart, tables and page.
public enum ReportBundle {
    public static func files(title: String, comparison: ComparisonReport?, schedules: [(planned: Timeline, measured: Timeline?)]) throws -> [String: Data] {
        let summary = ReportSummary(title: title, comparison: comparison, schedules: schedules)
        return [
            "report.html": Data(HTMLReport.render(title: title, comparison: comparison, schedules: schedules).utf8),
            "report.md": Data(summary.markdown().utf8),
            "report.json": try JSONDocument.data(summary, kind: .report),
            "trace.json": try ChromeTrace.json(schedules: schedules),
        ]
    }

    public static func sweepFiles(_ report: SweepReport) -> [String: Data] {
        let title = "\(report.profile): bytes held for backward against \(report.axis == "depth" ? "depth" : "T")"
        let measured = report.strategies.contains { $0.points.contains { $0.measuredHeldForBackwardBytes != nil } }
        let page = HTMLPage.document(title: title, body: [
            "<h1>\(Markup.escape(title))</h1>",
            "<p class=\"meta\">batch \(report.batch) · predicted by the planner for the \(Markup.escape(report.runtime)) runtime"
                + (measured ? ", measured by the engine" : "") + " · written by snnmem</p>",
            "<figure>" + ScalingChart.render(report, width: 960, height: 540, namespace: false) + "</figure>",
            HTMLPage.table(sweepTable(report)),
            "<p class=\"meta\">Bytes held for backward (the most saved-for-backward bytes live at one moment): predicted / measured "
                + "where measured; slope: fitted log-log growth (1: linear, 0: flat).</p>",
            report.notApplicable.isEmpty ? "" : "<p>Not applicable: "
                + report.notApplicable.map { Markup.escape($0.strategy) + " (" + Markup.prose($0.reason) + ")" }.joined(separator: "; ") + "</p>",
        ])
        return [
            "sweep.svg": Data(ScalingChart.svg(report).utf8),
            "sweep.md": Data((report.render(markdown: true) + "\n").utf8),
            // A SweepReport is numbers and strings with non-finite slopes written as strings:
            // encoding it cannot fail.
            "sweep.json": try! JSONDocument.data(report, kind: .sweep),
            "sweep.html": Data(page.utf8),
        ]
    }

    /// Predicted and measured bytes for every point, with both slopes.
    static func sweepTable(_ report: SweepReport) -> TextTable {
        let values = report.strategies.first?.points.map(\.value) ?? []
        let prefix = report.axis == "depth" ? "x" : "T="
        var table = TextTable(["strategy"] + values.map { "\(prefix)\($0)" } + ["slope", "measured slope"])
        for series in report.strategies {
            table.add([series.strategy] + values.map { value in
                guard let p = series.points.first(where: { $0.value == value }) else { return "-" }
                return ByteCount.format(p.heldForBackwardBytes) + (p.measuredHeldForBackwardBytes.map { " / " + ByteCount.format($0) } ?? "")
            } + [series.slope.map { ByteCount.formatFixed($0, digits: 2) } ?? "-",
                 series.measuredSlope.map { ByteCount.formatFixed($0, digits: 2) } ?? "-"])
        }
        return table
    }
}
