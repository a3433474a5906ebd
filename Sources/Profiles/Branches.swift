import MemoryModel

/// How a `branches` block combines the outputs of its paths.
public enum BranchJoin: String, Hashable, Sendable, CaseIterable {
    /// The sum of every path's output (a residual is `add` of main and shortcut).
    case add
    /// Along channels, in path order (U-Net skips, DenseNet).
    case concat
    /// SEW ResNet's AND: a * b of two paths' spikes.
    case and
    /// SEW ResNet's IAND: (1 - a) * b, a the first path, b the second.
    case iand

    /// The products need their operands in backward; add and concat need nothing.
    public var keepsOperands: Bool { self == .and || self == .iand }
}

/// A block of paths applied to the same input, joined into one output: a series-parallel graph
/// (forks and joins nested through paths) in the profile's tree of layers. An empty path is the
/// identity.
public struct BranchesSpec: Hashable, Sendable {
    public var join: BranchJoin
    public var paths: [[Layer]]

    public init(join: BranchJoin, paths: [[Layer]]) {
        self.join = join
        self.paths = paths
    }

    /// Every path's layers, in path order (parents before their nested layers is the caller's job).
    public var allPathLayers: [Layer] { paths.flatMap { $0 } }

    /// The order backward visits the paths, as PyTorch's autograd does (the planner and the engine
    /// both follow it): identity paths first (their gradients reach the fork with the join's), then
    /// the paths with layers from the last to the first (the most recently recorded nodes run first).
    public var backwardPathOrder: [Int] {
        let indices = Array(paths.indices)
        return indices.filter { paths[$0].isEmpty } + indices.filter { !paths[$0].isEmpty }.reversed()
    }
}

extension Profile {
    /// The first `branches` block, depth first: the reversible schedules, which invert layer
    /// chains, refuse a network that has one.
    public var firstBranches: Layer? {
        firstLayer { if case .branches = $0.kind { return true }; return false }
    }
}
