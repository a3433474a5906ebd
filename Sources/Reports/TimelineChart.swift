import MemoryModel

/// A training step's memory as a stacked area of live bytes by role, with the planner's
/// predicted total drawn over a measurement, the phases along the axis and the peak marked.
/// Plain SVG with native `<title>` tooltips: no scripts, no fonts, prints on white.
public enum TimelineChart {
    /// At most this many x positions; longer steps are downsampled keeping each bucket's peak.
    public static let maxPositions = 1500
    /// At most this many hover columns (per-moment tooltips) along the phase strip.
    static let maxHoverColumns = 300

    /// The chart of `measured` (stacked) with `planned`'s total overlaid, or of whichever is given.
    /// x is time when the stacked timeline has times, else its event index. `yMaxBytes` raises the
    /// y axis to at least that many bytes, so charts drawn side by side can share one scale.
    public static func svg(planned: Timeline?, measured: Timeline?, width: Int = 960, height: Int = 440, yMaxBytes: Int = 0) -> String {
        render(planned: planned, measured: measured, width: width, height: height, yMaxBytes: yMaxBytes, namespace: true)
    }

    /// The most bytes any of these timelines holds live, as a chart scales to them (its peak, or
    /// an overlaid plan's highest total): the top of a shared y axis.
    public static func highestBytes(_ timelines: [Timeline]) -> Int {
        timelines.map { max($0.sweep.peakBytes, $0.liveByRole.map(\.total).max() ?? 0) }.max() ?? 0
    }

    static func render(planned: Timeline?, measured: Timeline?, width: Int, height: Int, yMaxBytes: Int = 0, namespace: Bool) -> String {
        let base = measured ?? planned
        let overlay = measured == nil ? nil : planned
        var canvas = SVGCanvas(width: width, height: height)
        let title = chartTitle(base: base, overlay: overlay)
        canvas.text(SVGCanvas.fitting([title, base?.title ?? title], size: 15, width: Double(width) - Frame.left - 12), x: Frame.left, y: 22,
                    size: 15, weight: "600")
        guard let base, !base.events.isEmpty else {
            let frame = Frame(width: width, height: height, legendRows: 0, events: 0, clock: nil)
            drawAxes(&canvas, frame, axis: ByteAxis(maxBytes: yMaxBytes))
            canvas.text("no allocation or free events", x: (frame.left + frame.right) / 2, y: (frame.top + frame.bottom) / 2,
                        anchor: .middle, size: 13, fill: Palette.mutedText)
            return canvas.document(label: title, namespace: namespace)
        }

        let series = base.liveByRole
        let sweep = base.sweep
        let samples = TimelineSampling.samples(series, maxPositions: maxPositions)
        let overlaySeries = overlay?.liveByRole.map(\.total) ?? []
        let overlayPeak = overlaySeries.max() ?? 0
        let axis = ByteAxis(maxBytes: max(sweep.peakBytes, overlayPeak, yMaxBytes))
        let groups = PhaseGroup.groups(base)
        let roles = Palette.stackOrder.filter { role in samples.contains { $0.roles[role] > 0 } }
        let legend = legendEntries(roles, sweep: sweep, overlayPeak: overlay == nil ? nil : overlayPeak)
        let rows = LegendLayout(entries: legend, left: Frame.left, right: Double(width) - 12).rows
        let frame = Frame(width: width, height: height, legendRows: rows.count, events: base.events.count, clock: StepClock(base))

        drawAxes(&canvas, frame, axis: axis)
        drawGroupSeparators(&canvas, frame, groups)
        drawStack(&canvas, frame, axis, samples, sweep: sweep)
        if let overlay, !overlaySeries.isEmpty {
            drawOverlay(&canvas, frame, axis, overlaySeries, plan: overlay, on: base)
        }
        drawPhaseStrip(&canvas, frame, groups)
        drawHoverColumns(&canvas, frame, samples, base)
        drawXAxis(&canvas, frame, base)
        drawPeak(&canvas, frame, axis, base, sweep)
        drawLegend(&canvas, frame, legend, rows: rows)
        return canvas.document(label: title, namespace: namespace)
    }

    /// The plot area and the mappings from (event position, bytes) to pixels. Under the plot, top
    /// to bottom: the phase strip, the x tick labels, the x axis title, then the legend's rows.
    struct Frame {
        static let left = 84.0
        static let legendRowHeight = 20.0
        /// The baseline of the line under the title that names the peak.
        static let peakLineY = 42.0
        let width: Double, height: Double
        let left: Double, right: Double, top: Double, bottom: Double
        let events: Int
        /// The base timeline's clock: x is time when there is one (and it advances), else event index.
        let clock: StepClock?

