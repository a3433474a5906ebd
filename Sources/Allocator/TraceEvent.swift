import MemoryModel

/// One thing the allocator did, as recorded: an allocation, a free, or a request refused by the
/// memory budget. Times are both a monotonic clock reading and a logical position (`eventIndex`),
/// which is exact and reproducible where nanoseconds are not.
public struct TraceEvent: Hashable, Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case allocate
        case free
        /// Refused by the budget: nothing was allocated. Kept so a trace shows where a run stopped.
        case outOfMemory
    }

    public var tensorID: Int
    public var kind: Kind
    public var requestedBytes: Int
    /// The allocator's size class for the request (0 for a refused request).
    public var allocatedBytes: Int
    public var role: TensorRole
    public var layerPath: String
    public var name: String
    public var timestep: Int?
    public var phase: TrainingPhase
    public var timeNs: UInt64
    /// The logical clock: how many events the recorder saw before this one.
    public var eventIndex: Int
    /// The training step (0-based) the event belongs to; advanced by `AllocationRecorder.endStep()`.
    public var trainingStep: Int

    public init(tensorID: Int, kind: Kind, requestedBytes: Int, allocatedBytes: Int, role: TensorRole,
                layerPath: String, name: String, timestep: Int?, phase: TrainingPhase, timeNs: UInt64,
                eventIndex: Int, trainingStep: Int) {
        self.tensorID = tensorID
        self.kind = kind
        self.requestedBytes = requestedBytes
        self.allocatedBytes = allocatedBytes
        self.role = role
        self.layerPath = layerPath
        self.name = name
        self.timestep = timestep
        self.phase = phase
        self.timeNs = timeNs
        self.eventIndex = eventIndex
        self.trainingStep = trainingStep
    }
}

/// Which byte count a measured trace is compared in.
public enum MeasuredBytes: String, Codable, Sendable {
    /// Bytes asked for: compare with a plan made with `AllocatorRounding.exact`.
    case requested
    /// Bytes handed out: compare with a plan rounded like the allocator.
    case allocated
}

extension Sequence where Element == TraceEvent {
    /// The allocations and frees as MemoryModel lifetime events, for `PeakSweep`. Refused
    /// requests allocated nothing and are left out.
    public func lifetimeEvents(measuring bytes: MeasuredBytes = .allocated) -> [LifetimeEvent] {
        compactMap { event in
            let kind: LifetimeEvent.Kind
            switch event.kind {
            case .allocate: kind = .allocate
            case .free: kind = .free
            case .outOfMemory: return nil
            }
            return LifetimeEvent(kind: kind, tensorID: event.tensorID,
                                 bytes: bytes == .allocated ? event.allocatedBytes : event.requestedBytes,
                                 role: event.role, phase: event.phase)
        }
    }
}
