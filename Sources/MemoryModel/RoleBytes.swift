/// Bytes per role: a small fixed table indexed by role (cheap to copy at every event).
public struct RoleBytes: Hashable, Codable, Sendable {
    // One stored property per role, not an array: a sweep copies the table at every new peak and
    // then adds to it, which with an array's shared buffer cost an allocation each time.
    private var parameter = 0
    private var gradient = 0
    private var optimizerState = 0
    private var activation = 0
    private var neuronState = 0
    private var workspace = 0
    private var input = 0

    public init() {}

    public subscript(role: TensorRole) -> Int {
        get {
            switch role {
            case .parameter: return parameter
            case .gradient: return gradient
            case .optimizerState: return optimizerState
            case .activation: return activation
            case .neuronState: return neuronState
            case .workspace: return workspace
            case .input: return input
            }
        }
        set {
            switch role {
            case .parameter: parameter = newValue
            case .gradient: gradient = newValue
            case .optimizerState: optimizerState = newValue
            case .activation: activation = newValue
            case .neuronState: neuronState = newValue
            case .workspace: workspace = newValue
            case .input: input = newValue
            }
        }
    }

    public var total: Int { parameter + gradient + optimizerState + activation + neuronState + workspace + input }

    /// Role -> bytes, keyed by the JSON report key.
    public var byReportKey: [String: Int] {
        Dictionary(uniqueKeysWithValues: TensorRole.allCases.map { ($0.reportKey, self[$0]) })
    }

    public init(from decoder: Decoder) throws {
        let dict = try decoder.singleValueContainer().decode([String: Int].self)
        self.init()
        for role in TensorRole.allCases { self[role] = dict[role.reportKey] ?? 0 }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(byReportKey)
    }
}
