import MemoryModel

/// A lifetime mistake found while recording: reported, never a crash, so that one bad free in
/// a long run still leaves a trace that says where it happened.
public struct AllocationProblem: Hashable, Codable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// A buffer freed when it was not live; the second free was not passed to the allocator.
        case doubleFree
        /// A buffer of a non-persistent role still live at the end of a training step.
        case leak
    }

    public var kind: Kind
    public var tensorID: Int
    public var requestedBytes: Int
    public var role: TensorRole
    public var layerPath: String
    public var name: String
    public var timestep: Int?
    /// For a double free, the phase of the second free; for a leak, the phase it was allocated in.
    public var phase: TrainingPhase
    public var trainingStep: Int

    public init(kind: Kind, tensorID: Int, requestedBytes: Int, role: TensorRole, layerPath: String, name: String,
                timestep: Int?, phase: TrainingPhase, trainingStep: Int) {
        self.kind = kind
        self.tensorID = tensorID
        self.requestedBytes = requestedBytes
        self.role = role
        self.layerPath = layerPath
        self.name = name
        self.timestep = timestep
        self.phase = phase
        self.trainingStep = trainingStep
    }

    public var description: String {
        let tensor = "tensor \(tensorID) \(TensorLabel.text(layerPath: layerPath, name: name, timestep: timestep)) "
            + "(\(role.label), \(ByteCount.format(requestedBytes)))"
        switch kind {
        case .doubleFree:
            return "double free of \(tensor) in \(phase) of step \(trainingStep): it is not live (freed before, "
                + "or from another allocator); the free was ignored"
        case .leak:
            return "leak: \(tensor), allocated in \(phase), is still live at the end of step \(trainingStep)"
        }
    }
}

/// What `AllocationRecorder.endStep()` found for one training step.
public struct StepReport: Hashable, Codable, Sendable {
    public var trainingStep: Int
    /// Double frees seen during the step, then leaks at its end.
    public var problems: [AllocationProblem]
    /// Highest live allocated (rounded) bytes during the step, including what the step started with.
    public var peakAllocatedBytes: Int
    /// Highest live requested bytes during the step.
    public var peakRequestedBytes: Int

    public var isClean: Bool { problems.isEmpty }
    public var leaks: [AllocationProblem] { problems.filter { $0.kind == .leak } }
    public var doubleFrees: [AllocationProblem] { problems.filter { $0.kind == .doubleFree } }
}
