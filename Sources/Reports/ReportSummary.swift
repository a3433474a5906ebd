import MemoryModel

/// What `report.json` holds: per schedule the planned and measured peaks, the bytes of each role
/// at the peak and the largest tensors live there; the comparison when there is one.
public struct ReportSummary: Codable, Equatable, Sendable {
    /// One timeline's peak.
    public struct Peak: Codable, Equatable, Sendable {
        public var title: String
        public var peakBytes: Int
        public var peakEventIndex: Int?
        public var peakPhase: String?
        /// Milliseconds since the step began (measured timelines).
        public var peakTimeMs: Double?
        public var eventCount: Int
        public var bytesByRoleAtPeak: RoleBytes
        public var topLiveTensors: [Timeline.LiveTensor]

        public init(_ timeline: Timeline, top: Int = ReportSummary.topTensorCount) {
            let sweep = timeline.sweep
            title = timeline.title
            peakBytes = sweep.peakBytes
            peakEventIndex = sweep.peakEventIndex
            peakPhase = sweep.peakPhase.map(String.init(describing:))
            peakTimeMs = sweep.peakEventIndex.flatMap { timeline.events[$0].timeMs }
            eventCount = timeline.events.count
            bytesByRoleAtPeak = sweep.bytesByRoleAtPeak
            topLiveTensors = Array(timeline.tensorsLiveAtPeak.prefix(top))
        }
    }

    public struct Schedule: Codable, Equatable, Sendable {
        public var strategy: String
        public var planned: Peak
        public var measured: Peak?
        /// Measured less planned peak bytes, when measured.
        public var peakDifferenceBytes: Int?
    }

    /// How many of the largest live tensors each peak lists.
    public static let topTensorCount = 15

    public var title: String
    public var schedules: [Schedule]
    public var comparison: ComparisonReport?

    public init(title: String, comparison: ComparisonReport?, schedules: [(planned: Timeline, measured: Timeline?)]) {
        self.title = title
        self.comparison = comparison
        self.schedules = schedules.map { schedule in
            let planned = Peak(schedule.planned), measured = schedule.measured.map { Peak($0) }
            return Schedule(strategy: schedule.planned.strategy, planned: planned, measured: measured,
                            peakDifferenceBytes: measured.map { $0.peakBytes - planned.peakBytes })
        }
    }

    /// The peaks side by side, for when no comparison was run (a plan, or traces read back).
    public func peakTable() -> TextTable {
        let measured = schedules.contains { $0.measured != nil }
        var headers = ["strategy", "planned peak"]
        if measured { headers += ["measured peak", "diff"] }
        headers += ["peak phase"] + TensorRole.allCases.map(\.shortLabel)
        var alignments: [TextTable.Alignment] = [.left, .right]
        if measured { alignments += [.right, .right] }
        alignments += [.left] + TensorRole.allCases.map { _ in .right }
        var table = TextTable(headers, alignments: alignments)
        for schedule in schedules {
            let shown = schedule.measured ?? schedule.planned
            var row = [schedule.strategy, ByteCount.format(schedule.planned.peakBytes)]
            if measured {
                row += [schedule.measured.map { ByteCount.format($0.peakBytes) } ?? "-",
                        schedule.peakDifferenceBytes.map(ComparisonReport.signedBytes) ?? "-"]
            }
            row += [shown.peakPhase ?? "-"] + TensorRole.allCases.map { ByteCount.format(shown.bytesByRoleAtPeak[$0]) }
            table.add(row)
        }
        return table
    }

    /// The Markdown summary: the comparison's tables when there is one, else the peaks.
    public func markdown() -> String {
        var sections = ["# " + title.replacingPipes]
        if let comparison {
            sections.append(comparison.render(markdown: true))
        } else {
            let measured = schedules.contains { $0.measured != nil }
            sections.append("## Peak memory of a training step\n" + peakTable().markdown() + "\n\n"
                            + "Bytes by role at the \(measured ? "measured (else planned)" : "planned") peak: "
                            + TensorRole.allCases.map { "\($0.shortLabel) = \($0.label)" }.joined(separator: ", ") + ".")
        }
        return sections.joined(separator: "\n\n") + "\n"
    }
}
