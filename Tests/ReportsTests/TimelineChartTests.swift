import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import MemoryModel
import Planner
import Reports
import XCTest

/// Reads an SVG with XMLParser: whether it is well-formed, and the peak marker's attributes and text.
final class SVGReader: NSObject, XMLParserDelegate {
    var elements: [String: Int] = [:]
    var peakAttributes: [String: String] = [:]
    var peakText = ""
    var roleBands: [String] = []
    private var peakDepth = 0

    static func read(_ svg: String) throws -> SVGReader {
        let reader = SVGReader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        guard parser.parse() else {
            throw NSError(domain: "SVGReader", code: 1, userInfo: [NSLocalizedDescriptionKey: "not XML: \(String(describing: parser.parserError))"])
        }
        return reader
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements[name, default: 0] += 1
        if attributes["id"] == "peak-marker" { peakAttributes = attributes; peakDepth = 1 } else if peakDepth > 0 { peakDepth += 1 }
        if attributes["class"] == "role-band", let role = attributes["data-role"] { roleBands.append(role) }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if peakDepth > 0 { peakDepth -= 1 }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if peakDepth > 0 { peakText += string }
    }
}

final class TimelineChartTests: XCTestCase {
    func testSVGIsXMLAndMarksThePeak() throws {
        let timeline = ReportFixtures.measured
        let svg = TimelineChart.svg(planned: ReportFixtures.planned, measured: timeline)
        let reader = try SVGReader.read(svg)
        let sweep = timeline.sweep
        XCTAssertEqual(reader.peakAttributes["data-bytes"], String(sweep.peakBytes))
        XCTAssertEqual(reader.peakAttributes["data-event"], String(try XCTUnwrap(sweep.peakEventIndex)))
        XCTAssertTrue(reader.peakText.contains(ByteCount.format(sweep.peakBytes)), reader.peakText)
        XCTAssertTrue(reader.peakText.contains("backward t=1"), reader.peakText)
        XCTAssertEqual(reader.roleBands, ["parameters", "gradients", "optimizerState", "input", "neuronState", "activations", "workspace"])
        XCTAssertTrue(svg.contains("class=\"predicted\""), "the plan is overlaid on the measurement")
        XCTAssertTrue(svg.contains("milliseconds since the step began"), "measured timelines are labelled in ms")
        XCTAssertTrue(svg.contains("stage&lt;1&gt;/conv&amp;&quot;bn&quot;"), "layer names are escaped")
    }

    func testPlannedOnlyIsLabelledInEvents() throws {
        let svg = TimelineChart.svg(planned: ReportFixtures.planned, measured: nil)
        _ = try SVGReader.read(svg)
        XCTAssertTrue(svg.contains("(event index)"))
        XCTAssertFalse(svg.contains("class=\"predicted\""))
    }

    func testEmptyTimelineStillDraws() throws {
        let empty = Timeline(title: "empty", source: "planned", strategy: "bptt", events: [])
        let reader = try SVGReader.read(TimelineChart.svg(planned: empty, measured: nil))
        XCTAssertTrue(reader.peakAttributes.isEmpty)
    }

    /// A step longer than the chart's positions keeps its peak, which sits in one event of thousands.
    func testDownsamplingKeepsThePeak() throws {
        var events: [Timeline.Event] = []
        for id in 0..<4000 {
            let bytes = id == 2345 ? 1_000_000 : 100
            events.append(.init(kind: .allocate, tensorID: id, bytes: bytes, role: .activation, phase: .forward(timestep: id / 100),
                                layerPath: "l", name: "x", timestep: id / 100, timeMs: nil))
            events.append(.init(kind: .free, tensorID: id, bytes: bytes, role: .activation, phase: .forward(timestep: id / 100),
                                layerPath: "l", name: "x", timestep: id / 100, timeMs: nil))
        }
        let timeline = Timeline(title: "long", source: "planned", strategy: "bptt", events: events)
        let svg = TimelineChart.svg(planned: timeline, measured: nil)
        let reader = try SVGReader.read(svg)
        XCTAssertEqual(reader.peakAttributes["data-bytes"], "1000000")
        XCTAssertEqual(reader.peakAttributes["data-event"], "4690")
        // One band's path has at most two vertical moves per position on each edge.
        let path = try XCTUnwrap(svg.split(separator: "\n").first { $0.contains("data-role=\"activations\"") })
        XCTAssertLessThanOrEqual(path.filter { $0 == "H" }.count, 2 * TimelineChart.maxPositions)
        XCTAssertTrue(svg.contains("forward t=0..39"), "forty forward phases make one labelled band")
    }

    func testARealPlanRenders() throws {
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let plan = try ReportFixtures.tinyPlan(strategy, timesteps: 4)
            let planned = Timeline(plan: plan)
            let measured = ReportFixtures.fakeMeasurement(of: planned)
            let svg = TimelineChart.svg(planned: planned, measured: measured)
            let reader = try SVGReader.read(svg)
            XCTAssertEqual(reader.peakAttributes["data-bytes"], String(plan.peakBytes), "\(strategy)")
            XCTAssertEqual(reader.peakAttributes["data-phase"], plan.sweep.peakPhase.map(String.init(describing:)), "\(strategy)")
            XCTAssertFalse(reader.roleBands.isEmpty)
        }
    }

    func testPhaseGroupsMergeTimesteps() {
        let labels = PhaseGroup.groups(ReportFixtures.measured).map(\.label)
        XCTAssertEqual(labels, ["setup", "forward t=0..1", "backward t=1..0", "optimizer step"])
    }
}
