import MemoryModel

/// The schedules of one profile side by side: what `snnmem compare` prints and writes.
public struct ComparisonReport: Codable, Equatable, Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public var strategy: String
        public var segment: Int?
        /// Whose step this is: always snnmem's engine, which is what `compare` trains.
        public var runtime: String = "snnmem"
        public var predictedPeakBytes: Int
        public var measuredPeakBytes: Int
        public var predictedAllocatedPeakBytes: Int
        public var measuredAllocatedPeakBytes: Int
        public var jemallocPeakBytes: Int
        /// The most bytes saved for backward live at one moment, as measured and as planned
        /// (README "Quantities").
        public var measuredHeldForBackwardBytes: Int
        public var predictedHeldForBackwardBytes: Int
        /// Median step time.
        public var stepMs: Double
        public var forwardFlops: Double
        public var recomputeFlops: Double
        public var backwardFlops: Double
        public var gradientMaxRelDiff: Double?
        public var gradientReference: String?
        /// The last step's loss.
        public var loss: Double
        /// nil when every allocation and free of the first step matched the plan.
        public var firstDifference: String?

        public init(strategy: String, segment: Int?, predictedPeakBytes: Int, measuredPeakBytes: Int, predictedAllocatedPeakBytes: Int,
                    measuredAllocatedPeakBytes: Int, jemallocPeakBytes: Int, measuredHeldForBackwardBytes: Int, predictedHeldForBackwardBytes: Int,
                    stepMs: Double, forwardFlops: Double, recomputeFlops: Double, backwardFlops: Double, gradientMaxRelDiff: Double?,
                    gradientReference: String?, loss: Double, firstDifference: String?) {
            self.strategy = strategy
            self.segment = segment
            self.predictedPeakBytes = predictedPeakBytes
            self.measuredPeakBytes = measuredPeakBytes
            self.predictedAllocatedPeakBytes = predictedAllocatedPeakBytes
            self.measuredAllocatedPeakBytes = measuredAllocatedPeakBytes
            self.jemallocPeakBytes = jemallocPeakBytes
            self.measuredHeldForBackwardBytes = measuredHeldForBackwardBytes
            self.predictedHeldForBackwardBytes = predictedHeldForBackwardBytes
            self.stepMs = stepMs
            self.forwardFlops = forwardFlops
            self.recomputeFlops = recomputeFlops
            self.backwardFlops = backwardFlops
            self.gradientMaxRelDiff = gradientMaxRelDiff
            self.gradientReference = gradientReference
            self.loss = loss
            self.firstDifference = firstDifference
        }

        /// Recomputation the planner predicts over the forward pass's FLOPs: the same ratio as
        /// `plan`'s "recompute / forward".
        public var recomputeOverForward: Double { forwardFlops > 0 ? recomputeFlops / forwardFlops : 0 }
    }

    public struct NotApplicable: Codable, Equatable, Sendable {
        public var strategy: String
        public var reason: String
        public init(strategy: String, reason: String) {
            self.strategy = strategy
            self.reason = reason
        }
    }

    public var profile: String
    public var batch: Int
    public var timesteps: Int
    public var steps: Int
    public var strategies: [Entry]
    public var notApplicable: [NotApplicable]

    public init(profile: String, batch: Int, timesteps: Int, steps: Int, strategies: [Entry], notApplicable: [NotApplicable]) {
        self.profile = profile
        self.batch = batch
        self.timesteps = timesteps
        self.steps = steps
        self.strategies = strategies
        self.notApplicable = notApplicable
    }

    /// Step time relative to bptt's, when bptt ran.
    public func timeRatio(_ entry: Entry) -> Double? {
        guard let bptt = strategies.first(where: { $0.strategy == "bptt" }), bptt.stepMs > 0 else { return nil }
        return entry.stepMs / bptt.stepMs
    }
}