        init(width: Int, height: Int, legendRows: Int, events: Int, clock: StepClock?) {
            self.width = Double(width)
            self.height = Double(height)
            left = Self.left
            right = Double(width) - 24
            top = 56
            bottom = Double(height) - 80 - Double(legendRows) * Self.legendRowHeight
            self.events = max(1, events)
            self.clock = (clock?.end ?? 0) > 0 ? clock : nil
        }

        var stripTop: Double { bottom + 6 }
        var stripHeight: Double { 22 }
        var tickLabelY: Double { stripTop + stripHeight + 16 }
        var axisTitleY: Double { tickLabelY + 20 }
        var legendTop: Double { axisTitleY + 26 }

        /// The x of a fractional event position (0...events; `events` is the end of the step).
        func x(_ position: Double) -> Double {
            guard let clock else { return left + position / Double(events) * (right - left) }
            return xTime(clock.time(at: position))
        }

        /// The x of a moment, in milliseconds since the step began (timed timelines only).
        func xTime(_ ms: Double) -> Double { left + ms / max(1e-12, clock?.end ?? 1) * (right - left) }

        func y(_ bytes: Double, _ axis: ByteAxis) -> Double { bottom - bytes / axis.topBytes * (bottom - top) }
    }

    static func chartTitle(base: Timeline?, overlay: Timeline?) -> String {
        guard let base else { return "no timeline" }
        if overlay != nil { return "\(base.title): live bytes by role, predicted total dashed" }
        return "\(base.title): live bytes by role"
    }

    static func drawAxes(_ canvas: inout SVGCanvas, _ frame: Frame, axis: ByteAxis) {
        // The axis top in the markup lets a program check that the charts of a page share a scale.
        canvas.raw("<g class=\"y-axis\" data-top-bytes=\"\(Int(axis.topBytes))\">")
        for tick in axis.ticks {
            let y = frame.y(tick, axis)
            canvas.line(x1: frame.left, y1: y, x2: frame.right, y2: y, stroke: Palette.grid)
            canvas.text(axis.label(tick), x: frame.left - 8, y: y + 4, anchor: .end, size: 12)
        }
        canvas.raw("</g>")
        canvas.line(x1: frame.left, y1: frame.top, x2: frame.left, y2: frame.bottom, stroke: Palette.axis)
        canvas.line(x1: frame.left, y1: frame.bottom, x2: frame.right, y2: frame.bottom, stroke: Palette.axis)
        let middle = (frame.top + frame.bottom) / 2
        canvas.text("live bytes", x: 18, y: middle, anchor: .middle, size: 12, fill: Palette.mutedText,
                    extra: " transform=\"rotate(-90 18 \(SVGCanvas.n(middle)))\"")
    }

    /// Faint lines where the step turns from one kind of phase to the next.
    static func drawGroupSeparators(_ canvas: inout SVGCanvas, _ frame: Frame, _ groups: [PhaseGroup]) {
        for group in groups.dropFirst() {
            let x = frame.x(Double(group.firstEvent))
            canvas.line(x1: x, y1: frame.top, x2: x, y2: frame.bottom, stroke: "#C8C8C8", extra: " stroke-dasharray=\"3 3\"")
        }
    }

    /// One filled band per role, stacked in `Palette.stackOrder`, drawn as steps (bytes hold from
    /// one event to the next).
    static func drawStack(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ samples: [TimelineSample],
                          sweep: PeakSweep.Result) {
        var lower = Array(repeating: 0, count: samples.count)
        for role in Palette.stackOrder {
            let values = samples.map { $0.roles[role] }
            guard values.contains(where: { $0 > 0 }) else { continue }
            let upper = zip(lower, values).map { $0 + $1 }
            var d = "M\(SVGCanvas.n(frame.x(Double(samples[0].first)))) \(SVGCanvas.n(frame.y(Double(upper[0]), axis)))"
            for k in samples.indices {
                if k > 0, upper[k] != upper[k - 1] { d += "V\(SVGCanvas.n(frame.y(Double(upper[k]), axis)))" }
                d += "H\(SVGCanvas.n(frame.x(Double(samples[k].end))))"
            }
            d += "V\(SVGCanvas.n(frame.y(Double(lower[samples.count - 1]), axis)))"
            for k in samples.indices.reversed() {
                if k < samples.count - 1, lower[k] != lower[k + 1] { d += "V\(SVGCanvas.n(frame.y(Double(lower[k]), axis)))" }
                d += "H\(SVGCanvas.n(frame.x(Double(samples[k].first))))"
            }
            d += "Z"
            let tip = "\(role.label): \(ByteCount.format(sweep.bytesByRoleAtPeak[role])) at the step's peak, "
                + "at most \(ByteCount.format(sweep.peakBytesByRole[role]))"
            canvas.path(d, fill: Palette.colour(role), stroke: "#FFFFFF", width: 0.5,
                        extra: " fill-opacity=\"0.9\" class=\"role-band\" data-role=\"\(role.reportKey)\"", title: tip)
            lower = upper
        }
    }

