/// Where in one training step a tensor is allocated or freed. A timestep of nil means the
/// phase covers all timesteps at once (a multi-step layer, as inside reversible blocks).
public enum TrainingPhase: Hashable, Codable, Sendable, CustomStringConvertible {
    case setup
    case forward(timestep: Int?)
    case recompute(timestep: Int?)
    case backward(timestep: Int?)
    case optimizerStep

    public var description: String {
        func at(_ t: Int?) -> String { t.map { " t=\($0)" } ?? "" }
        switch self {
        case .setup: return "setup"
        case .forward(let t): return "forward" + at(t)
        case .recompute(let t): return "recompute" + at(t)
        case .backward(let t): return "backward" + at(t)
        case .optimizerStep: return "optimizer step"
        }
    }

    /// The phase's kind without its timestep, for grouping along a timeline axis.
    public var kind: String {
        switch self {
        case .setup: return "setup"
        case .forward: return "forward"
        case .recompute: return "recompute"
        case .backward: return "backward"
        case .optimizerStep: return "optimizer"
        }
    }
}
