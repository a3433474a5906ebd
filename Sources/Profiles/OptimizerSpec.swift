public enum OptimizerType: String, Codable, CaseIterable, Sendable {
    case sgd
    case adam
}

public struct OptimizerSpec: Hashable, Codable, Sendable {
    public var type: OptimizerType
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double

    public init(type: OptimizerType = .sgd, learningRate: Double = 0.1, momentum: Double = 0.9,
                weightDecay: Double = 0, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.type = type
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// State tensors kept per parameter tensor: a momentum buffer for SGD with momentum,
    /// first and second moments for Adam.
    public var stateNames: [String] {
        switch type {
        case .sgd: return momentum != 0 ? ["momentum"] : []
        case .adam: return ["adam.m", "adam.v"]
        }
    }
}
