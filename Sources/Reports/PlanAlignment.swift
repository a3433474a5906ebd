import MemoryModel

/// Where a plan's events fall on a measurement of the same schedule, so that the chart's
/// predicted line and the Chrome trace's planned process share the measurement's axis. A plan has
/// no clock; it gets the measurement's.
///
/// Positions are fractional event indices of the measured timeline: event `i` of the measurement
/// sits at `i`, and `count` is the end of the step.
struct PlanAlignment {
    enum Method: Equatable {
        /// Same events in the same order (snnmem's engine against its own plan): event i is event i.
        case oneToOne
        /// Phase spans matched in order; the plan's events spread evenly over the matched span.
        case phases
        /// Nothing in common to pin: the whole plan stretched over the whole measurement.
        case stretched
    }

    let method: Method
    let planCount: Int
    let measuredCount: Int
    /// (planned event boundary, measured position), increasing in both.
    private let anchors: [(plan: Int, measured: Double)]

    init(plan: Timeline, measured: Timeline) {
        planCount = plan.events.count
        measuredCount = measured.events.count
        if planCount == measuredCount,
           zip(plan.events, measured.events).allSatisfy({ $0.kind == $1.kind && $0.phase == $1.phase && $0.role == $1.role }) {
            method = .oneToOne
            anchors = []
            return
        }
        // Each planned phase span is pinned to the next measured span of the same phase: its first
        // event to that span's first, its last to that span's last. Spans only one side has (a
        // workspace-only phase, a phase the plan leaves out) are skipped and fall in between.
        let measuredSpans = measured.phaseSpans
        var pins: [(plan: Int, measured: Double)] = []
        var cursor = 0
        for span in plan.phaseSpans {
            guard let match = measuredSpans[cursor...].firstIndex(where: { $0.phase == span.phase }) else { continue }
            let target = measuredSpans[match]
            pins.append((span.first, Double(target.first)))
            if span.last > span.first { pins.append((span.last, Double(target.last))) }
            cursor = match + 1
        }
        method = pins.isEmpty ? .stretched : .phases
        if pins.first?.plan != 0 { pins.insert((0, 0), at: 0) }
        // The end of the plan is the end of the measurement.
        pins.append((planCount, Double(measuredCount)))
        anchors = pins
    }

    /// The measured position of planned event boundary `boundary` (0...planCount), interpolated
    /// linearly between pinned events.
    func position(_ boundary: Int) -> Double {
        if method == .oneToOne { return Double(boundary) }
        // The first anchor at or past the boundary, by bisection: a long step has thousands of
        // events and a long T hundreds of anchors.
        var low = 0, high = anchors.count
        while low < high {
            let middle = (low + high) / 2
            if anchors[middle].plan < boundary { low = middle + 1 } else { high = middle }
        }
        guard low < anchors.count else { return Double(measuredCount) }
        let upper = low, b = anchors[upper]
        guard upper > 0, b.plan != boundary else { return b.measured }
        let a = anchors[upper - 1]
        return a.measured + Double(boundary - a.plan) / Double(b.plan - a.plan) * (b.measured - a.measured)
    }

    /// A few words on how the plan was placed, for tooltips and trace process names.
    var description: String {
        switch method {
        case .oneToOne: return "each planned event at its measured event's time"
        case .phases: return "planned events placed phase by phase on the measured step (\(planCount) planned, \(measuredCount) measured events)"
        case .stretched: return "phases differ: the \(planCount) planned events stretched evenly over the \(measuredCount) measured ones"
        }
    }
}

/// A measured step's clock: the time of every event, and of any fractional position between them.
struct StepClock {
    /// Milliseconds since the step began, per event, never going back (a running maximum guards
    /// against a reordered sample).
    let times: [Double]

    /// The clock of a timeline whose every event has a time; nil for plans and partial traces.
    init?(_ timeline: Timeline) {
        guard !timeline.events.isEmpty, timeline.events.allSatisfy({ $0.timeMs != nil }) else { return nil }
        var clock = 0.0
        times = timeline.events.map { event in
            clock = max(clock, event.timeMs ?? 0)
            return clock
        }
    }

    /// When the step ends: its last event.
    var end: Double { times.last ?? 0 }

    /// The time at a fractional event position (0...count); `count` is the end of the step.
    func time(at position: Double) -> Double {
        let clamped = min(max(0, position), Double(times.count))
        let index = Int(clamped.rounded(.down))
        guard index < times.count - 1 else { return times[min(index, times.count - 1)] }
        return times[index] + (clamped - Double(index)) * (times[index + 1] - times[index])
    }
}
