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

    /// The timelines' trace events. Measured timelines are in microseconds since their step began;
    /// planned ones have no clock, so each event advances the clock by one "microsecond" and the
    /// process name says so.
    public static func json(_ timelines: [Timeline]) throws -> Data {
        var events: [Event] = []
        for (position, timeline) in timelines.enumerated() {
            events += self.events(timeline, pid: position + 1)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(Document(traceEvents: events, displayTimeUnit: "ms"))
    }

    static let stepThread = 1

    static func events(_ timeline: Timeline, pid: Int) -> [Event] {
        let timed = !timeline.events.isEmpty && timeline.events.allSatisfy { $0.timeMs != nil }
        // Clocks only move forward; a running maximum guards against a reordered sample.
        var clock = 0.0
        let stamps: [Double] = timeline.events.enumerated().map { index, event in
            clock = max(clock, timed ? (event.timeMs ?? 0) * 1000 : Double(index))
            return clock
        }
        let processName = timeline.title + (timed ? "" : " (planned: ts = event index, not time)")
        var out: [Event] = [
            Event(name: "process_name", ph: "M", pid: pid, tid: stepThread, args: ["name": .string(processName)]),
            Event(name: "process_sort_index", ph: "M", pid: pid, tid: stepThread, args: ["sort_index": .int(pid)]),
            Event(name: "thread_name", ph: "M", pid: pid, tid: stepThread, args: ["name": .string("phases and layers")]),
        ]
        let series = timeline.liveByRole
        let roles = Palette.stackOrder.filter { role in series.contains { $0[role] > 0 } }
        for (index, roleBytes) in series.enumerated() {
            // Every event changes some role's bytes; one counter sample per event keeps each change.
            let args = Dictionary(uniqueKeysWithValues: roles.map { ($0.reportKey, Event.Value.int(roleBytes[$0])) })
            out.append(Event(name: "live bytes", ph: "C", pid: pid, tid: stepThread, ts: stamps[index], cat: "memory", args: args))
        }
        out += slices(timeline, stamps: stamps, timed: timed, pid: pid)
        return out
    }

    /// A slice per phase span and, nested inside, one per contiguous run of a layer. A slice ends
    /// where the next one begins (the last one at the last event, or one tick later when planned).
    static func slices(_ timeline: Timeline, stamps: [Double], timed: Bool, pid: Int) -> [Event] {
        var out: [Event] = []
        let spans = timeline.phaseSpans
        func end(after last: Int) -> Double {
            last + 1 < stamps.count ? stamps[last + 1] : stamps[last] + (timed ? 0 : 1)
        }
        for span in spans {
            let start = stamps[span.first], finish = end(after: span.last)
            out.append(Event(name: String(describing: span.phase), ph: "X", pid: pid, tid: stepThread, ts: start, dur: max(0, finish - start),
                             cat: "phase", args: ["events": .int(span.last - span.first + 1)]))
            var runStart = span.first
            for index in span.first...span.last {
                let isLast = index == span.last || timeline.events[index + 1].layerPath != timeline.events[runStart].layerPath
                guard isLast else { continue }
                let event = timeline.events[runStart]
                let runEnd = index == span.last ? finish : stamps[index + 1]
                let allocated = timeline.events[runStart...index].filter { $0.kind == .allocate }.reduce(0) { $0 + $1.bytes }
                out.append(Event(name: event.layerPath.isEmpty ? "(no layer)" : event.layerPath, ph: "X", pid: pid, tid: stepThread,
                                 ts: stamps[runStart], dur: max(0, runEnd - stamps[runStart]), cat: "layer",
                                 args: ["phase": .string(String(describing: span.phase)), "events": .int(index - runStart + 1),
                                        "allocatedBytes": .int(allocated)]))
                runStart = index + 1
            }
        }
        return out
    }
}
