import MemoryModel
import Profiles

/// T-RevSNN on the PyTorch runtimes, as the Python package runs it (python/snnmem_torch/trevsnn.py,
/// python/TREVSNN-NOTES.md): the stem once on the images [B, ...], then one column per timestep of
/// single-step modules ([B, C, H, W]), c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + c[l][t-1] * alpha_l
/// with out-of-place adds, each column's head scored by its own cross-entropy, the loss their mean.
///
/// bptt: plain autograd. Backward runs in the reverse of the order autograd recorded the ops
/// (the engine picks the newest ready node): every column's loss, then column by column from the
/// last its head and its levels from the top down (the alpha term's MulBackward0, the blocks, the up
/// path, the down path), the stem last. A tensor's gradients from several consumers meet in one
/// buffer (an in-place add).
///
/// trevsnn: one autograd function over all columns. Its forward runs without a graph and keeps the
/// stem output and the last column's states (aliases, `ctx`); backward reruns, column by column from
/// the last, the head and then one level's F_l at a time with a graph, rebuilds c[l][t-1] =
/// (c[l][t] - F_l) / alpha_l, backpropagates F_l and then `c[l][t-1] * alpha_l` from c[l][t]'s
/// gradient. States are leaves whose `.grad` gathers what reaches them (AccumulateGrad: the first
/// gradient is taken over, later ones added in place).
extension TraceBuilder {
    /// The parameters PyTorch gives no gradient, so that its optimizers keep no state for them and skip
    /// them in the step: column 0's up paths and alphas (the first column has no previous one).
    var parametersWithoutPyTorchGradient: Set<String> {
        guard runtime.isPyTorch, let net = profile.trevsnnNetwork else { return [] }
        let first = TraceBuilder.columnPrefix(0)
        var paths: Set<String> = []
        for level in net.levels {
            for layer in ParameterLayout.flatten(level.up) {
                for parameter in LayerMemoryTable.declaration(for: layer).parameters { paths.insert(first + layer.path + "/" + parameter.name) }
            }
            paths.insert(first + level.path + "/alpha")
        }
        return paths
    }

