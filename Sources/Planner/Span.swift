/// Which timesteps one execution of a layer covers, which decides the shapes it allocates.
public enum Span: Hashable, Sendable {
    /// One timestep (time-major schedules) or one column (T-RevSNN): tensors are [B, ...].
    case timestep(Int)
    /// All T timesteps at once (multi-step layers in reversible schedules): tensors are [T, B, ...].
    case allTimesteps
    /// Run once for all timesteps (the T-RevSNN stem): tensors are [B, ...].
    case once

    public var isTimestep: Bool { timestep != nil }

    public var timestep: Int? {
        if case .timestep(let t) = self { return t }
        return nil
    }
}
