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
    /// Every `<text>`: its attributes, its characters and the classes of the groups around it.
    var texts: [(attributes: [String: String], string: String, groups: [String])] = []
    /// Every `<path>` with the classes of the groups around it, in drawing order.
    var paths: [(attributes: [String: String], groups: [String])] = []
    private var peakDepth = 0
    private var openGroups: [String] = []
    private var inText = false

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
        switch name {
        case "g": openGroups.append(attributes["class"] ?? "")
        case "text": texts.append((attributes, "", openGroups)); inText = true
        case "path": paths.append((attributes, openGroups))
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if peakDepth > 0 { peakDepth -= 1 }
        if name == "g" { openGroups.removeLast() }
        if name == "text" { inText = false }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if peakDepth > 0 { peakText += string }
        if inText { texts[texts.count - 1].string += string }
    }

    /// Horizontal extent of each text, from its anchor and the same generous width estimate the
    /// charts lay out with (0.6 of the font size per character).
    static func extent(_ text: (attributes: [String: String], string: String, groups: [String])) -> (y: Double, from: Double, to: Double) {
        let x = Double(text.attributes["x"] ?? "") ?? 0, y = Double(text.attributes["y"] ?? "") ?? 0
        let width = Double(text.string.count) * (Double(text.attributes["font-size"] ?? "") ?? 12) * 0.6
        switch text.attributes["text-anchor"] {
        case "end": return (y, x - width, x)
        case "middle": return (y, x - width / 2, x + width / 2)
        default: return (y, x, x + width)
        }
    }

    /// Texts on the same baseline that overlap, and texts that leave the picture (rotated axis
    /// titles aside: their extent is vertical).
    func collisions(width: Double) -> [String] {
        var found: [String] = []
        let texts = self.texts.filter { $0.attributes["transform"] == nil }
        for (i, a) in texts.enumerated() {
            let ea = Self.extent(a)
            if ea.from < 0 || ea.to > width { found.append("'\(a.string)' spans \(ea.from)...\(ea.to), outside 0...\(width)") }
            for b in texts[(i + 1)...] {
                let eb = Self.extent(b)
                if abs(ea.y - eb.y) < 8, ea.from < eb.to, eb.from < ea.to { found.append("'\(a.string)' overlaps '\(b.string)'") }
            }
        }
        return found
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
        XCTAssertTrue(svg.contains("(event index, not time: a plan has no clock)"))
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

    /// x is time where the timeline has times: a tick at 1 ms sits 1/2.75 of the way along a
    /// 2.75 ms step, and the phases' bands start where their first event happens.
    func testMeasuredAxisIsSpacedByTime() throws {
        let reader = try SVGReader.read(TimelineChart.svg(planned: ReportFixtures.planned, measured: ReportFixtures.measured))
        func x(_ label: String) throws -> Double {
            let text = try XCTUnwrap(reader.texts.first { $0.string == label && !$0.groups.contains("y-axis") }, "no text '\(label)'")
            return try XCTUnwrap(Double(text.attributes["x"] ?? ""))
        }
        // Ticks at 0, 1 and 2 ms are evenly spaced (events are not: 7 happen in the first ms, 5 in the second).
        let millisecond = try x("1.0") - x("0")
        XCTAssertEqual(try x("2.0") - x("1.0"), millisecond, accuracy: 0.1)
        // The backward band runs from the first backward event (1.5 ms) to the optimizer step (2.6 ms).
        XCTAssertEqual(try x("backward t=1..0"), try x("0") + (1.5 + 2.6) / 2 * millisecond, accuracy: 0.1)
        XCTAssertTrue(reader.texts.contains { $0.string == "milliseconds since the step began" })
    }

    /// Where prediction and measurement agree the predicted line lies on the measured area's top
    /// edge: it is drawn after the area, dashed, over a wider white casing, so it stays visible.
    func testPredictedLineStaysVisibleWhereItAgrees() throws {
        let planned = Timeline(plan: try ReportFixtures.tinyPlan(.bptt, timesteps: 2))
        let reader = try SVGReader.read(TimelineChart.svg(planned: planned, measured: ReportFixtures.fakeMeasurement(of: planned)))
        let lastBand = try XCTUnwrap(reader.paths.lastIndex { $0.attributes["class"] == "role-band" })
        let predicted = reader.paths.indices.filter { reader.paths[$0].groups.contains("predicted") }
        guard predicted.count == 2 else { return XCTFail("expected a casing and the line, found \(predicted.count) predicted paths") }
        XCTAssertTrue(predicted.allSatisfy { $0 > lastBand }, "drawn on top of the stack")
        let casing = reader.paths[predicted[0]].attributes, line = reader.paths[predicted[1]].attributes
        XCTAssertEqual(casing["d"], line["d"])
        XCTAssertEqual(casing["stroke"], "#FFFFFF")
        XCTAssertGreaterThan(Double(casing["stroke-width"] ?? "") ?? 0, Double(line["stroke-width"] ?? "") ?? 0)
        XCTAssertNotNil(line["stroke-dasharray"], "dashed: distinct from the area's solid edge")
    }

    /// No legend entry, label or tick runs into another, or off the picture, at the page's size
    /// and at a narrow one.
    func testTextsDoNotCollide() throws {
        let plan = Timeline(plan: try ReportFixtures.tinyPlan(.checkpoint, timesteps: 4))
        for width in [960, 640] {
            for (planned, measured) in [(ReportFixtures.planned, ReportFixtures.measured), (plan, ReportFixtures.fakeMeasurement(of: plan)),
                                        (plan, nil)] as [(Timeline, Timeline?)] {
                let reader = try SVGReader.read(TimelineChart.svg(planned: planned, measured: measured, width: width))
                XCTAssertEqual(reader.collisions(width: Double(width)), [], "\(planned.title) at \(width)")
            }
        }
    }

    func testPhaseGroupsMergeTimesteps() {
        let labels = PhaseGroup.groups(ReportFixtures.measured).map(\.label)
        XCTAssertEqual(labels, ["setup", "forward t=0..1", "backward t=1..0", "optimizer step"])
    }
}
