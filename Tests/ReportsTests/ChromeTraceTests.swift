import Foundation
import Planner
import Reports
import XCTest

/// trace.json against the trace-event format's required fields (what Perfetto and chrome://tracing need).
final class ChromeTraceTests: XCTestCase {
    func validate(_ data: Data, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file: file, line: line)
        XCTAssertNotNil(root["displayTimeUnit"] as? String, file: file, line: line)
        let events = try XCTUnwrap(root["traceEvents"] as? [[String: Any]], file: file, line: line)
        var lastTimestamp: [String: Double] = [:]
        for (index, event) in events.enumerated() {
            let where_ = "event \(index): \(event)"
            let ph = try XCTUnwrap(event["ph"] as? String, where_, file: file, line: line)
            XCTAssertNotNil(event["name"] as? String, where_, file: file, line: line)
            XCTAssertNotNil(event["pid"] as? Int, where_, file: file, line: line)
            if ph == "M" {
                XCTAssertNotNil(event["args"] as? [String: Any], where_, file: file, line: line)
                continue
            }
            XCTAssertNotNil(event["tid"] as? Int, where_, file: file, line: line)
            let ts = try XCTUnwrap(event["ts"] as? Double, where_, file: file, line: line)
            switch ph {
            case "X":
                let dur = try XCTUnwrap(event["dur"] as? Double, where_, file: file, line: line)
                XCTAssertGreaterThanOrEqual(dur, 0, where_, file: file, line: line)
            case "C":
                let args = try XCTUnwrap(event["args"] as? [String: Any], where_, file: file, line: line)
                XCTAssertTrue(args.values.allSatisfy { $0 is NSNumber }, where_, file: file, line: line)
            default:
                XCTFail("unexpected phase \(ph): \(where_)", file: file, line: line)
            }
            // A counter track is (process, name); a slice track is (process, thread).
            let track = ph == "C" ? "C \(event["pid"]!) \(event["name"]!)" : "X \(event["pid"]!) \(event["tid"]!)"
            XCTAssertGreaterThanOrEqual(ts, lastTimestamp[track] ?? -.infinity, "timestamps go back on \(track): \(where_)", file: file, line: line)
            lastTimestamp[track] = ts
        }
        return events
    }

    func testFixedTimelinesFollowTheFormat() throws {
        let events = try validate(try ChromeTrace.json(schedules: [(ReportFixtures.planned, ReportFixtures.measured)]))
        XCTAssertEqual(processNames(events), [
            "fixed bptt (planned) (on the measurement's clock: planned events placed phase by phase on the measured step (15 planned, 17 measured events))",
            "fixed bptt (measured)",
        ])
        let measured = events.filter { $0["pid"] as? Int == 2 }
        let counters = measured.filter { $0["ph"] as? String == "C" }
        XCTAssertEqual(counters.count, ReportFixtures.measured.events.count, "one counter sample per change")
        let peakCounter = try XCTUnwrap(counters.max { total($0) < total($1) })
        XCTAssertEqual(total(peakCounter), ReportFixtures.measured.sweep.peakBytes)
        XCTAssertEqual(peakCounter["ts"] as? Double, 1500, "the peak is 1.5 ms into the step, in microseconds")
        let phases = measured.filter { $0["cat"] as? String == "phase" }.compactMap { $0["name"] as? String }
        XCTAssertEqual(phases, ["setup", "forward t=0", "forward t=1", "backward t=1", "backward t=0", "optimizer step"])
        let layers = measured.filter { $0["cat"] as? String == "layer" && ($0["args"] as? [String: Any])?["phase"] as? String == "forward t=0" }
        XCTAssertEqual(layers.compactMap { $0["name"] as? String }, [ReportFixtures.awkwardLayer, "lif", ReportFixtures.awkwardLayer],
                       "contiguous runs of one layer within the phase")
        XCTAssertEqual(layers.compactMap { $0["dur"] as? Double }.reduce(0, +), 600, accuracy: 1e-6, "layers tile their phase (0.4 to 1.0 ms)")
    }

    func testARealPlanFollowsTheFormat() throws {
        let planned = Timeline(plan: try ReportFixtures.tinyPlan(.checkpoint, timesteps: 4))
        _ = try validate(try ChromeTrace.json(schedules: [(planned, ReportFixtures.fakeMeasurement(of: planned))]))
    }

    /// The trace a report folder holds, read back with a JSON parser and checked against the format.
    func bundledTrace(_ schedules: [(planned: Timeline, measured: Timeline?)]) throws -> [[String: Any]] {
        let files = try ReportBundle.files(title: "trace", comparison: nil, schedules: schedules)
        return try validate(try XCTUnwrap(files["trace.json"]))
    }

    func processNames(_ events: [[String: Any]]) -> [String] {
        events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "process_name" }
            .compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
    }

    /// A process's timed events (counter samples and slices), and its phase slices as (name, ts, dur).
    func timed(_ events: [[String: Any]], pid: Int) -> (ts: [Double], phases: [(name: String, ts: Double, dur: Double)]) {
        let own = events.filter { $0["pid"] as? Int == pid && $0["ph"] as? String != "M" }
        let phases = own.filter { $0["cat"] as? String == "phase" }.map { event in
            (name: event["name"] as? String ?? "", ts: event["ts"] as? Double ?? .nan, dur: event["dur"] as? Double ?? .nan)
        }
        return (own.compactMap { $0["ts"] as? Double }, phases)
    }

    /// Plan and measurement on one time base: the planned process spans the measured one's time,
    /// and each planned phase starts and ends where the measured phase of the same name does, though
    /// the measurement holds an event (a workspace buffer) the plan does not.
    func testPlanAndMeasurementShareOneTimeBase() throws {
        let events = try bundledTrace([(ReportFixtures.planned, ReportFixtures.measured)])
        let planned = timed(events, pid: 1), measured = timed(events, pid: 2)
        XCTAssertEqual(planned.ts.min(), 0)
        XCTAssertEqual(measured.ts.min(), 0)
        XCTAssertEqual(measured.ts.max(), 2750, "the measured step ends 2.75 ms in")
        XCTAssertEqual(planned.ts.max(), measured.ts.max(), "the plan spans the measured step")
        XCTAssertEqual(planned.phases.map(\.name), measured.phases.map(\.name))
        for (p, m) in zip(planned.phases, measured.phases) {
            XCTAssertEqual(p.ts, m.ts, accuracy: 1e-9, "\(p.name) starts at the same time")
            XCTAssertEqual(p.dur, m.dur, accuracy: 1e-9, "\(p.name) lasts as long")
        }
        // Forward t=0 holds two planned events and four measured ones (0.4 to 0.7 ms): the plan's
        // first and last sit on the measured span's first and last.
        let forward = try XCTUnwrap(events.firstIndex { $0["pid"] as? Int == 1 && $0["ph"] as? String == "C" && ($0["ts"] as? Double) == 400 })
        XCTAssertEqual(events[forward + 1]["ts"] as? Double, 700)
    }

    /// Where plan and measurement are the same events (snnmem's engine), every planned event is
    /// stamped with its measured event's time.
    func testOneToOneStreamsShareEveryTimestamp() throws {
        let plan = Timeline(plan: try ReportFixtures.tinyPlan(.checkpoint, timesteps: 4))
        let measurement = ReportFixtures.fakeMeasurement(of: plan, millisecondsPerEvent: 0.37)
        let events = try bundledTrace([(plan, measurement)])
        let counters = { (pid: Int) in events.filter { $0["pid"] as? Int == pid && $0["ph"] as? String == "C" }.compactMap { $0["ts"] as? Double } }
        XCTAssertEqual(counters(1).count, plan.events.count)
        XCTAssertEqual(counters(1), counters(2))
        XCTAssertEqual(counters(2).last ?? 0, Double(plan.events.count - 1) * 370, accuracy: 1e-6)
        XCTAssertTrue(processNames(events)[0].contains("each planned event at its measured event's time"), processNames(events)[0])
    }

    /// A measurement without times (PyTorch's) still sets the time base: its event index, which
    /// the plan is placed on; only a plan alone counts its own events, and says so.
    func testWithoutAClockTheMeasurementsIndexIsTheTimeBase() throws {
        var untimed = ReportFixtures.measured
        for index in untimed.events.indices { untimed.events[index].timeMs = nil }
        let plan = Timeline(plan: try ReportFixtures.tinyPlan(.bptt, timesteps: 2))
        let events = try bundledTrace([(ReportFixtures.planned, untimed), (plan, nil)])
        let planned = timed(events, pid: 1), measured = timed(events, pid: 2)
        XCTAssertEqual(planned.ts.max(), measured.ts.max())
        XCTAssertEqual(measured.ts.max(), 16, "17 measured events, at 0...16")
        for (p, m) in zip(planned.phases, measured.phases) { XCTAssertEqual(p.ts, m.ts, accuracy: 1e-9, p.name) }
        let names = processNames(events)
        XCTAssertTrue(names[0].contains("on the measurement's event index"), names[0])
        XCTAssertTrue(names[1].hasSuffix("(no times recorded: ts = event index, not time)"), names[1])
        XCTAssertTrue(names[2].hasSuffix("(no measurement: ts = event index, not time)"), names[2])
        XCTAssertEqual(timed(events, pid: 3).ts.max(), Double(plan.events.count - 1), "a lone plan's events at 0...count-1")
    }

    func total(_ event: [String: Any]) -> Int {
        (event["args"] as? [String: Any])?.values.compactMap { ($0 as? NSNumber)?.intValue }.reduce(0, +) ?? 0
    }
}
