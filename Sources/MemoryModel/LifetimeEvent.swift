/// One allocation or free in a training step, in the order it happens. Planned traces (from the
/// planner) and measured traces (from the instrumented allocator) are both sequences of these,
/// so one sweep finds the peak of either.
public struct LifetimeEvent: Hashable, Codable, Sendable {
    public enum Kind: String, Codable, Sendable { case allocate, free }

    public var kind: Kind
    public var tensorID: Int
    public var bytes: Int
    public var role: TensorRole
    public var phase: TrainingPhase

    public init(kind: Kind, tensorID: Int, bytes: Int, role: TensorRole, phase: TrainingPhase) {
        self.kind = kind
        self.tensorID = tensorID
        self.bytes = bytes
        self.role = role
        self.phase = phase
    }
}
