import MemoryModel

/// One tensor from allocation to free, rebuilt from the events of a trace.
public struct TensorLifetime: Hashable, Codable, Sendable {
    public var tensorID: Int
    public var requestedBytes: Int
    public var allocatedBytes: Int
    public var role: TensorRole
    public var layerPath: String
    public var name: String
    public var timestep: Int?
    public var allocationPhase: TrainingPhase
    public var allocationTimeNs: UInt64
    public var allocationEventIndex: Int
    public var allocationTrainingStep: Int
    /// nil while the tensor is live (or leaked).
    public var freePhase: TrainingPhase?
    public var freeTimeNs: UInt64?
    public var freeEventIndex: Int?
    public var freeTrainingStep: Int?

    public var durationNs: UInt64? { freeTimeNs.map { $0 - allocationTimeNs } }
}

extension Collection where Element == TraceEvent {
    /// Pairs every allocation with its free, in allocation order.
    public func lifetimes() -> [TensorLifetime] {
        var result: [TensorLifetime] = []
        var indexByID: [Int: Int] = [:]
        for event in self {
            switch event.kind {
            case .allocate:
                indexByID[event.tensorID] = result.count
                result.append(TensorLifetime(
                    tensorID: event.tensorID, requestedBytes: event.requestedBytes,
                    allocatedBytes: event.allocatedBytes, role: event.role, layerPath: event.layerPath,
                    name: event.name, timestep: event.timestep, allocationPhase: event.phase,
                    allocationTimeNs: event.timeNs, allocationEventIndex: event.eventIndex,
                    allocationTrainingStep: event.trainingStep))
            case .free:
                guard let index = indexByID.removeValue(forKey: event.tensorID) else { continue }
                result[index].freePhase = event.phase
                result[index].freeTimeNs = event.timeNs
                result[index].freeEventIndex = event.eventIndex
                result[index].freeTrainingStep = event.trainingStep
            case .outOfMemory:
                continue
            }
        }
        return result
    }
}
