import MemoryModel
import Planner
import Profiles

/// Spiking self-attention in the engine, allocating what the planner's `forwardAttentionEngine` /
/// `backwardAttentionEngine` predict: the branches as layers, the products by `attentionForward`
/// and `attentionBackward` on per-timestep slices.
extension TrainingStep {
    func attentionShape(_ spec: AttentionSpec) -> AttentionShape {
        AttentionShape(batch: batch, heads: spec.heads, width: spec.headChannels, tokens: spec.tokens, scale: spec.scale)
    }

    /// q, k and v from the one input, each its conv1d, batch norm and neuron (SSA and SDSA alike).
    func forwardQKV(_ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                    reversible: ReversibleMode) throws -> (q: Int, k: Int, v: Int) {
        heap.retain(x)
        heap.retain(x)
        let q = try forward(spec.query, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let k = try forward(spec.key, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let v = try forward(spec.value, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        return (q, k, v)
    }

    func forwardAttention(_ layer: Layer, _ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                          reversible: ReversibleMode) throws -> Int {
        if spec.kind == .sdsa { return try forwardSDSA(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible) }
        let path = prefix + layer.path
        let (q, k, v) = try forwardQKV(spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let attention = try allocateActivation(path, "attn", role: .activation, shape: spec.mapShape, span: span)
        let joined = try allocateActivation(path, "output", role: .activation, shape: layer.inputShape, span: span)
        let (values, maps) = (batch * layer.inputShape.elementCount, batch * spec.mapShape.elementCount)
        for t in 0..<slices(span) {
            attentionForward(attentionShape(spec), output: heap.values(joined) + t * values, attention: heap.values(attention) + t * maps,
                             q: heap.values(q) + t * values, k: heap.values(k) + t * values, v: heap.values(v) + t * values)
        }
        if saving {
            keep([q, k, v, attention], key: SavedKey(path: path, timestep: span.timestep))
        } else {
            for id in [q, k, v, attention] { try heap.release(id) }
        }
        return try forward([spec.attentionNeuron] + spec.projection, joined, span: span, saving: saving, prefix: prefix, reversible: reversible)
    }

    func backwardAttention(_ layer: Layer, _ spec: AttentionSpec, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                           reversible: ReversibleMode) throws -> Int? {
        if spec.kind == .sdsa {
            return try backwardSDSA(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        }
        let path = prefix + layer.path
        let dJoined = try backward([spec.attentionNeuron] + spec.projection, dY, span: span, needInputGrad: true, prefix: prefix,
                                   reversible: reversible)!
        let dQ = try allocateActivation(path, "dq", role: .workspace, shape: layer.inputShape, span: span)
        let dK = try allocateActivation(path, "dk", role: .workspace, shape: layer.inputShape, span: span)
        let dV = try allocateActivation(path, "dv", role: .workspace, shape: layer.inputShape, span: span)
        let work = try allocateScratch(LayerMemoryTable.attentionMapWorkspace(spec), path: path, span: span)
        let key = SavedKey(path: path, timestep: span.timestep)
        guard let kept = saved[key], kept.count == 4 else { preconditionFailure("attention \(path) kept nothing for backward") }
        let (values, maps) = (batch * layer.inputShape.elementCount, batch * spec.mapShape.elementCount)
        for t in 0..<slices(span) {
            attentionBackward(attentionShape(spec), dQ: heap.values(dQ) + t * values, dK: heap.values(dK) + t * values,
                              dV: heap.values(dV) + t * values, mapWork: heap.values(work), dOutput: heap.values(dJoined) + t * values,
                              attention: heap.values(kept[3]) + t * maps, q: heap.values(kept[0]) + t * values,
                              k: heap.values(kept[1]) + t * values, v: heap.values(kept[2]) + t * values)
        }
        try heap.release(work)
        try releaseSaved(key)
        try heap.release(dJoined)
        var dX: Int?
        for (branch, gradient) in [(spec.value, dV), (spec.key, dK), (spec.query, dQ)] {
            let dBranch = try backward(branch, gradient, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            if let dBranch { dX = try dX.map { try heap.combine(into: $0, dBranch) } ?? dBranch }
        }
        return dX
    }
}

/// SDSA in the engine, allocating what the planner's `forwardSDSA` / `backwardSDSA` predict for
/// the snnmem runtime: per channel, the column sum of k ⊙ v, the talking-heads neuron on it, and
/// q gated by its spikes (heads play no part: every product is per channel).
extension TrainingStep {
    func forwardSDSA(_ layer: Layer, _ spec: AttentionSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                     reversible: ReversibleMode) throws -> Int {
        let path = prefix + layer.path
        let (q, k, v) = try forwardQKV(spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let sums = try allocateActivation(path, "kv", role: .activation, shape: spec.attentionNeuron.inputShape, span: span)
        let (rows, tokens) = (batch * spec.channels, spec.tokens)
        for t in 0..<slices(span) {
            columnSumForward(rows: rows, tokens: tokens, sums: heap.values(sums) + t * rows, k: heap.values(k) + t * rows * tokens,
                             v: heap.values(v) + t * rows * tokens)
        }
        let fired = try forward(spec.attentionNeuron, sums, span: span, saving: saving, prefix: prefix, reversible: reversible)
        let joined = try allocateActivation(path, "output", role: .activation, shape: layer.inputShape, span: span)
        for t in 0..<slices(span) {
            gateForward(rows: rows, tokens: tokens, output: heap.values(joined) + t * rows * tokens, q: heap.values(q) + t * rows * tokens,
                        spikes: heap.values(fired) + t * rows)
        }
        if saving {
            keep([q, fired], key: SavedKey(path: path, timestep: span.timestep))
            keep([k, v], key: SavedKey(path: path + "#k*v", timestep: span.timestep))
        } else {
            for id in [q, k, v, fired] { try heap.release(id) }
        }
        return try forward(spec.projection, joined, span: span, saving: saving, prefix: prefix, reversible: reversible)
    }

    func backwardSDSA(_ layer: Layer, _ spec: AttentionSpec, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                      reversible: ReversibleMode) throws -> Int? {
        let path = prefix + layer.path
        let (rows, tokens) = (batch * spec.channels, spec.tokens)
        let dJoined = try backward(spec.projection, dY, span: span, needInputGrad: true, prefix: prefix, reversible: reversible)!
        let dQ = try allocateActivation(path, "dq", role: .workspace, shape: layer.inputShape, span: span)
        let dFired = try allocateActivation(path, "ds", role: .workspace, shape: spec.attentionNeuron.inputShape, span: span)
        let gateKey = SavedKey(path: path, timestep: span.timestep)
        guard let gate = saved[gateKey], gate.count == 2 else { preconditionFailure("SDSA \(path) kept no q and spikes") }
        for t in 0..<slices(span) {
            gateBackward(rows: rows, tokens: tokens, dQ: heap.values(dQ) + t * rows * tokens, dSpikes: heap.values(dFired) + t * rows,
                         dOutput: heap.values(dJoined) + t * rows * tokens, q: heap.values(gate[0]) + t * rows * tokens,
                         spikes: heap.values(gate[1]) + t * rows)
        }
        try heap.release(dJoined)
        try releaseSaved(gateKey)
        let dSums = try backward(spec.attentionNeuron, dFired, span: span, needInputGrad: true, prefix: prefix, reversible: reversible)!
        let dK = try allocateActivation(path, "dk", role: .workspace, shape: layer.inputShape, span: span)
        let dV = try allocateActivation(path, "dv", role: .workspace, shape: layer.inputShape, span: span)
        let sumKey = SavedKey(path: path + "#k*v", timestep: span.timestep)
        guard let kv = saved[sumKey], kv.count == 2 else { preconditionFailure("SDSA \(path) kept no k and v") }
        for t in 0..<slices(span) {
            columnSumBackward(rows: rows, tokens: tokens, dK: heap.values(dK) + t * rows * tokens, dV: heap.values(dV) + t * rows * tokens,
                              dSums: heap.values(dSums) + t * rows, k: heap.values(kv[0]) + t * rows * tokens,
                              v: heap.values(kv[1]) + t * rows * tokens)
        }
        try heap.release(dSums)
        try releaseSaved(sumKey)
        var dX: Int?
        for (branch, gradient) in [(spec.value, dV), (spec.key, dK), (spec.query, dQ)] {
            let dBranch = try backward(branch, gradient, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            if let dBranch { dX = try dX.map { try heap.combine(into: $0, dBranch) } ?? dBranch }
        }
        return dX
    }
}