    /// The predicted total as a stepped line on the measured axis, placed by `PlanAlignment` (the
    /// same placement the Chrome trace uses). Dashed, over a white casing: where the prediction
    /// agrees it runs along the top of the measured area and would vanish into that edge if solid.
    static func drawOverlay(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ totals: [Int], plan: Timeline, on base: Timeline) {
        var roles: [RoleBytes] = []
        roles.reserveCapacity(totals.count)
        for total in totals {
            var r = RoleBytes()
            r[.activation] = total
            roles.append(r)
        }
        let samples = TimelineSampling.samples(roles, maxPositions: maxPositions)
        let alignment = PlanAlignment(plan: plan, measured: base)
        func x(_ boundary: Int) -> String { SVGCanvas.n(frame.x(alignment.position(boundary))) }
        var d = "M\(x(samples[0].first)) \(SVGCanvas.n(frame.y(Double(samples[0].roles.total), axis)))"
        for k in samples.indices {
            if k > 0, samples[k].roles.total != samples[k - 1].roles.total {
                d += "V\(SVGCanvas.n(frame.y(Double(samples[k].roles.total), axis)))"
            }
            d += "H\(x(samples[k].end))"
        }
        let tip = "predicted total, \(plan.title): peak \(ByteCount.format(totals.max() ?? 0)); \(alignment.description)"
        canvas.raw("<g class=\"predicted\">")
        canvas.path(d, fill: "none", stroke: "#FFFFFF", width: 4.5, extra: " stroke-opacity=\"0.85\" stroke-linejoin=\"round\"")
        canvas.path(d, fill: "none", stroke: Palette.text, width: 2, extra: " stroke-dasharray=\"\(predictedDash)\" stroke-linejoin=\"round\"",
                    title: tip)
        canvas.raw("</g>")
    }

    /// Long dashes with short gaps, so the line stays a line even along many small steps.
    static let predictedDash = "7 4"

    static func drawPhaseStrip(_ canvas: inout SVGCanvas, _ frame: Frame, _ groups: [PhaseGroup]) {
        for group in groups {
            let x0 = frame.x(Double(group.firstEvent)), x1 = frame.x(Double(group.lastEvent + 1))
            canvas.rect(x: x0, y: frame.stripTop, width: x1 - x0, height: frame.stripHeight, fill: Palette.band(phaseKind: group.kind),
                        extra: " stroke=\"#FFFFFF\" stroke-width=\"1\"")
            let available = x1 - x0 - 6
            let label = SVGCanvas.textWidth(group.label, size: 11) <= available ? group.label
                : (SVGCanvas.textWidth(group.shortLabel, size: 11) <= available ? group.shortLabel : nil)
            if let label {
                canvas.text(label, x: (x0 + x1) / 2, y: frame.stripTop + 15, anchor: .middle, size: 11)
            }
        }
    }

