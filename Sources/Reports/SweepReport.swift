import MemoryModel

/// Kept-for-backward bytes of each strategy over T (or over depth): `snnmem sweep`.
public struct SweepReport: Codable, Equatable, Sendable {
    public struct Point: Codable, Equatable, Sendable {
        public var value: Int
        public var heldForBackwardBytes: Int
        public var measuredHeldForBackwardBytes: Int?
        public var peakBytes: Int
        public init(value: Int, heldForBackwardBytes: Int, measuredHeldForBackwardBytes: Int?, peakBytes: Int) {
            self.value = value
            self.heldForBackwardBytes = heldForBackwardBytes
            self.measuredHeldForBackwardBytes = measuredHeldForBackwardBytes
            self.peakBytes = peakBytes
        }
    }

    public struct Series: Codable, Equatable, Sendable {
        public var strategy: String
        public var points: [Point]
        /// Fitted log-log slope of predicted activation bytes against the axis value.
        public var slope: Double?
        public var measuredSlope: Double?
        public init(strategy: String, points: [Point]) {
            self.strategy = strategy
            self.points = points
            slope = Slope.logLog(points.map { (Double($0.value), Double($0.heldForBackwardBytes)) })
            let measured = points.compactMap { p in p.measuredHeldForBackwardBytes.map { (Double(p.value), Double($0)) } }
            measuredSlope = measured.count == points.count ? Slope.logLog(measured) : nil
        }
    }

    /// "timesteps" or "depth".
    public var axis: String
    public var profile: String
    /// The runtime whose allocations were planned ("snnmem", "pytorch-cuda", "pytorch-cpu").
    public var runtime: String
    public var batch: Int
    public var strategies: [Series]
    public var notApplicable: [ComparisonReport.NotApplicable]

    public init(axis: String, profile: String, runtime: String = "snnmem", batch: Int, strategies: [Series],
                notApplicable: [ComparisonReport.NotApplicable]) {
        self.runtime = runtime
        self.axis = axis
        self.profile = profile
        self.batch = batch
        self.strategies = strategies
        self.notApplicable = notApplicable
    }

    public func render(markdown: Bool) -> String {
        let values = strategies.first?.points.map(\.value) ?? []
        let name = axis == "depth" ? "x" : "T="
        var table = TextTable(["strategy"] + values.map { "\(name)\($0)" } + ["slope"])
        for series in strategies {
            table.add([series.strategy] + series.points.map { p in
                ByteCount.format(p.heldForBackwardBytes) + (p.measuredHeldForBackwardBytes.map { $0 == p.heldForBackwardBytes ? " =" : " (\(ByteCount.format($0)))" } ?? "")
            } + [series.slope.map { ByteCount.formatFixed($0, digits: 2) } ?? "-"])
        }
        var lines = [(markdown ? "## " : "") + "\(profile): bytes held for backward against \(axis == "depth" ? "depth (blocks per stage x)" : "T"), batch \(batch), runtime \(runtime)",
                     // In Markdown a blank line ends a table; without it the notes become table rows.
                     markdown ? table.markdown() + "\n" : table.text()]
        if strategies.contains(where: { $0.points.contains { $0.measuredHeldForBackwardBytes != nil } }) {
            lines.append("'=' marks a measurement equal to the prediction; other measurements are in parentheses")
        }
        lines.append("slope: fitted log-log growth (1: linear, 0: flat)")
        if !notApplicable.isEmpty {
            lines.append("Not applicable: " + notApplicable.map { "\($0.strategy)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
