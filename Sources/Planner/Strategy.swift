import Profiles

/// A training schedule, i.e. a rule for what is kept for backward and what is recomputed.
///
/// Memory models (L layers, T timesteps, k checkpoint segment length):
/// - `bptt`: every layer keeps its saved tensors for every timestep until its backward: O(L*T).
/// - `checkpoint`: forward keeps nothing for backward except every stateful neuron's membrane
///   potential at the start of each segment of k timesteps; backward restores a segment's states,
///   recomputes the segment keeping its saved tensors, backpropagates it (carrying dV into the
///   previous segment) and frees it: O(L*T/k + L*k).
/// - `sltt`: each timestep is forwarded and backpropagated at once with the membrane potential
///   detached from the previous timestep; only one timestep's saved tensors exist: O(L).
/// - `revsnn`: layers run over all timesteps at once; a reversible stage keeps only its output;
///   backward reconstructs each block's input (X2 = Y2 - G(Y1), X1 = Y1 - F(X2)) while rebuilding
///   one F or G graph at a time: activation memory independent of the number of blocks.
/// - `trevsnn`: columns (timesteps) of a multi-level reversible network keep only the stem output
///   and the last column's level states; backward reconstructs earlier columns
///   (c[l][t-1] = (c[l][t] - F_l(...)) / alpha_l) one level graph at a time: O(L), independent of T.
public enum Strategy: String, CaseIterable, Codable, Sendable {
    case bptt
    case checkpoint
    case sltt
    case revsnn
    case trevsnn

    /// Why this strategy cannot train the profile, or nil when it can.
    public func notApplicableReason(_ profile: Profile) -> String? {
        let trev = profile.layers.first { if case .trevsnn = $0.kind { return true }; return false }
        switch self {
        case .bptt:
            return nil
        case .checkpoint, .sltt:
            if let trev {
                return "'\(trev.path)' is a T-RevSNN network: its columns carry state through level states, not membrane potentials; use trevsnn (or bptt)"
            }
            return nil
        case .revsnn:
            if let trev {
                return "'\(trev.path)' is a T-RevSNN network, not a stack of reversible stages; use trevsnn"
            }
            if let block = profile.firstBranches {
                return "'\(block.path)' is a branches block, which RevSNN's reconstruction does not invert; use bptt, checkpoint or sltt"
            }
            if profile.firstLayer(where: { if case .reversible = $0.kind { return true }; return false }) == nil {
                return "the network has no reversible stage (add a `reversible:` stage to the profile); every layer would have to be stored as in bptt"
            }
            return nil
        case .trevsnn:
            if trev == nil {
                return "the network has no `trevsnn:` construct; T-RevSNN needs timesteps as columns of a multi-level reversible network"
            }
            if let block = profile.firstBranches {
                return "'\(block.path)' is a branches block, which T-RevSNN's stem (run once, kept for the reconstruction) does not model; use bptt"
            }
            return nil
        }
    }

    /// The default checkpoint segment length: round(sqrt(T)), at least 1.
    public static func defaultSegment(timesteps: Int) -> Int {
        max(1, Int((Double(timesteps).squareRoot()).rounded()))
    }
}
