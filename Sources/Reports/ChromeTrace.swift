import Foundation
import MemoryModel

/// Timelines in Chrome's trace-event format, which Perfetto (ui.perfetto.dev) and
/// chrome://tracing open: one process per timeline, a counter track of live bytes by role, and
/// slices for each phase with the layers that ran inside it nested below.
public enum ChromeTrace {
    /// One trace event. Fields a kind of event does not use are left out of the JSON.
    struct Event: Encodable {
        enum Value: Encodable {
            case int(Int), double(Double), string(String)
            func encode(to encoder: Encoder) throws {
                var container = encoder.singleValueContainer()
                switch self {
                case .int(let v): try container.encode(v)
                case .double(let v): try container.encode(v)
                case .string(let v): try container.encode(v)
                }
            }
        }

        var name: String
        var ph: String
        var pid: Int
        var tid: Int?
        var ts: Double?
        var dur: Double?
        var cat: String?
        var args: [String: Value]?
    }

    struct Document: Encodable {
        var traceEvents: [Event]
        var displayTimeUnit: String
    }

    /// The schedules' trace events, a process per timeline, on one time base: microseconds since
    /// the measured step began. A plan has no clock, so each planned event takes the time of its
    /// measured counterpart (`PlanAlignment`: the same event where the streams correspond one to
    /// one, else placed phase by phase), and plan and measurement line up in Perfetto. Only a plan
    /// with no measurement falls back to one "microsecond" per event, and its process name says so.
    public static func json(schedules: [(planned: Timeline, measured: Timeline?)]) throws -> Data {
        var events: [Event] = []
        var pid = 0
        for schedule in schedules {
            let clock = schedule.measured.flatMap(StepClock.init)
            // The measurement's time base: its clock, or its event index when it recorded no times
            // (a PyTorch measurement), which the plan then shares all the same.
            let measuredStamps = schedule.measured.map { measured in
                clock.map(Stamps.init) ?? Stamps(indexOf: measured, note: " (no times recorded: ts = event index, not time)")
            }
            var plannedStamps = Stamps(indexOf: schedule.planned, note: " (no measurement: ts = event index, not time)")
            if let measured = schedule.measured, let base = measuredStamps, !measured.events.isEmpty {
                let alignment = PlanAlignment(plan: schedule.planned, measured: measured)
                let at: (Double) -> Double = { position in clock.map { $0.time(at: position) * 1000 } ?? position }
                plannedStamps = Stamps(times: (0..<schedule.planned.events.count).map { at(alignment.position($0)) }, end: base.end,
                                       note: " (on the measurement's \(clock == nil ? "event index" : "clock"): \(alignment.description))")
            }
            pid += 1
            events += self.events(schedule.planned, stamps: plannedStamps, pid: pid)
            if let measured = schedule.measured, let measuredStamps {
                pid += 1
                events += self.events(measured, stamps: measuredStamps, pid: pid)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(Document(traceEvents: events, displayTimeUnit: "ms"))
    }

    static let stepThread = 1

    /// Each event's timestamp in microseconds, where the timeline ends, and what the process name
    /// adds about the time base.
    struct Stamps {
        var times: [Double]
        var end: Double
        var note: String

        init(times: [Double], end: Double, note: String) {
            self.times = times
            self.end = end
            self.note = note
        }

        /// A measured step's own clock.
        init(_ clock: StepClock) {
            self.init(times: clock.times.map { $0 * 1000 }, end: clock.end * 1000, note: "")
        }

        /// No clock: event i at i microseconds.
        init(indexOf timeline: Timeline, note: String) {
            self.init(times: timeline.events.indices.map(Double.init), end: Double(timeline.events.count), note: note)
        }
    }

    static func events(_ timeline: Timeline, stamps: Stamps, pid: Int) -> [Event] {
        var out: [Event] = [
            Event(name: "process_name", ph: "M", pid: pid, tid: stepThread, args: ["name": .string(timeline.title + stamps.note)]),
            Event(name: "process_sort_index", ph: "M", pid: pid, tid: stepThread, args: ["sort_index": .int(pid)]),
            Event(name: "thread_name", ph: "M", pid: pid, tid: stepThread, args: ["name": .string("phases and layers")]),
        ]
        let series = timeline.liveByRole
        let roles = Palette.stackOrder.filter { role in series.contains { $0[role] > 0 } }
        for (index, roleBytes) in series.enumerated() {
            // Every event changes some role's bytes; one counter sample per event keeps each change.
            let args = Dictionary(uniqueKeysWithValues: roles.map { ($0.reportKey, Event.Value.int(roleBytes[$0])) })
            out.append(Event(name: "live bytes", ph: "C", pid: pid, tid: stepThread, ts: stamps.times[index], cat: "memory", args: args))
        }
        out += slices(timeline, stamps: stamps, pid: pid)
        return out
    }

    /// A slice per phase span and, nested inside, one per contiguous run of a layer. A slice ends
    /// where the next one begins (the last one where the timeline ends).
    static func slices(_ timeline: Timeline, stamps: Stamps, pid: Int) -> [Event] {
        var out: [Event] = []
        let spans = timeline.phaseSpans
        func end(after last: Int) -> Double {
            last + 1 < stamps.times.count ? stamps.times[last + 1] : stamps.end
        }
        for span in spans {
            let start = stamps.times[span.first], finish = end(after: span.last)
            out.append(Event(name: String(describing: span.phase), ph: "X", pid: pid, tid: stepThread, ts: start, dur: max(0, finish - start),
                             cat: "phase", args: ["events": .int(span.last - span.first + 1)]))
            var runStart = span.first
            for index in span.first...span.last {
                let isLast = index == span.last || timeline.events[index + 1].layerPath != timeline.events[runStart].layerPath
                guard isLast else { continue }
                let event = timeline.events[runStart]
                let runEnd = index == span.last ? finish : stamps.times[index + 1]
                let allocated = timeline.events[runStart...index].filter { $0.kind == .allocate }.reduce(0) { $0 + $1.bytes }
                out.append(Event(name: event.layerPath.isEmpty ? "(no layer)" : event.layerPath, ph: "X", pid: pid, tid: stepThread,
                                 ts: stamps.times[runStart], dur: max(0, runEnd - stamps.times[runStart]), cat: "layer",
                                 args: ["phase": .string(String(describing: span.phase)), "events": .int(index - runStart + 1),
                                        "allocatedBytes": .int(allocated)]))
                runStart = index + 1
            }
        }
        return out
    }
}
