import Profiles

/// Requests the planner cannot answer. Each says what to change.
public enum PlannerError: Error, CustomStringConvertible, Equatable, Sendable {
    case notApplicable(strategy: Strategy, reason: String)
    case invalidArgument(name: String, value: String, fix: String)
    case doesNotFit(strategy: Strategy, peakBytesAtBatchOne: Int, budgetBytes: Int)
    /// A batch or T past `PlanningLimits` for this profile: refused before any work.
    case tooLarge(profile: String, problem: PlanSizeProblem)

    public var description: String {
        switch self {
        case .notApplicable(let strategy, let reason):
            return "strategy \(strategy.rawValue) does not apply to this profile: \(reason)"
        case .invalidArgument(let name, let value, let fix):
            return "invalid \(name) '\(value)': \(fix)"
        case .doesNotFit(let strategy, let peak, let budget):
            return "strategy \(strategy.rawValue) needs \(peak) bytes at batch 1, more than the budget of \(budget) bytes"
        case .tooLarge(let profile, let problem):
            return "\(profile): \(problem)"
        }
    }
}
