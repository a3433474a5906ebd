import MemoryModel

/// Consecutive phases of one kind along a timeline ("forward t=0..99" rather than a hundred
/// "forward t=..." spans), so a chart's phase labels stay legible at any T.
public struct PhaseGroup: Equatable, Sendable {
    /// "setup", "forward", "recompute", "backward" or "optimizer".
    public var kind: String
    public var firstEvent: Int
    public var lastEvent: Int
    public var firstTimestep: Int?
    public var lastTimestep: Int?

    /// "forward t=0..3", "backward t=3..0", "recompute t=2", "optimizer step".
    public var label: String {
        let name = kind == "optimizer" ? "optimizer step" : kind
        guard let first = firstTimestep, let last = lastTimestep else { return name }
        return first == last ? "\(name) t=\(first)" : "\(name) t=\(first)..\(last)"
    }

    /// A label for narrow bands.
    public var shortLabel: String {
        switch kind {
        case "forward": return "fwd"
        case "backward": return "bwd"
        case "recompute": return "rec"
        case "optimizer": return "opt"
        default: return kind
        }
    }

    public static func groups(_ timeline: Timeline) -> [PhaseGroup] {
        var groups: [PhaseGroup] = []
        for span in timeline.phaseSpans {
            let timestep = Self.timestep(span.phase)
            if let last = groups.last, last.kind == span.phase.kind {
                groups[groups.count - 1].lastEvent = span.last
                if let timestep {
                    if groups[groups.count - 1].firstTimestep == nil { groups[groups.count - 1].firstTimestep = timestep }
                    groups[groups.count - 1].lastTimestep = timestep
                }
            } else {
                groups.append(PhaseGroup(kind: span.phase.kind, firstEvent: span.first, lastEvent: span.last,
                                         firstTimestep: timestep, lastTimestep: timestep))
            }
        }
        return groups
    }

    private static func timestep(_ phase: TrainingPhase) -> Int? {
        switch phase {
        case .forward(let t), .recompute(let t), .backward(let t): return t
        case .setup, .optimizerStep: return nil
        }
    }
}
