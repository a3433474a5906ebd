import Foundation
import Planner
import Reports
import XCTest

final class HTMLReportTests: XCTestCase {
    func samplePage(comparison: ComparisonReport?) throws -> String {
        let plan = Timeline(plan: try ReportFixtures.tinyPlan(.bptt, timesteps: 3))
        return HTMLReport.render(title: "tiny <report> & \"friends\"", comparison: comparison, schedules: [
            (ReportFixtures.planned, ReportFixtures.measured), (plan, nil),
        ])
    }

    /// The page opens with no network: nothing it references lives anywhere else.
    func testNothingExternal() throws {
        for page in [try samplePage(comparison: nil), try samplePage(comparison: ReportFixtures.comparison)] {
            let lowered = page.lowercased()
            for forbidden in ["http://", "https://", "<script", "<link", "@import", "url(", "<img", "<iframe", "<object", "<embed",
                              "src=\"//", "href=\"//", "xlink:href", "ftp://", "file://"] {
                XCTAssertFalse(lowered.contains(forbidden), "the page contains \(forbidden)")
            }
            // The only links are anchors within the page.
            var rest = Substring(lowered)
            while let range = rest.range(of: "href=\"") {
                rest = rest[range.upperBound...]
                XCTAssertEqual(rest.first, "#", "an href leaves the page: \(rest.prefix(40))")
            }
            XCTAssertFalse(lowered.contains(" src="))
        }
    }

    func testTextIsEscaped() throws {
        let page = try samplePage(comparison: nil)
        XCTAssertTrue(page.contains("<title>tiny &lt;report&gt; &amp; &quot;friends&quot;</title>"))
        XCTAssertFalse(page.contains(ReportFixtures.awkwardLayer), "the raw layer name never reaches the page")
        XCTAssertTrue(page.contains("stage&lt;1&gt;/conv&amp;&quot;bn&quot;|x:out@t1"))
    }

    func testSectionsAndPeakTensors() throws {
        let page = try samplePage(comparison: ReportFixtures.comparison)
        XCTAssertEqual(page.components(separatedBy: "<svg ").count - 1, 2, "one chart per schedule")
        XCTAssertTrue(page.contains("id=\"schedule-bptt\"") && page.contains("id=\"schedule-bptt-2\""), "unique anchors")
        XCTAssertTrue(page.contains("Plan and measurement differ for checkpoint"))
        XCTAssertTrue(page.contains("Peak 15.6 KiB (16,000 B) at event 9 of 17, 1.50 ms into the step, during backward t=1"))
        // The largest tensor at the fixed timeline's peak: fc's 4 KiB weight comes before its 4 KiB gradient (lower id).
        let firstRow = try XCTUnwrap(page.range(of: "<td class=\"num\">1</td>"))
        XCTAssertTrue(page[firstRow.upperBound...].hasPrefix("<td class=\"label\">fc:weight</td>"))
    }
}

final class HTMLReportPageTests: XCTestCase {
    /// The top y tick label of every chart on a page, in order.
    func topTicks(_ page: String) throws -> [String] {
        try page.components(separatedBy: "<svg ").dropFirst().map { chart in
            let svg = "<svg " + chart.components(separatedBy: "</svg>")[0] + "</svg>"
            let reader = try SVGReader.read(svg)
            // The y axis labels: right-aligned left of the plot, the topmost (smallest y) last drawn.
            let labels = reader.texts.filter { $0.attributes["text-anchor"] == "end" && $0.string.hasSuffix("B") }
            return try XCTUnwrap(labels.min { (Double($0.attributes["y"] ?? "") ?? 0) < (Double($1.attributes["y"] ?? "") ?? 0) }).string
        }
    }

    /// Schedules of different sizes are drawn on one y axis, so their heights compare by eye, and
    /// the page says so.
    func testChartsShareOneYScale() throws {
        let big = Timeline(plan: try ReportFixtures.tinyPlan(.bptt, timesteps: 8))
        let small = Timeline(plan: try ReportFixtures.tinyPlan(.sltt, timesteps: 2))
        XCTAssertGreaterThan(big.sweep.peakBytes, 2 * small.sweep.peakBytes)
        let page = HTMLReport.render(title: "two", comparison: nil, schedules: [(big, ReportFixtures.fakeMeasurement(of: big)), (small, nil)])
        let ticks = try topTicks(page)
        XCTAssertEqual(ticks.count, 2)
        XCTAssertEqual(ticks[0], ticks[1], "both charts end their y axis at the same bytes")
        XCTAssertTrue(page.contains("share one y axis"))
    }

    /// Reasons written with Markdown backticks show as code, not as raw backticks.
    func testBackticksBecomeCode() throws {
        var comparison = ReportFixtures.comparison
        comparison.notApplicable = [.init(strategy: "revsnn", reason: "the network has no reversible stage (add a `reversible:` stage)")]
        comparison.strategies[1].firstDifference = "event 5: measured allocates `conv:im2col<a&b>`, the plan does not"
        let page = HTMLReport.render(title: "t", comparison: comparison, schedules: [(ReportFixtures.planned, ReportFixtures.measured)])
        XCTAssertTrue(page.contains("(add a <code>reversible:</code> stage)"))
        XCTAssertTrue(page.contains("measured allocates <code>conv:im2col&lt;a&amp;b&gt;</code>, the plan does not"))
        XCTAssertFalse(page.contains("`"), "no raw backtick reaches the page")
        let sweep = SweepReport(axis: "timesteps", profile: "p", batch: 1, strategies: ReportFixtures.sweep.strategies,
                                notApplicable: comparison.notApplicable)
        let sweepPage = try XCTUnwrap(String(data: try XCTUnwrap(ReportBundle.sweepFiles(sweep)["sweep.html"]), encoding: .utf8))
        XCTAssertTrue(sweepPage.contains("<code>reversible:</code>"))
        XCTAssertFalse(sweepPage.contains("`"))
    }

    /// The sweep's legend fits beside its plot with the longest entries it writes: measured slopes.
    func testSweepLegendFitsTheChart() throws {
        let measuredEverywhere = ReportFixtures.sweep.strategies.map { series in
            SweepReport.Series(strategy: series.strategy, points: series.points.map { point in
                var point = point
                point.measuredHeldForBackwardBytes = point.heldForBackwardBytes + 512
                return point
            })
        }
        let sweep = SweepReport(axis: "timesteps", profile: "fixed", batch: 2, strategies: measuredEverywhere, notApplicable: [])
        XCTAssertTrue(sweep.strategies.allSatisfy { $0.measuredSlope != nil })
        for width in [960, 720] {
            let reader = try SVGReader.read(ScalingChart.svg(sweep, width: width))
            XCTAssertEqual(reader.collisions(width: Double(width)), [], "at \(width)")
            XCTAssertTrue(reader.texts.contains { $0.string.contains("measured 0.") || $0.string.contains("measured 1.") })
        }
    }
}
