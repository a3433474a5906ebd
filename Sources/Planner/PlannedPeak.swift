import MemoryModel

/// The peak of a planned training step without the tensors' descriptions (`Planner.peak`).
public struct PlannedPeak: Sendable, Equatable {
    public var batch: Int
    public var timesteps: Int
    /// The checkpoint segment length (checkpoint only).
    public var segment: Int?
    public var sweep: PeakSweep.Result

    public var peakBytes: Int { sweep.peakBytes }
    public var bytesByRoleAtPeak: RoleBytes { sweep.bytesByRoleAtPeak }
}
