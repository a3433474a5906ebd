import MemoryModel

/// jemalloc's counters at a phase boundary, with where in the run the boundary was.
public struct JemallocSample: Hashable, Codable, Sendable {
    /// The phase that begins at this boundary (the peak covers the phase before it).
    public var phase: TrainingPhase
    public var timeNs: UInt64
    /// Events recorded before the sample.
    public var eventIndex: Int
    public var trainingStep: Int
    public var snapshot: JemallocSnapshot

    public init(phase: TrainingPhase, timeNs: UInt64, eventIndex: Int, trainingStep: Int, snapshot: JemallocSnapshot) {
        self.phase = phase
        self.timeNs = timeNs
        self.eventIndex = eventIndex
        self.trainingStep = trainingStep
        self.snapshot = snapshot
    }
}
