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
        let events = try validate(try ChromeTrace.json([ReportFixtures.planned, ReportFixtures.measured]))
        let names = events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "process_name" }
            .compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        XCTAssertEqual(names, ["fixed bptt (planned) (planned: ts = event index, not time)", "fixed bptt (measured)"])
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
        _ = try validate(try ChromeTrace.json([planned, ReportFixtures.fakeMeasurement(of: planned)]))
    }

    func total(_ event: [String: Any]) -> Int {
        (event["args"] as? [String: Any])?.values.compactMap { ($0 as? NSNumber)?.intValue }.reduce(0, +) ?? 0
    }
}
