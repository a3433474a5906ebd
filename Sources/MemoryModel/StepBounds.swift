/// The largest batch, T and step bytes anything in snnmem holds. The planner's limits
/// (`PlanningLimits`, in Profiles) and the readers of recorded files (traces in Allocator,
/// baselines and measurements in Reports) share them from here, the one target all depend on.
public enum StepBounds {
    public static let maxBatch = 1 << 24
    public static let maxTimesteps = 1 << 16
    /// Bound on the bytes one training step can allocate in all (64 PiB). The estimate behind it
    /// (`Profile.stepBytesBound`) over-counts every layer 8-fold at 8 bytes an element, and Int64
    /// holds 128 times this bound, so no sum the planner forms can overflow.
    public static let maxStepBytes = 1 << 56
    /// PyTorch's CPU threads a plan or a measurement may name (`--cpu-threads`, `threads`).
    public static let maxCPUThreads = 4096
}
