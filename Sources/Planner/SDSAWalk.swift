import MemoryModel
import Profiles

/// The Spike-driven Transformer's SDSA (`AttentionSpec.Kind.sdsa`) in the layer walk.
///
/// PyTorch, as `python/snnmem_torch/attention.py` runs it after the reference code: the branches
/// and their head copies as in SSA; `k.mul(v)` (MulBackward0 keeps both copies) summed over the
/// tokens (SumBackward keeps only sizes, the product dies); the talking-heads neuron on the sums;
/// `q.mul(spikes)` (keeps q and the spikes); the heads joined by a copy; the projection. Backward:
/// q ⊙ spikes' node makes q's gradient and the spikes' full-size one, which autograd sums down to
/// [C, 1]; the neuron; k ⊙ v's node (k's gradient, then v's); then the branches v, k, q.
///
/// snnmem's engine (`AttentionExecution.swift` allocates the same): the column sums, the neuron
/// and the gated output straight from the branches' spikes, no head copies; it keeps q and the
/// spikes, and k and v, each pair freed when its backward has run.
extension TraceBuilder {
    static func columnSumKey(_ path: String, _ span: Span) -> SavedKey { SavedKey(path: path + "#k*v", timestep: span.timestep) }

    mutating func forwardSDSA(_ layer: Layer, _ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                              reversible: ReversibleMode) -> Int {
        let path = prefix + layer.path
        let pytorch = runtime.isPyTorch
        let sums = spec.attentionNeuron.inputShape
        retain(x)
        retain(x)
        var branches: [Int] = []
        for (name, branch) in [("q", spec.query), ("k", spec.key), ("v", spec.value)] {
            let spikes = forward(branch, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            guard pytorch else { branches.append(spikes); continue }
            branches.append(allocateActivation(path, name + ".heads", role: .activation, shape: spec.headsShape, span: span))
            release(spikes)
        }
        let product = pytorch ? allocateActivation(path, "k*v", role: .activation, shape: spec.headsShape, span: span) : nil
        let columnSums = allocateActivation(path, "kv", role: .activation, shape: sums, span: span)
        if let product { release(product) }
        addFlops(LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        let fired = forward(spec.attentionNeuron, columnSums, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let gated = pytorch ? allocateActivation(path, "q*kv", role: .activation, shape: spec.headsShape, span: span) : nil
        let joined = allocateActivation(path, pytorch ? "joined" : "output", role: .activation, shape: layer.inputShape, span: span)
        if let gated { release(gated) }
        if saving {
            keep([branches[0], fired], key: SavedKey(path: path, timestep: span.timestep))
            markKept([branches[1], branches[2]], by: path)
            saved[Self.columnSumKey(path, span), default: []] += [branches[1], branches[2]]
        } else {
            for id in branches + [fired] { release(id) }
        }
        return forward(spec.projection, joined, span: span, saving: saving, prefix: prefix, reversible: reversible)
    }

    mutating func backwardSDSA(_ layer: Layer, _ spec: AttentionSpec, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                               reversible: ReversibleMode) -> Int? {
        let path = prefix + layer.path
        let pytorch = runtime.isPyTorch
        let sums = spec.attentionNeuron.inputShape
        let branchShape = pytorch ? spec.headsShape : layer.inputShape
        let dJoined = backward(spec.projection, dY, span: span, needInputGrad: true, prefix: prefix, reversible: reversible)!
        addFlops(2 * LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        let dQ = allocateActivation(path, pytorch ? "grad_q.heads" : "dq", role: .workspace, shape: branchShape, span: span)
        let dFullSums = pytorch ? allocateActivation(path, "grad_kv.full", role: .workspace, shape: spec.headsShape, span: span) : nil
        let dFired = allocateActivation(path, pytorch ? "grad_kv" : "ds", role: .workspace, shape: sums, span: span)
        if let dFullSums { release(dFullSums) }
        release(dJoined)
        releaseSaved(SavedKey(path: path, timestep: span.timestep))
        let dSums = backward(spec.attentionNeuron, dFired, span: span, needInputGrad: true, prefix: prefix, reversible: reversible)!
        let dK = allocateActivation(path, pytorch ? "grad_k.heads" : "dk", role: .workspace, shape: branchShape, span: span)
        let dV = allocateActivation(path, pytorch ? "grad_v.heads" : "dv", role: .workspace, shape: branchShape, span: span)
        release(dSums)
        releaseSaved(Self.columnSumKey(path, span))
        var dX: Int?
        for (branch, gradient) in [(spec.value, dV), (spec.key, dK), (spec.query, dQ)] {
            let dBranch = backward(branch, gradient, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            if let dBranch { dX = dX.map { combine(into: $0, dBranch) } ?? dBranch }
        }
        return dX
    }
}
