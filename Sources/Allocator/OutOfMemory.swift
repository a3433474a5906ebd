import MemoryModel

/// What was asked for when the memory budget ran out, and what held the memory at that moment.
/// Budgets are in requested bytes, the bytes the planner predicts, so a budget means the same
/// thing for the jemalloc allocator and the counting test double.
public struct OutOfMemory: Hashable, Codable, Sendable, CustomStringConvertible {
    public var requestedBytes: Int
    public var role: TensorRole
    public var layerPath: String
    public var name: String
    public var timestep: Int?
    public var phase: TrainingPhase
    public var trainingStep: Int
    /// Live requested bytes before this request.
    public var liveBytes: Int
    public var liveBytesByRole: RoleBytes
    public var limitBytes: Int

    public init(requestedBytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                phase: TrainingPhase, trainingStep: Int, liveBytes: Int, liveBytesByRole: RoleBytes, limitBytes: Int) {
        self.requestedBytes = requestedBytes
        self.role = role
        self.layerPath = layerPath
        self.name = name
        self.timestep = timestep
        self.phase = phase
        self.trainingStep = trainingStep
        self.liveBytes = liveBytes
        self.liveBytesByRole = liveBytesByRole
        self.limitBytes = limitBytes
    }

    public var description: String {
        let tensor = TensorLabel.text(layerPath: layerPath, name: name, timestep: timestep)
        let held = TensorRole.allCases.filter { liveBytesByRole[$0] != 0 }
            .map { "\($0.label) \(ByteCount.format(liveBytesByRole[$0]))" }
            .joined(separator: ", ")
        return "\(tensor) (\(role.label)) asked for \(ByteCount.format(requestedBytes)) "
            + "in \(phase) of step \(trainingStep); \(ByteCount.format(liveBytes)) live"
            + (held.isEmpty ? "" : " (\(held))")
            + ", limit \(ByteCount.format(limitBytes))"
    }
}

/// "layer/path:name@t3" for messages, the same shape as `TensorDescriptor.label`.
enum TensorLabel {
    static func text(layerPath: String, name: String, timestep: Int?) -> String {
        layerPath + (name.isEmpty ? "" : ":\(name)") + (timestep.map { "@t\($0)" } ?? "")
    }
}
