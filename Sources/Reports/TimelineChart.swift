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
    /// x is the event index of the stacked timeline, labelled in ms when it has times.
    public static func svg(planned: Timeline?, measured: Timeline?, width: Int = 1200, height: Int = 420) -> String {
        render(planned: planned, measured: measured, width: width, height: height, namespace: true)
    }

    static func render(planned: Timeline?, measured: Timeline?, width: Int, height: Int, namespace: Bool) -> String {
        let base = measured ?? planned
        let overlay = measured == nil ? nil : planned
        var canvas = SVGCanvas(width: width, height: height)
        let frame = Frame(width: width, height: height, events: base?.events.count ?? 0)
        let title = chartTitle(base: base, overlay: overlay)
        canvas.text(title, x: frame.left, y: 22, size: 15, weight: "600")
        guard let base, !base.events.isEmpty else {
            drawAxes(&canvas, frame, axis: ByteAxis(maxBytes: 0))
            canvas.text("no allocation or free events", x: (frame.left + frame.right) / 2, y: (frame.top + frame.bottom) / 2,
                        anchor: .middle, size: 13, fill: Palette.mutedText)
            return canvas.document(label: title, namespace: namespace)
        }

        let series = base.liveByRole
        let sweep = base.sweep
        let samples = TimelineSampling.samples(series, maxPositions: maxPositions)
        let overlaySeries = overlay?.liveByRole.map(\.total) ?? []
        let overlayPeak = overlaySeries.max() ?? 0
        let axis = ByteAxis(maxBytes: max(sweep.peakBytes, overlayPeak))
        let groups = PhaseGroup.groups(base)

        drawAxes(&canvas, frame, axis: axis)
        drawGroupSeparators(&canvas, frame, groups)
        let present = drawStack(&canvas, frame, axis, samples, sweep: sweep)
        if let overlay, !overlaySeries.isEmpty {
            drawOverlay(&canvas, frame, axis, overlaySeries, plan: overlay, on: base)
        }
        drawPhaseStrip(&canvas, frame, groups)
        drawHoverColumns(&canvas, frame, samples, base)
        drawXAxis(&canvas, frame, base)
        drawPeak(&canvas, frame, axis, base, sweep)
        drawLegend(&canvas, frame, present, sweep: sweep, overlayPeak: overlay == nil ? nil : overlayPeak)
        return canvas.document(label: title, namespace: namespace)
    }

    /// The plot area and the mappings from (event, bytes) to pixels.
    struct Frame {
        let width: Double, height: Double
        let left: Double, right: Double, top: Double, bottom: Double
        let events: Int

        init(width: Int, height: Int, events: Int) {
            self.width = Double(width)
            self.height = Double(height)
            left = 84
            right = Double(width) - 200
            top = 40
            bottom = Double(height) - 92
            self.events = max(1, events)
        }

        var stripTop: Double { bottom + 6 }
        var stripHeight: Double { 22 }
        var legendLeft: Double { right + 24 }

        func x(_ event: Double) -> Double { left + event / Double(events) * (right - left) }
        func y(_ bytes: Double, _ axis: ByteAxis) -> Double { bottom - bytes / axis.topBytes * (bottom - top) }
    }

    static func chartTitle(base: Timeline?, overlay: Timeline?) -> String {
        guard let base else { return "no timeline" }
        if overlay != nil { return "\(base.title): live bytes by role (measured), predicted total as a line" }
        return "\(base.title): live bytes by role"
    }

    static func drawAxes(_ canvas: inout SVGCanvas, _ frame: Frame, axis: ByteAxis) {
        for tick in axis.ticks {
            let y = frame.y(tick, axis)
            canvas.line(x1: frame.left, y1: y, x2: frame.right, y2: y, stroke: Palette.grid)
            canvas.text(axis.label(tick), x: frame.left - 8, y: y + 4, anchor: .end, size: 12)
        }
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
    /// one event to the next). Returns the roles drawn.
    static func drawStack(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ samples: [TimelineSample],
                          sweep: PeakSweep.Result) -> [TensorRole] {
        var lower = Array(repeating: 0, count: samples.count)
        var drawn: [TensorRole] = []
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
            drawn.append(role)
        }
        return drawn
    }

    /// The predicted total as a stepped line on the measured axis. A measurement can hold events
    /// the plan does not (or the reverse), so the plan is aligned phase by phase: each planned
    /// phase span is stretched over the measured span of the same phase. Equal events map 1:1.
    static func drawOverlay(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ totals: [Int], plan: Timeline, on base: Timeline) {
        var roles: [RoleBytes] = []
        roles.reserveCapacity(totals.count)
        for total in totals {
            var r = RoleBytes()
            r[.activation] = total
            roles.append(r)
        }
        let samples = TimelineSampling.samples(roles, maxPositions: maxPositions)
        let position = alignment(plan: plan, base: base)
        var d = "M\(SVGCanvas.n(frame.x(position(samples[0].first)))) \(SVGCanvas.n(frame.y(Double(samples[0].roles.total), axis)))"
        for k in samples.indices {
            if k > 0, samples[k].roles.total != samples[k - 1].roles.total {
                d += "V\(SVGCanvas.n(frame.y(Double(samples[k].roles.total), axis)))"
            }
            d += "H\(SVGCanvas.n(frame.x(position(samples[k].end))))"
        }
        let note = plan.events.count == base.events.count ? "" : " (its \(plan.events.count) events aligned phase by phase to these \(base.events.count))"
        // Solid and thin: dashes break up on a stepped line into noise that reads as data.
        canvas.path(d, fill: "none", stroke: Palette.text, width: 1.5,
                    extra: " stroke-opacity=\"0.9\" stroke-linejoin=\"round\" class=\"predicted\"",
                    title: "predicted total, \(plan.title): peak \(ByteCount.format(totals.max() ?? 0))\(note)")
    }

    /// Maps an event boundary of the plan (0...count) to a fractional event position on the base
    /// timeline's axis: span by span when both have the same phases in the same order, else by
    /// stretching the whole plan.
    static func alignment(plan: Timeline, base: Timeline) -> (Int) -> Double {
        let planCount = plan.events.count, baseCount = base.events.count
        let planSpans = plan.phaseSpans, baseSpans = base.phaseSpans
        guard planCount != baseCount || planSpans.map(\.phase) != baseSpans.map(\.phase) else { return { Double($0) } }
        guard planSpans.map(\.phase) == baseSpans.map(\.phase) else {
            return { Double($0) * Double(baseCount) / Double(max(1, planCount)) }
        }
        // spanOf[j]: the span holding planned event j.
        var spanOf = [Int](repeating: 0, count: planCount)
        for (k, span) in planSpans.enumerated() { for j in span.first...span.last { spanOf[j] = k } }
        return { boundary in
            guard boundary < planCount else { return Double(baseCount) }
            let k = spanOf[boundary], p = planSpans[k], b = baseSpans[k]
            return Double(b.first) + Double(boundary - p.first) * Double(b.last - b.first + 1) / Double(p.last - p.first + 1)
        }
    }

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

    /// Transparent columns over the phase strip whose tooltips give the bytes of each moment.
    static func drawHoverColumns(_ canvas: inout SVGCanvas, _ frame: Frame, _ samples: [TimelineSample], _ timeline: Timeline) {
        let columns = min(samples.count, maxHoverColumns)
        canvas.raw("<g class=\"moments\" fill=\"#FFFFFF\" fill-opacity=\"0\">")
        for column in 0..<columns {
            let slice = samples[(column * samples.count / columns)..<((column + 1) * samples.count / columns)]
            guard let top = slice.max(by: { $0.roles.total < $1.roles.total }), let first = slice.first, let last = slice.last else { continue }
            let event = timeline.events[top.index]
            var lines = ["event \(top.index)" + (event.timeMs.map { " at " + Markup.milliseconds($0) } ?? "")
                         + ": \(event.phase), \(event.kind.rawValue) \(event.label)",
                         "live: \(ByteCount.format(top.roles.total))"]
            for role in Palette.stackOrder.reversed() where top.roles[role] > 0 {
                lines.append("  \(role.label): \(ByteCount.format(top.roles[role]))")
            }
            if last.end - first.first > 1 { lines.append("(highest of events \(first.first)..\(last.end - 1))") }
            let x0 = frame.x(Double(first.first)), x1 = frame.x(Double(last.end))
            canvas.rect(x: x0, y: frame.stripTop, width: x1 - x0, height: frame.stripHeight, fill: "#FFFFFF",
                        extra: " fill-opacity=\"0\"", title: lines.joined(separator: "\n"))
        }
        canvas.raw("</g>")
    }

    /// Event indices, or milliseconds placed at the first event reached at that time.
    static func drawXAxis(_ canvas: inout SVGCanvas, _ frame: Frame, _ timeline: Timeline) {
        let labelY = frame.stripTop + frame.stripHeight + 16
        let times = timeline.events.compactMap(\.timeMs)
        var positions: [(x: Double, label: String)] = []
        let title: String
        if times.count == timeline.events.count, let total = times.last, total > 0 {
            let step = AxisTicks.niceStep(range: total, targetCount: 8)
            let digits = AxisTicks.digits(for: step)
            var index = 0
            for value in AxisTicks.ticks(step: step, upTo: total) {
                while index < times.count - 1, times[index] < value - 1e-12 { index += 1 }
                positions.append((frame.x(Double(index)), value == 0 ? "0" : ByteCount.formatFixed(value, digits: digits)))
            }
            title = "milliseconds since the step began (one slot per allocation or free, so time is not to scale)"
        } else {
            let step = max(1, AxisTicks.niceStep(range: Double(timeline.events.count), targetCount: 8).rounded(.up))
            for value in AxisTicks.ticks(step: step, upTo: Double(timeline.events.count)) {
                positions.append((frame.x(value), String(Int(value))))
            }
            title = "allocation and free events of the step (event index)"
        }
        var lastX = -Double.infinity
        for position in positions where position.x - lastX >= 48 {
            canvas.line(x1: position.x, y1: frame.stripTop + frame.stripHeight, x2: position.x, y2: frame.stripTop + frame.stripHeight + 4,
                        stroke: Palette.axis)
            canvas.text(position.label, x: position.x, y: labelY, anchor: .middle, size: 12)
            lastX = position.x
        }
        canvas.text(title, x: (frame.left + frame.right) / 2, y: labelY + 20, anchor: .middle, size: 12, fill: Palette.mutedText)
    }

    static func drawPeak(_ canvas: inout SVGCanvas, _ frame: Frame, _ axis: ByteAxis, _ timeline: Timeline, _ sweep: PeakSweep.Result) {
        guard let index = sweep.peakEventIndex else { return }
        let event = timeline.events[index]
        let x = frame.x(Double(index) + 0.5), y = frame.y(Double(sweep.peakBytes), axis)
        let phase = sweep.peakPhase.map(String.init(describing:)) ?? ""
        canvas.raw("<g id=\"peak-marker\" data-bytes=\"\(sweep.peakBytes)\" data-event=\"\(index)\" data-phase=\"\(Markup.escape(phase))\">")
        canvas.line(x1: x, y1: y, x2: x, y2: frame.bottom, stroke: Palette.text, extra: " stroke-dasharray=\"2 3\"")
        canvas.raw("<circle cx=\"\(SVGCanvas.n(x))\" cy=\"\(SVGCanvas.n(y))\" r=\"5\" fill=\"\(Palette.text)\" stroke=\"#FFFFFF\" stroke-width=\"2\"/>")
        let first = "peak \(ByteCount.format(sweep.peakBytes)) (\(Markup.grouped(sweep.peakBytes)) B), \(phase)"
        let second = "event \(index)" + (event.timeMs.map { " at " + Markup.milliseconds($0) } ?? "") + ": \(event.label)"
        let onLeft = x > (frame.left + frame.right) / 2
        let textX = onLeft ? x - 13 : x + 13
        let halo = " stroke=\"#FFFFFF\" stroke-width=\"4\" stroke-linejoin=\"round\" paint-order=\"stroke\""
        canvas.text(first, x: textX, y: y + 4, anchor: onLeft ? .end : .start, size: 12, weight: "600", extra: halo)
        canvas.text(second, x: textX, y: y + 19, anchor: onLeft ? .end : .start, size: 11, extra: halo)
        canvas.raw("</g>")
    }

    static func drawLegend(_ canvas: inout SVGCanvas, _ frame: Frame, _ roles: [TensorRole], sweep: PeakSweep.Result, overlayPeak: Int?) {
        let x = frame.legendLeft, right = frame.width - 12
        var y = frame.top + 4
        canvas.text("live at the peak", x: x, y: y, size: 12, weight: "600")
        y += 20
        for role in roles.reversed() {
            canvas.rect(x: x, y: y - 10, width: 12, height: 12, fill: Palette.colour(role), extra: " stroke=\"#666666\" stroke-width=\"0.5\"")
            canvas.text(role.label, x: x + 18, y: y, size: 12)
            canvas.text(ByteCount.format(sweep.bytesByRoleAtPeak[role]), x: right, y: y, anchor: .end, size: 12)
            y += 19
        }
        canvas.line(x1: x, y1: y - 9, x2: right, y2: y - 9, stroke: Palette.grid)
        y += 6
        canvas.text("total", x: x + 18, y: y, size: 12, weight: "600")
        canvas.text(ByteCount.format(sweep.peakBytes), x: right, y: y, anchor: .end, size: 12, weight: "600")
        if let overlayPeak {
            y += 26
            canvas.line(x1: x, y1: y - 4, x2: x + 12, y2: y - 4, stroke: Palette.text, width: 1.5)
            canvas.text("predicted peak", x: x + 18, y: y, size: 12)
            canvas.text(ByteCount.format(overlayPeak), x: right, y: y, anchor: .end, size: 12)
            let difference = sweep.peakBytes - overlayPeak
            y += 19
            canvas.text("measured - predicted", x: x + 18, y: y, size: 11, fill: Palette.mutedText)
            canvas.text(difference == 0 ? "0 B" : (difference > 0 ? "+" : "") + ByteCount.format(difference), x: right, y: y,
                        anchor: .end, size: 11, fill: Palette.mutedText)
        }
    }
}