    /// Transparent columns over the phase strip whose tooltips give the bytes of each moment: the
    /// samples starting in each of `maxHoverColumns` equal slices of the plot's width, each column
    /// reaching to the next (a stretch of time with no event shows the state that holds there).
    static func drawHoverColumns(_ canvas: inout SVGCanvas, _ frame: Frame, _ samples: [TimelineSample], _ timeline: Timeline) {
        let slice = (frame.right - frame.left) / Double(maxHoverColumns)
        var columns: [[TimelineSample]] = []
        var lastSlice = -1
        for sample in samples {
            let index = min(maxHoverColumns - 1, Int(((frame.x(Double(sample.first)) - frame.left) / slice).rounded(.down)))
            if index != lastSlice || columns.isEmpty { columns.append([]) }
            columns[columns.count - 1].append(sample)
            lastSlice = index
        }
        canvas.raw("<g class=\"moments\" fill=\"#FFFFFF\" fill-opacity=\"0\">")
        for (number, column) in columns.enumerated() {
            guard let top = column.max(by: { $0.roles.total < $1.roles.total }), let first = column.first, let last = column.last else { continue }
            let event = timeline.events[top.index]
            var lines = ["event \(top.index)" + (event.timeMs.map { " at " + Markup.milliseconds($0) } ?? "")
                         + ": \(event.phase), \(event.kind.rawValue) \(event.label)",
                         "live: \(ByteCount.format(top.roles.total))"]
            for role in Palette.stackOrder.reversed() where top.roles[role] > 0 {
                lines.append("  \(role.label): \(ByteCount.format(top.roles[role]))")
            }
            if last.end - first.first > 1 { lines.append("(highest of events \(first.first)..\(last.end - 1))") }
            let x0 = frame.x(Double(first.first))
            let x1 = number + 1 < columns.count ? frame.x(Double(columns[number + 1][0].first)) : frame.x(Double(last.end))
            canvas.rect(x: x0, y: frame.stripTop, width: x1 - x0, height: frame.stripHeight, fill: "#FFFFFF",
                        extra: " fill-opacity=\"0\"", title: lines.joined(separator: "\n"))
        }
        canvas.raw("</g>")
    }

    /// Milliseconds, spaced by time, when the timeline has a clock; else event indices, and the
    /// axis title says the spacing is per event, not time.
    static func drawXAxis(_ canvas: inout SVGCanvas, _ frame: Frame, _ timeline: Timeline) {
        var positions: [(x: Double, label: String)] = []
        let titles: [String]
        if let clock = frame.clock {
            let step = AxisTicks.niceStep(range: clock.end, targetCount: 8)
            let digits = AxisTicks.digits(for: step)
            for value in AxisTicks.ticks(step: step, upTo: clock.end) {
                positions.append((frame.xTime(value), value == 0 ? "0" : ByteCount.formatFixed(value, digits: digits)))
            }
            titles = ["milliseconds since the step began", "ms since the step began"]
        } else {
            let step = max(1, AxisTicks.niceStep(range: Double(timeline.events.count), targetCount: 8).rounded(.up))
            for value in AxisTicks.ticks(step: step, upTo: Double(timeline.events.count)) {
                positions.append((frame.x(value), String(Int(value))))
            }
            let why = timeline.source == "planned" ? "a plan has no clock" : "no times were recorded"
            titles = ["allocation and free events of the step, in order (event index, not time: \(why))", "event index, not time: \(why)",
                      "event index, not time"]
        }
        var lastX = -Double.infinity
        for position in positions where position.x - lastX >= 48 {
            canvas.line(x1: position.x, y1: frame.stripTop + frame.stripHeight, x2: position.x, y2: frame.stripTop + frame.stripHeight + 4,
                        stroke: Palette.axis)
            canvas.text(position.label, x: position.x, y: frame.tickLabelY, anchor: .middle, size: 12)
            lastX = position.x
        }
        canvas.text(SVGCanvas.fitting(titles, size: 12, width: frame.right - frame.left), x: (frame.left + frame.right) / 2, y: frame.axisTitleY,
                    anchor: .middle, size: 12, fill: Palette.mutedText)
    }

    static func drawPeak(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ timeline: Timeline, _ sweep: PeakSweep.Result) {
        guard let index = sweep.peakEventIndex else { return }
        let event = timeline.events[index]
        let x = frame.x(Double(index) + 0.5), y = frame.y(Double(sweep.peakBytes), axis)
        let phase = sweep.peakPhase.map(String.init(describing:)) ?? ""
        canvas.raw("<g id=\"peak-marker\" data-bytes=\"\(sweep.peakBytes)\" data-event=\"\(index)\" data-phase=\"\(Markup.escape(phase))\">")
        canvas.line(x1: x, y1: y, x2: x, y2: frame.bottom, stroke: Palette.text, extra: " stroke-dasharray=\"2 3\"")
        canvas.raw("<circle cx=\"\(SVGCanvas.n(x))\" cy=\"\(SVGCanvas.n(y))\" r=\"5\" fill=\"\(Palette.text)\" stroke=\"#FFFFFF\" stroke-width=\"2\"/>")
        // The words go on a line under the title, keyed by the marker's dot: beside the marker they
        // would sit on the data at its most telling point, crossed by the predicted line.
        let first = "peak \(ByteCount.format(sweep.peakBytes)) (\(Markup.grouped(sweep.peakBytes)) B), \(phase)"
        let second = " · event \(index)" + (event.timeMs.map { " at " + Markup.milliseconds($0) } ?? "") + ": \(event.label)"
        let keyX = frame.left + 5, textX = frame.left + 16
        canvas.raw("<circle cx=\"\(SVGCanvas.n(keyX))\" cy=\"\(SVGCanvas.n(Frame.peakLineY - 4))\" r=\"4.5\" fill=\"\(Palette.text)\"/>")
        let both = SVGCanvas.textWidth(first + second, size: 12) <= frame.width - 12 - textX
        canvas.raw("<text x=\"\(SVGCanvas.n(textX))\" y=\"\(SVGCanvas.n(Frame.peakLineY))\" text-anchor=\"start\" font-size=\"12\" fill=\"\(Palette.text)\">"
                   + "<tspan font-weight=\"600\">\(Markup.escape(first))</tspan>\(both ? Markup.escape(second) : "")</text>")
        canvas.raw("</g>")
    }

