import MemoryModel
import Profiles

/// Spiking self-attention on the PyTorch runtimes, as `python/snnmem_torch/attention.py` runs it
/// (Spikformer's reference code): q, k and v are walked as layers of their own, each split into
/// heads by a contiguous copy; `(q @ kᵀ) * scale` (BmmBackward keeps both copies, the scalar
/// product keeps nothing and the unscaled product dies), `attn @ v` (keeps attn and v), the heads
/// joined by one more copy, then the attention neuron and the projection as layers. The products'
/// saved tensors belong to the attention layer. SDSA is walked by `forwardSDSA` (SDSAWalk.swift),
/// SSA in snnmem's engine by `forwardAttentionEngine` below.
extension TraceBuilder {
    mutating func forwardAttention(_ layer: Layer, _ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                                   reversible: ReversibleMode) -> Int {
        if spec.kind == .sdsa { return forwardSDSA(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible) }
        if !runtime.isPyTorch { return forwardAttentionEngine(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible) }
        let path = prefix + layer.path
        retain(x)
        retain(x)  // three branches read x
        var heads: [Int] = []
        for (name, branch) in [("q", spec.query), ("k", spec.key), ("v", spec.value)] {
            let spikes = forward(branch, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            heads.append(allocateActivation(path, name + ".heads", role: .activation, shape: spec.headsShape, span: span))
            release(spikes)
        }
        let product = allocateActivation(path, "q@kT", role: .activation, shape: spec.mapShape, span: span)
        let attention = allocateActivation(path, "attn", role: .activation, shape: spec.mapShape, span: span)
        release(product)
        let mixed = allocateActivation(path, "attn@v", role: .activation, shape: spec.headsShape, span: span)
        let joined = allocateActivation(path, "joined", role: .activation, shape: layer.inputShape, span: span)
        release(mixed)
        addFlops(LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        if saving {
            keep([heads[0], heads[1]], key: SavedKey(path: path, timestep: span.timestep))
            markKept([attention, heads[2]], by: path)
            saved[Self.secondProductKey(path, span), default: []] += [attention, heads[2]]
        } else {
            for id in heads + [attention] { release(id) }
        }
        return forward([spec.attentionNeuron] + spec.projection, joined, span: span, saving: saving, prefix: prefix, reversible: reversible)
    }

    /// `attn @ v`'s node, freed on its own when its backward has run.
    static func secondProductKey(_ path: String, _ span: Span) -> SavedKey { SavedKey(path: path + "#attn@v", timestep: span.timestep) }

    /// Backward in autograd's order: the projection and the attention neuron; `attn @ v`'s node
    /// (attn's gradient, then v's); the scalar product's; `q @ kᵀ`'s (q's, then k's); then the
    /// branches from the last made (v, k, q), their input gradients summed into the first.
    mutating func backwardAttention(_ layer: Layer, _ spec: AttentionSpec, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                                    reversible: ReversibleMode) -> Int? {
        if spec.kind == .sdsa {
            return backwardSDSA(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        }
        if !runtime.isPyTorch {
            return backwardAttentionEngine(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        }
        let path = prefix + layer.path
        let dJoined = backward([spec.attentionNeuron] + spec.projection, dY, span: span, needInputGrad: true, prefix: prefix,
                               reversible: reversible)!
        addFlops(2 * LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        let dAttention = allocateActivation(path, "grad_attn", role: .workspace, shape: spec.mapShape, span: span)
        let dV = allocateActivation(path, "grad_v.heads", role: .workspace, shape: spec.headsShape, span: span)
        release(dJoined)
        releaseSaved(Self.secondProductKey(path, span))
        let dProduct = allocateActivation(path, "grad_q@kT", role: .workspace, shape: spec.mapShape, span: span)
        release(dAttention)
        let dQ = allocateActivation(path, "grad_q.heads", role: .workspace, shape: spec.headsShape, span: span)
        let dK = allocateActivation(path, "grad_k.heads", role: .workspace, shape: spec.headsShape, span: span)
        release(dProduct)
        releaseSaved(SavedKey(path: path, timestep: span.timestep))
        var dX: Int?
        for (branch, gradient) in [(spec.value, dV), (spec.key, dK), (spec.query, dQ)] {
            let dBranch = backward(branch, gradient, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            if let dBranch { dX = dX.map { combine(into: $0, dBranch) } ?? dBranch }
        }
        return dX
    }
}

/// Spiking self-attention in snnmem's engine (`AttentionExecution.swift` allocates the same): q, k
/// and v are the branches' spikes, read per head in place (head h is channels h·d ..< (h+1)·d), so
/// no head copies; forward keeps q, k, v and the scaled map, and writes the joined output directly.
/// Backward makes dq, dk, dv and one head's map gradient as scratch, then walks the branches v, k, q.
extension TraceBuilder {
    mutating func forwardAttentionEngine(_ layer: Layer, _ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                                         reversible: ReversibleMode) -> Int {
        let path = prefix + layer.path
        retain(x)
        retain(x)
        let q = forward(spec.query, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let k = forward(spec.key, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let v = forward(spec.value, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let attention = allocateActivation(path, "attn", role: .activation, shape: spec.mapShape, span: span)
        let joined = allocateActivation(path, "output", role: .activation, shape: layer.inputShape, span: span)
        addFlops(LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        if saving {
            keep([q, k, v, attention], key: SavedKey(path: path, timestep: span.timestep))
        } else {
            for id in [q, k, v, attention] { release(id) }
        }
        return forward([spec.attentionNeuron] + spec.projection, joined, span: span, saving: saving, prefix: prefix, reversible: reversible)
    }

    mutating func backwardAttentionEngine(_ layer: Layer, _ spec: AttentionSpec, _ dY: Int, span: Span, needInputGrad: Bool,
                                          prefix: String, reversible: ReversibleMode) -> Int? {
        let path = prefix + layer.path
        let dJoined = backward([spec.attentionNeuron] + spec.projection, dY, span: span, needInputGrad: true, prefix: prefix,
                               reversible: reversible)!
        addFlops(2 * LayerMemoryTable.forwardFlops(for: layer) * Double(batch * steps(span)))
        let dQ = allocateActivation(path, "dq", role: .workspace, shape: layer.inputShape, span: span)
        let dK = allocateActivation(path, "dk", role: .workspace, shape: layer.inputShape, span: span)
        let dV = allocateActivation(path, "dv", role: .workspace, shape: layer.inputShape, span: span)
        allocateAndFree(LayerMemoryTable.attentionMapWorkspace(spec), path: path, span: span)
        releaseSaved(SavedKey(path: path, timestep: span.timestep))
        release(dJoined)
        var dX: Int?
        for (branch, gradient) in [(spec.value, dV), (spec.key, dK), (spec.query, dQ)] {
            let dBranch = backward(branch, gradient, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            if let dBranch { dX = dX.map { combine(into: $0, dBranch) } ?? dBranch }
        }
        return dX
    }
}
