/// What a tensor is for during training. Every tracked byte has exactly one role, so that a peak
/// can be explained as "so much weights, so much kept for backward, so much scratch".
public enum TensorRole: String, Codable, CaseIterable, Sendable, Comparable {
    case parameter
    case gradient
    case optimizerState
    case activation
    case neuronState
    case workspace
    case input

    /// The key used for this role in JSON reports (`bytesByRoleAtPeak`).
    public var reportKey: String {
        switch self {
        case .parameter: return "parameters"
        case .gradient: return "gradients"
        case .optimizerState: return "optimizerState"
        case .activation: return "activations"
        case .neuronState: return "neuronState"
        case .workspace: return "workspace"
        case .input: return "input"
        }
    }

    /// A short human label for tables.
    public var label: String {
        switch self {
        case .parameter: return "parameters"
        case .gradient: return "gradients"
        case .optimizerState: return "optimizer"
        case .activation: return "activations"
        case .neuronState: return "neuron state"
        case .workspace: return "workspace"
        case .input: return "input"
        }
    }

    /// A column header of at most six characters.
    public var shortLabel: String {
        switch self {
        case .parameter: return "params"
        case .gradient: return "grads"
        case .optimizerState: return "optim"
        case .activation: return "activ"
        case .neuronState: return "neuron"
        case .workspace: return "work"
        case .input: return "input"
        }
    }

    public static func < (lhs: TensorRole, rhs: TensorRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