    /// One legend entry: its key and its text, "activations 2.00 KiB".
    struct LegendEntry {
        enum Key { case none, swatch(String), dashed }
        var key: Key
        var text: String
        var bold = false
    }

    /// What the legend says: the bytes of each role at the peak (top of the stack first), the
    /// total, and with a prediction its peak and the difference.
    static func legendEntries(_ roles: [TensorRole], sweep: PeakSweep.Result, overlayPeak: Int?) -> [LegendEntry] {
        var entries = [LegendEntry(key: .none, text: "at the peak:", bold: true)]
        for role in roles.reversed() {
            entries.append(LegendEntry(key: .swatch(Palette.colour(role)), text: "\(role.label) \(ByteCount.format(sweep.bytesByRoleAtPeak[role]))"))
        }
        entries.append(LegendEntry(key: .none, text: "total \(ByteCount.format(sweep.peakBytes))", bold: true))
        if let overlayPeak {
            let difference = sweep.peakBytes - overlayPeak
            entries.append(LegendEntry(key: .dashed, text: "predicted peak \(ByteCount.format(overlayPeak))"))
            entries.append(LegendEntry(key: .none, text: "measured - predicted "
                + (difference == 0 ? "0 B" : (difference > 0 ? "+" : "") + ByteCount.format(difference))))
        }
        return entries
    }

    static func drawLegend(_ canvas: inout SVGCanvas, _ frame: Frame, _ entries: [LegendEntry], rows: [[LegendLayout.Slot]]) {
        canvas.raw("<g class=\"legend\">")
        for (row, slots) in rows.enumerated() {
            let y = frame.legendTop + Double(row) * Frame.legendRowHeight
            for slot in slots {
                let entry = entries[slot.entry]
                switch entry.key {
                case .none: break
                case .swatch(let colour):
                    canvas.rect(x: slot.x, y: y - 10, width: 12, height: 12, fill: colour, extra: " stroke=\"#666666\" stroke-width=\"0.5\"")
                case .dashed:
                    canvas.line(x1: slot.x - 2, y1: y - 4, x2: slot.x + 22, y2: y - 4, stroke: Palette.text, width: 2,
                                extra: " stroke-dasharray=\"\(predictedDash)\"")
                }
                canvas.text(entry.text, x: slot.x + LegendLayout.keyWidth(entry.key), y: y, size: 12, weight: entry.bold ? "600" : nil)
            }
        }
        canvas.raw("</g>")
    }
}

/// Legend entries laid out left to right in rows, wrapped before an entry would pass the right
/// edge. Widths come from `SVGCanvas.textWidth`'s generous estimate, so entries never overlap.
struct LegendLayout {
    struct Slot: Equatable { var entry: Int; var x: Double }
    static let gap = 22.0

    let rows: [[Slot]]

    static func keyWidth(_ key: TimelineChart.LegendEntry.Key) -> Double {
        switch key {
        case .none: return 0
        case .swatch: return 18
        case .dashed: return 28
        }
    }

    init(entries: [TimelineChart.LegendEntry], left: Double, right: Double) {
        var rows: [[Slot]] = []
        var x = left
        for (index, entry) in entries.enumerated() {
            let width = Self.keyWidth(entry.key) + SVGCanvas.textWidth(entry.text, size: 12)
            if rows.isEmpty || (x + width > right && x > left) {
                rows.append([])
                x = left
            }
            rows[rows.count - 1].append(Slot(entry: index, x: x))
            x += width + Self.gap
        }
        self.rows = rows
    }
}
