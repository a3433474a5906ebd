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