    mutating func runTRevPyTorch(reconstruct: Bool) {
        guard let netIndex = profile.layers.firstIndex(where: { if case .trevsnn = $0.kind { return true }; return false }),
              case .trevsnn(let net) = profile.layers[netIndex].kind else {
            preconditionFailure("runTRevPyTorch needs a trevsnn network")
        }
        let netPath = profile.layers[netIndex].path
        let stemLayers = Array(profile.layers[..<netIndex])
        let levels = net.levels
        let top = levels.count - 1
        let (input, labels) = setUp()

        // Forward: the stem with a graph, then the columns (with one under bptt, without under trevsnn).
        phase = .forward(timestep: nil)
        retain(input)
        let stem = forward(stemLayers, input, span: .once, saving: true)
        var states: [Int] = []
        var logits: [Int] = []
        for t in 0..<timesteps {
            phase = .forward(timestep: t)
            let prefix = TraceBuilder.columnPrefix(t)
            var next: [Int] = []
            for (l, level) in levels.enumerated() {
                let below = l == 0 ? stem : next[l - 1]
                retain(below)
                var fused = forward(level.down, below, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                if t > 0 && !level.up.isEmpty {
                    retain(states[l + 1])
                    let up = forward(level.up, states[l + 1], span: .timestep(t), saving: !reconstruct, prefix: prefix)
                    // down(c[l-1][t]) + up(c[l+1][t-1]): the up path's output dies first, then the down path's.
                    fused = addOutOfPlace(up, fused, path: prefix + level.path, shape: level.stateShape, span: .timestep(t))
                }
                var state = forward(level.blocks, fused, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                if t > 0 {
                    // F_l + c[l][t-1] * alpha_l: the product, then the sum; MulBackward0 keeps c[l][t-1] (bptt).
                    let product = allocateActivation(prefix + level.path, "c*alpha", role: .activation, shape: level.stateShape,
                                                     span: .timestep(t))
                    if !reconstruct {
                        retain(states[l])
                        keep([states[l]], key: SavedKey(path: prefix + level.path, timestep: t))
                    }
                    state = addOutOfPlace(product, state, path: prefix + level.path, shape: level.stateShape, span: .timestep(t))
                }
                addFlops(Double(2 * level.stateShape.elementCount * batch))
                next.append(state)
            }
            // The previous column's list of states dies (a Python list frees its items last first).
            for id in states.reversed() { release(id) }
            retain(next[top])
            logits.append(forward(net.head, next[top], span: .timestep(t), saving: !reconstruct, prefix: prefix))
            states = next
        }
        phase = .forward(timestep: nil)
        if reconstruct {
            // ctx keeps aliases of the stem output and the last column's states.
            retain(stem)
            keep([stem] + states, key: SavedKey(path: netPath, timestep: nil))
        } else {
            for id in states.reversed() { release(id) }
        }
        states = []
        release(stem)  // the network's own reference, after the T-RevSNN module returns

        // The loss: each column's cross-entropy (the logits stay in their list until the loss is made).
        var losses: [Int] = []
        for t in 0..<timesteps {
            retain(logits[t])
            losses.append(lossPyTorch(logits[t], span: .timestep(t)))
        }
        for id in logits.reversed() { release(id) }

        phase = .backward(timestep: nil)
        // The loss nodes are the newest: every column's cross-entropy backward runs first, the last column's first.
        var dLogits: [Int] = Array(repeating: -1, count: timesteps)
        for t in (0..<timesteps).reversed() { dLogits[t] = lossBackwardPyTorch(losses[t], span: .timestep(t)) }
        let dStem = reconstruct ? backwardTRevFunction(net, netPath: netPath, dLogits: dLogits)
                                : backwardTRevAutograd(net, dLogits: dLogits)
        phase = .backward(timestep: nil)
        if let unused = backward(stemLayers, dStem, span: .once, needInputGrad: false) { release(unused) }
        finish(input: input, labels: labels)
    }

    /// bptt: autograd through every column's kept graph. Returns the stem output's gradient.
    private mutating func backwardTRevAutograd(_ net: TRevNetwork, dLogits: [Int]) -> Int {
        let levels = net.levels
        let top = levels.count - 1
        var dStates: [Int?] = Array(repeating: nil, count: levels.count)
        var dStem: Int?
        for t in (0..<timesteps).reversed() {
            phase = .backward(timestep: t)
            let prefix = TraceBuilder.columnPrefix(t)
            let dTop = backward(net.head, dLogits[t], span: .timestep(t), needInputGrad: true, prefix: prefix)!
            dStates[top] = dStates[top].map { combine(into: $0, dTop) } ?? dTop
            var dPrevious: [Int?] = Array(repeating: nil, count: levels.count)
            for (l, level) in levels.enumerated().reversed() {
                let dState = dStates[l]!
                if t > 0 {
                    dPrevious[l] = backwardAlphaTerm(level, prefix: prefix, t: t)
                    releaseSaved(SavedKey(path: prefix + level.path, timestep: t))
                }
                let dFused = backward(level.blocks, dState, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if t > 0 && !level.up.isEmpty {
                    retain(dFused)  // AddBackward0 hands the same gradient to both paths
                    let dUp = backward(level.up, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                    dPrevious[l + 1] = combine(into: dPrevious[l + 1]!, dUp)
                }
                let dBelow = backward(level.down, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if l > 0 {
                    dStates[l - 1] = dStates[l - 1].map { combine(into: $0, dBelow) } ?? dBelow
                } else {
                    dStem = dStem.map { combine(into: $0, dBelow) } ?? dBelow
                }
                dStates[l] = nil
            }
            dStates = dPrevious
        }
        return dStem!
    }

    /// MulBackward0 of c[l][t-1] * alpha_l from c[l][t]'s gradient g: g * c[l][t-1] (summed over
    /// batch and map into alpha's gradient, .grad), then g * alpha_l, c[l][t-1]'s gradient (returned).
    private mutating func backwardAlphaTerm(_ level: TRevNetwork.Level, prefix: String, t: Int) -> Int {
        let path = prefix + level.path
        let product = allocateActivation(path, "grad*c_prev", role: .workspace, shape: level.stateShape, span: .timestep(t))
        let dPrevious = allocateActivation(path, "grad_c_prev", role: .workspace, shape: level.stateShape, span: .timestep(t - 1))
        accumulateParameterGradients([ParameterDeclaration(name: "alpha", shape: TensorShape([level.channels]), trainable: true)],
                                     path: path)
        release(product)
        return dPrevious
    }

    /// trevsnn: the function's backward. Returns the stem output's gradient (stem.grad).
    private mutating func backwardTRevFunction(_ net: TRevNetwork, netPath: String, dLogits: [Int]) -> Int {
        let levels = net.levels
        let top = levels.count - 1
        guard let kept = saved.removeValue(forKey: SavedKey(path: netPath, timestep: nil)), kept.count == levels.count + 1 else {
            preconditionFailure("T-RevSNN network \(netPath) has no kept stem output and states")
        }
        let stem = kept[0]
        var states = Array(kept.dropFirst())
        var grads: [Int?] = Array(repeating: nil, count: levels.count)  // each state's .grad
        var stemGrad: Int?
        for t in (0..<timesteps).reversed() {
            let prefix = TraceBuilder.columnPrefix(t)
            // The head rerun with a graph and backpropagated from the column's logits' gradient,
            // which the outer engine holds until the function returns.
            phase = .recompute(timestep: t)
            retain(states[top])
            let logits = forward(net.head, states[top], span: .timestep(t), saving: true, prefix: prefix)
            phase = .backward(timestep: t)
            retain(dLogits[t])
            let dTop = backward(net.head, dLogits[t], span: .timestep(t), needInputGrad: true, prefix: prefix)!
            grads[top] = accumulateLeafGradient(grads[top], dTop)
            release(logits)
            var previous: [Int?] = Array(repeating: nil, count: levels.count)
            var previousGrads: [Int?] = Array(repeating: nil, count: levels.count)
            for (l, level) in levels.enumerated().reversed() {
                phase = .recompute(timestep: t)
                let below = l == 0 ? stem : states[l - 1]
                retain(below)
                var fused = forward(level.down, below, span: .timestep(t), saving: true, prefix: prefix)
                if t > 0 && !level.up.isEmpty {
                    retain(previous[l + 1]!)
                    let up = forward(level.up, previous[l + 1]!, span: .timestep(t), saving: true, prefix: prefix)
                    fused = addOutOfPlace(up, fused, path: prefix + level.path, shape: level.stateShape, span: .timestep(t))
                }
                let value = forward(level.blocks, fused, span: .timestep(t), saving: true, prefix: prefix)
                addFlops(Double(level.stateShape.elementCount * batch))
                phase = .backward(timestep: t)
                if t > 0 {
                    // c[l][t-1] = (c[l][t] - F_l) / alpha_l, without a graph.
                    let difference = allocateActivation(prefix + level.path, "c-F", role: .workspace, shape: level.stateShape,
                                                        span: .timestep(t))
                    previous[l] = allocateActivation(prefix + level.path, "state", role: .activation, shape: level.stateShape,
                                                     span: .timestep(t - 1))
                    release(difference)
                    addFlops(Double(2 * level.stateShape.elementCount * batch))
                }
                // torch.autograd.backward(F_l, c[l][t].grad): the gradient stays the caller's.
                let gradient = grads[l]!
                retain(gradient)
                let dFused = backward(level.blocks, gradient, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if t > 0 && !level.up.isEmpty {
                    retain(dFused)
                    let dUp = backward(level.up, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                    previousGrads[l + 1] = accumulateLeafGradient(previousGrads[l + 1], dUp)
                }
                let dBelow = backward(level.down, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if l > 0 {
                    grads[l - 1] = accumulateLeafGradient(grads[l - 1], dBelow)
                } else {
                    stemGrad = accumulateLeafGradient(stemGrad, dBelow)
                }
                release(value)
                if t > 0 {
                    // torch.autograd.backward(c[l][t-1] * alpha_l, c[l][t].grad): the product, its
                    // MulBackward0 (alpha's gradient, then c[l][t-1]'s, a leaf's first .grad).
                    let product = allocateActivation(prefix + level.path, "c*alpha", role: .activation, shape: level.stateShape,
                                                     span: .timestep(t))
                    let dPrevious = backwardAlphaTerm(level, prefix: prefix, t: t)
                    previousGrads[l] = accumulateLeafGradient(previousGrads[l], dPrevious)
                    release(product)
                }
                // `del gradient; states[l].grad = None`: the one reference the model gave the nested backward is
                // spent, so this frees c[l][t]'s gradient.
                release(gradient)
                grads[l] = nil
            }
            // The column's states die (a list frees its items last first); the rebuilt ones take their place.
            for id in states.reversed() { release(id) }
            states = previous.compactMap { $0 }
            grads = previousGrads
        }
        // The function returns stem.grad; its local reference to the stem output and the logits'
        // gradients it was given die with it.
        release(stem)
        for id in dLogits { release(id) }
        return stemGrad!
    }

    /// AccumulateGrad into a leaf's .grad: the first gradient is taken over, later ones are added in
    /// place and die.
    private mutating func accumulateLeafGradient(_ existing: Int?, _ incoming: Int) -> Int {
        guard let existing else { return incoming }
        release(incoming)
        return existing
    }
}
