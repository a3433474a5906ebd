/// Bytes per role: a small fixed table indexed by role (cheap to copy at every event).
public struct RoleBytes: Hashable, Codable, Sendable {
    private var values: [Int]

    public init() { values = Array(repeating: 0, count: TensorRole.allCases.count) }

    private static func index(_ role: TensorRole) -> Int {
        switch role {
        case .parameter: return 0
        case .gradient: return 1
        case .optimizerState: return 2
        case .activation: return 3
        case .neuronState: return 4
        case .workspace: return 5
        case .input: return 6
        }
    }

    public subscript(role: TensorRole) -> Int {
        get { values[Self.index(role)] }
        set { values[Self.index(role)] = newValue }
    }

    public var total: Int { values.reduce(0, +) }

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
