import Allocator
import MemoryModel
import Planner

/// A measured step held against its plan: the peaks through the one sweep, and the first event
/// where the two sequences differ (kind, tensor, layer, timestep, role or bytes).
public struct TraceComparison: Sendable {
    public var plannedPeakBytes: Int
    public var measuredPeakBytes: Int
    public var plannedEvents: Int
    public var measuredEvents: Int
    /// nil when every event matches.
    public var firstDifference: String?

    public var peaksAgree: Bool { plannedPeakBytes == measuredPeakBytes }

    /// `measured` are the allocator's events of one step, parameters' allocation included (the
    /// first step); `rounding` must match the bytes measured (`exact` for requested bytes).
    public static func compare(plan: MemoryPlan, measured: [TraceEvent], measuring: MeasuredBytes = .requested) -> TraceComparison {
        let measuredLifetimes = measured.lifetimeEvents(measuring: measuring)
        let sweep = PeakSweep(rounding: .exact)
        // What lives for the run: parameters, their gradients and optimizer state, and the scratch kept
        // from the set-up on (the convs' weight panels, workspace allocated before the input).
        let persistent = Set(measured.filter {
            $0.role == .parameter || $0.role == .gradient || $0.role == .optimizerState || ($0.role == .workspace && $0.phase == .setup)
        }.map(\.tensorID))
        let measuredPeak = sweep.run(measuredLifetimes, allowLive: persistent).peakBytes
        var difference: String?
        let real = measured.filter { $0.kind != .outOfMemory }
        for (index, (planned, actual)) in zip(plan.events, real).enumerated() {
            let descriptor = plan.tensors[planned.tensorID].descriptor
            let plannedBytes = plan.rounding.roundedBytes(planned.bytes)
            let actualBytes = measuring == .requested ? actual.requestedBytes : actual.allocatedBytes
            let same = planned.kind.rawValue == actual.kind.rawValue && descriptor.layerPath == actual.layerPath
                && descriptor.name == actual.name && descriptor.timestep == actual.timestep && descriptor.role == actual.role
                && plannedBytes == actualBytes
            if !same {
                difference = "event \(index): planned \(planned.kind.rawValue) \(descriptor.label) \(descriptor.role.rawValue) \(plannedBytes) B, "
                    + "measured \(actual.kind.rawValue) \(actual.layerPath):\(actual.name)\(actual.timestep.map { "@t\($0)" } ?? "") "
                    + "\(actual.role.rawValue) \(actualBytes) B"
                break
            }
        }
        if difference == nil && plan.events.count != real.count {
            difference = "planned \(plan.events.count) events, measured \(real.count)"
        }
        return TraceComparison(plannedPeakBytes: plan.peakBytes, measuredPeakBytes: measuredPeak, plannedEvents: plan.events.count,
                               measuredEvents: real.count, firstDifference: difference)
    }
}
