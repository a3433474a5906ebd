import Foundation
import MemoryModel

/// A sweep on log-log axes: bytes held for backward against T (or depth), one colour per
/// strategy, predictions as lines, measurements as squares, fitted slopes in the legend. On these
/// axes linear growth is a line of slope 1 and a flat schedule a horizontal line.
public enum ScalingChart {
    public static func svg(_ report: SweepReport, width: Int = 960, height: Int = 540) -> String {
        render(report, width: width, height: height, namespace: true)
    }

    static func render(_ report: SweepReport, width: Int, height: Int, namespace: Bool) -> String {
        let legend = legendLines(report)
        // The legend takes the width its longest line needs (estimated generously), the plot the rest.
        let legendWidth = legend.map { $0.indent + SVGCanvas.textWidth($0.text, size: $0.size) }.max() ?? 0
        let left = 92.0, right = Double(width) - 24 - legendWidth - 24, top = 44.0, bottom = Double(height) - 72
        var canvas = SVGCanvas(width: width, height: height)
        let axisName = report.axis == "depth" ? "depth (blocks per stage)" : "timesteps T"
        let title = "\(report.profile): bytes held for backward against \(report.axis == "depth" ? "depth" : "T"), batch \(report.batch)"
        canvas.text(SVGCanvas.fitting([title, "\(report.profile): bytes held for backward"], size: 15, width: Double(width) - left - 12),
                    x: left, y: 24, size: 15, weight: "600")

        let xs = Set(report.strategies.flatMap { $0.points.map(\.value) }.filter { $0 > 0 }).sorted()
        let ys = report.strategies.flatMap { $0.points.flatMap { [$0.heldForBackwardBytes, $0.measuredHeldForBackwardBytes ?? 0] } }.filter { $0 > 0 }
        // Log domains with a margin so the outermost points sit inside the frame.
        let xLow = log2(Double(xs.first ?? 1)) - 0.25, xHigh = log2(Double(xs.last ?? 1)) + 0.25
        let yLow = log2(Double(ys.min() ?? 1)) - 0.4, yHigh = log2(Double(ys.max() ?? 1)) + 0.4
        func x(_ value: Double) -> Double { left + (log2(value) - xLow) / max(1e-9, xHigh - xLow) * (right - left) }
        func y(_ bytes: Double) -> Double { bottom - (log2(bytes) - yLow) / max(1e-9, yHigh - yLow) * (bottom - top) }

        // y ticks at powers of two, thinned to about eight.
        let powers = Array(Int(yLow.rounded(.up))...max(Int(yLow.rounded(.up)), Int(yHigh.rounded(.down))))
        let every = max(1, (powers.count + 7) / 8)
        for power in powers where power % every == 0 {
            let yy = y(pow(2, Double(power)))
            canvas.line(x1: left, y1: yy, x2: right, y2: yy, stroke: Palette.grid)
            canvas.text(powerOfTwoLabel(power), x: left - 8, y: yy + 4, anchor: .end, size: 12)
        }
        var lastLabel = -Double.infinity
        for value in xs {
            let xx = x(Double(value))
            canvas.line(x1: xx, y1: top, x2: xx, y2: bottom, stroke: Palette.grid)
            if xx - lastLabel >= 28 {
                canvas.text(String(value), x: xx, y: bottom + 18, anchor: .middle, size: 12)
                lastLabel = xx
            }
        }
        canvas.line(x1: left, y1: top, x2: left, y2: bottom, stroke: Palette.axis)
        canvas.line(x1: left, y1: bottom, x2: right, y2: bottom, stroke: Palette.axis)
        canvas.text(axisName + " (log scale)", x: (left + right) / 2, y: bottom + 44, anchor: .middle, size: 12, fill: Palette.mutedText)
        let middle = (top + bottom) / 2
        canvas.text("bytes held for backward (log scale)", x: 18, y: middle, anchor: .middle, size: 12, fill: Palette.mutedText,
                    extra: " transform=\"rotate(-90 18 \(SVGCanvas.n(middle)))\"")

        for (position, series) in report.strategies.enumerated() {
            let colour = Palette.colour(strategy: series.strategy, position: position)
            let plotted = series.points.filter { $0.value > 0 && $0.heldForBackwardBytes > 0 }
            canvas.raw("<g class=\"series\" data-strategy=\"\(Markup.escape(series.strategy))\">")
            if !plotted.isEmpty {
                let d = plotted.enumerated().map { index, point in
                    (index == 0 ? "M" : "L") + "\(SVGCanvas.n(x(Double(point.value)))) \(SVGCanvas.n(y(Double(point.heldForBackwardBytes))))"
                }.joined()
                canvas.path(d, fill: "none", stroke: colour, width: 2.5, title: "\(series.strategy), predicted")
            }
            for point in plotted {
                let tip = "\(series.strategy) at \(report.axis == "depth" ? "depth" : "T") \(point.value): predicted \(ByteCount.format(point.heldForBackwardBytes))"
                    + (point.measuredHeldForBackwardBytes.map { ", measured \(ByteCount.format($0))" } ?? "")
                canvas.raw("<circle cx=\"\(SVGCanvas.n(x(Double(point.value))))\" cy=\"\(SVGCanvas.n(y(Double(point.heldForBackwardBytes))))\" r=\"3.5\" fill=\"\(colour)\">\(SVGCanvas.title(tip))</circle>")
                if let measured = point.measuredHeldForBackwardBytes, measured > 0 {
                    canvas.rect(x: x(Double(point.value)) - 5.5, y: y(Double(measured)) - 5.5, width: 11, height: 11, fill: "none",
                                extra: " stroke=\"\(colour)\" stroke-width=\"2\" class=\"measured\"", title: tip)
                }
            }
            canvas.raw("</g>")
        }

        let legendX = right + 24
        var legendY = top + 4
        canvas.raw("<g class=\"legend\">")
        for line in legend {
            switch line.key {
            case .none: break
            case .series(let colour):
                canvas.line(x1: legendX, y1: legendY - 4, x2: legendX + 22, y2: legendY - 4, stroke: colour, width: 2.5)
                canvas.raw("<circle cx=\"\(SVGCanvas.n(legendX + 11))\" cy=\"\(SVGCanvas.n(legendY - 4))\" r=\"3.5\" fill=\"\(colour)\"/>")
            case .measured:
                canvas.rect(x: legendX + 5.5, y: legendY - 9.5, width: 11, height: 11, fill: "none", extra: " stroke=\"\(Palette.text)\" stroke-width=\"2\"")
            }
            canvas.text(line.text, x: legendX + line.indent, y: legendY, size: line.size, weight: line.bold ? "600" : nil,
                        fill: line.muted ? Palette.mutedText : Palette.text)
            legendY += line.advance
        }
        canvas.raw("</g>")
        return canvas.document(label: title, namespace: namespace)
    }

    /// One line of the legend, top to bottom: its key, text, indent from the legend's left edge and
    /// the distance to the next line.
    struct LegendLine {
        enum Key { case none, series(String), measured }
        var key: Key
        var text: String
        var indent: Double
        var size = 12.0
        var bold = false
        var muted = false
        var advance = 20.0
    }

    /// A line per strategy with its fitted slope; what would make a line long (the measured slope,
    /// "not plotted") goes on a second, indented line, so the legend stays narrow.
    static func legendLines(_ report: SweepReport) -> [LegendLine] {
        var lines = [LegendLine(key: .none, text: "strategy: fitted slope", indent: 0, bold: true, advance: 22)]
        for (position, series) in report.strategies.enumerated() {
            let colour = Palette.colour(strategy: series.strategy, position: position)
            let plotted = series.points.contains { $0.value > 0 && $0.heldForBackwardBytes > 0 }
            var details: [String] = []
            if let measured = series.measuredSlope { details.append("measured " + ByteCount.formatFixed(measured, digits: 2)) }
            if !plotted { details.append("0 B, not plotted") }
            lines.append(LegendLine(key: .series(colour), text: series.strategy + ": " + (series.slope.map { ByteCount.formatFixed($0, digits: 2) } ?? "-"),
                                    indent: 30, advance: details.isEmpty ? 20 : 16))
            if !details.isEmpty {
                lines.append(LegendLine(key: .none, text: details.joined(separator: ", "), indent: 30, size: 11, muted: true, advance: 20))
            }
        }
        lines[lines.count - 1].advance += 8
        if report.strategies.contains(where: { $0.points.contains { $0.measuredHeldForBackwardBytes != nil } }) {
            lines.append(LegendLine(key: .measured, text: "measured", indent: 30))
        }
        lines.append(LegendLine(key: .none, text: "slope 1: linear growth, 0: flat", indent: 0, size: 11, muted: true))
        return lines
    }

    /// "1 KiB", "512 KiB", "4 MiB": powers of two in the largest unit that keeps them whole.
    static func powerOfTwoLabel(_ power: Int) -> String {
        guard power >= 0 else { return "2^\(power) B" }
        let names = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        let unit = min(power / 10, names.count - 1)
        return "\(1 << (power - unit * 10)) \(names[unit])"
    }
}
